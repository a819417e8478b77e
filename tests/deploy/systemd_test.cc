// deploy/systemd: the units load cleanly in systemd, stay hardened, and start the daemons with
// flags they accept.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <regex>

#include "tests/deploy/deploy_support.h"
#include "tests/support/process.h"

namespace breakeven::testing {
namespace {

struct Unit {
  std::string file;       // under deploy/systemd/
  std::string installed;  // the ExecStart binary as installed
  std::string built;      // the same binary in this build tree
  double max_exposure;    // systemd-analyze security's overall exposure, 0 (best) .. 10
};

const std::vector<Unit>& Units() {
  static const std::vector<Unit> units = {
      {"breakeven-scheduler.service", "/usr/local/bin/breakeven-scheduler", BREAKEVEN_SCHEDULER_BIN,
       2.0},
      // The node keeps the GPU devices, netlink and writable-executable memory (the NVIDIA driver).
      {"breakeven-node.service", "/usr/local/bin/breakeven-node", BREAKEVEN_NODE_BIN, 3.0},
  };
  return units;
}

// The unit with its ExecStart binary pointed at this build's (systemd-analyze checks that it is
// executable), written into `dir`; returns its path.
std::string WriteForVerify(const Unit& unit, const std::string& dir,
                           const std::string& extra_line = "") {
  std::string text = ReadSource("deploy/systemd/" + unit.file);
  EXPECT_NE(text.find("ExecStart=" + unit.installed), std::string::npos)
      << unit.file << " does not start " << unit.installed;
  text = ReplaceAll(text, "ExecStart=" + unit.installed, "ExecStart=" + unit.built);
  std::string path = dir + "/" + unit.file;
  WriteFile(path, text + extra_line, 0644);
  return path;
}

// The value of every "Key=value" line of the unit with that key, in order.
std::vector<std::string> Settings(const std::string& unit_text, const std::string& key) {
  std::vector<std::string> values;
  for (const std::string& line : LogicalLines(unit_text)) {
    if (line.rfind(key + "=", 0) == 0) values.push_back(line.substr(key.size() + 1));
  }
  return values;
}

TEST(SystemdUnits, VerifyPrintsNothingAboutThem) {
  auto analyze = Which("systemd-analyze");
  if (!analyze) GTEST_SKIP() << "systemd-analyze is not installed";
  ScopedTempDir dir("units");
  std::vector<std::string> argv = {*analyze, "verify", "--man=no"};
  for (const Unit& unit : Units()) argv.push_back(WriteForVerify(unit, dir.path()));
  CommandResult r = RunCommand(argv, std::chrono::seconds(60));
  const std::string output = r.out + r.err;
  EXPECT_EQ(r.exit_code, 0) << output;
  EXPECT_EQ(LinesContaining(output, dir.path()), "");
  EXPECT_EQ(LinesContaining(output, "breakeven-"), "");
}

// The check above would pass vacuously if verify never read our files: a unit with one unknown
// key must be reported.
TEST(SystemdUnits, VerifyReportsAMistake) {
  auto analyze = Which("systemd-analyze");
  if (!analyze) GTEST_SKIP() << "systemd-analyze is not installed";
  ScopedTempDir dir("units");
  std::string path = WriteForVerify(Units()[0], dir.path(), "NoSuchSetting=yes\n");
  CommandResult r = RunCommand({*analyze, "verify", "--man=no", path}, std::chrono::seconds(60));
  EXPECT_NE(LinesContaining(r.out + r.err, "NoSuchSetting"), "") << r.out << r.err;
}

TEST(SystemdUnits, ExposureStaysLow) {
  auto analyze = Which("systemd-analyze");
  if (!analyze) GTEST_SKIP() << "systemd-analyze is not installed";
  ScopedTempDir dir("units");
  for (const Unit& unit : Units()) {
    std::string path = WriteForVerify(unit, dir.path());
    CommandResult r = RunCommand({*analyze, "security", "--offline=yes", "--no-pager", path},
                                 std::chrono::seconds(60));
    const std::string output = r.out + r.err;
    if (output.find("--offline") != std::string::npos) {
      GTEST_SKIP() << "this systemd-analyze cannot assess unit files offline: " << output;
    }
    std::smatch m;
    static const std::regex kOverall(R"(Overall exposure level for \S+: ([0-9.]+))");
    ASSERT_TRUE(std::regex_search(output, m, kOverall)) << output;
    EXPECT_LE(std::stod(m[1].str()), unit.max_exposure)
        << unit.file << " lost some of its hardening:\n"
        << output;
  }
}

TEST(SystemdUnits, StartTheDaemonsWithFlagsTheyAccept) {
  for (const Unit& unit : Units()) {
    const std::string text = ReadSource("deploy/systemd/" + unit.file);
    std::vector<std::string> exec = Settings(text, "ExecStart");
    ASSERT_EQ(exec.size(), 1u) << unit.file;
    std::set<std::string> accepted = FlagsAccepted(unit.built);
    for (const std::string& flag : FlagsIn(exec[0])) {
      EXPECT_TRUE(accepted.count(flag)) << unit.file << ": " << unit.built << " has no " << flag;
    }
  }
}

// Every credential ExecStart reads (%d/NAME) is loaded (LoadCredential=NAME:...), the database
// and work directories are under the unit's StateDirectory, and every variable ExecStart uses has
// a default in the unit and an entry in the example EnvironmentFile.
TEST(SystemdUnits, ExecStartUsesWhatTheUnitProvides) {
  const std::string env_example = ReadSource("deploy/systemd/breakeven.env");
  for (const Unit& unit : Units()) {
    const std::string text = ReadSource("deploy/systemd/" + unit.file);
    const std::string exec = Settings(text, "ExecStart").at(0);
    std::set<std::string> loaded;
    for (const std::string& c : Settings(text, "LoadCredential")) {
      loaded.insert(c.substr(0, c.find(':')));
    }
    static const std::regex kCredential(R"(%d/([A-Za-z0-9._-]+))");
    int credentials = 0;
    for (std::sregex_iterator it(exec.begin(), exec.end(), kCredential), end; it != end; ++it) {
      ++credentials;
      EXPECT_TRUE(loaded.count((*it)[1].str()))
          << unit.file << ": ExecStart reads credential " << (*it)[1] << ", never loaded";
    }
    EXPECT_GE(credentials, 1) << unit.file << ": the token must come in as a credential";

    std::vector<std::string> state = Settings(text, "StateDirectory");
    ASSERT_EQ(state.size(), 1u) << unit.file;
    EXPECT_NE(exec.find("%S/" + state[0]), std::string::npos)
        << unit.file << ": ExecStart should keep its files in StateDirectory " << state[0];

    std::map<std::string, bool> defaults;
    for (const std::string& e : Settings(text, "Environment")) defaults[e.substr(0, e.find('='))];
    static const std::regex kVariable(R"(\$\{?([A-Z_][A-Z0-9_]*)\}?)");
    for (std::sregex_iterator it(exec.begin(), exec.end(), kVariable), end; it != end; ++it) {
      const std::string name = (*it)[1].str();
      EXPECT_TRUE(defaults.count(name)) << unit.file << ": no Environment=" << name << "= default";
      EXPECT_NE(env_example.find("\n" + name + "="), std::string::npos)
          << "deploy/systemd/breakeven.env does not show " << name;
    }
  }
}

// What each unit must keep; the comments in the units say why.
TEST(SystemdUnits, KeepTheirHardeningAndDevices) {
  const std::vector<std::pair<std::string, std::string>> both = {
      {"DynamicUser", "yes"},          {"NoNewPrivileges", "yes"}, {"ProtectSystem", "strict"},
      {"ProtectHome", "yes"},          {"PrivateTmp", "yes"},      {"ProtectKernelTunables", "yes"},
      {"ProtectControlGroups", "yes"}, {"LockPersonality", "yes"}, {"CapabilityBoundingSet", ""},
      {"Restart", "on-failure"},
  };
  for (const Unit& unit : Units()) {
    const std::string text = ReadSource("deploy/systemd/" + unit.file);
    for (const auto& [key, value] : both) {
      std::vector<std::string> got = Settings(text, key);
      EXPECT_EQ(got, std::vector<std::string>{value}) << unit.file << ": " << key;
    }
    EXPECT_FALSE(Settings(text, "RestartSec").empty()) << unit.file;
    std::vector<std::string> filters = Settings(text, "SystemCallFilter");
    EXPECT_NE(std::find(filters.begin(), filters.end(), "@system-service"), filters.end())
        << unit.file;
    std::vector<std::string> families = Settings(text, "RestrictAddressFamilies");
    ASSERT_EQ(families.size(), 1u) << unit.file;
    EXPECT_EQ(families[0].rfind("AF_INET AF_INET6 AF_UNIX", 0), 0u) << unit.file;
  }
  const std::string scheduler = ReadSource("deploy/systemd/breakeven-scheduler.service");
  EXPECT_EQ(Settings(scheduler, "MemoryDenyWriteExecute"), std::vector<std::string>{"yes"});
  EXPECT_EQ(Settings(scheduler, "PrivateDevices"), std::vector<std::string>{"yes"});
  EXPECT_EQ(Settings(scheduler, "RestrictAddressFamilies"),
            std::vector<std::string>{"AF_INET AF_INET6 AF_UNIX"});

  // The node's workers need the GPUs and the host's /dev/shm.
  const std::string node = ReadSource("deploy/systemd/breakeven-node.service");
  EXPECT_EQ(Settings(node, "PrivateDevices"), std::vector<std::string>{"no"});
  EXPECT_EQ(Settings(node, "DevicePolicy"), std::vector<std::string>{"closed"});
  EXPECT_EQ(Settings(node, "DeviceAllow"), std::vector<std::string>{"char-nvidia* rw"});
  EXPECT_EQ(Settings(node, "KillMode"), std::vector<std::string>{"mixed"});
  EXPECT_TRUE(Settings(node, "PrivateIPC").empty()) << "shared memory must stay the host's";
}

}  // namespace
}  // namespace breakeven::testing

// deploy/container/Containerfile: the build stage installs what scripts/setup.sh installs, the
// runtime stage the packages of the shared libraries the binaries load, and the binaries it copies
// are the build's executables.
#include <gtest/gtest.h>
#include <limits.h>
#include <stdlib.h>

#include <map>
#include <regex>
#include <sstream>

#include "tests/deploy/deploy_support.h"
#include "tests/support/process.h"

namespace breakeven::testing {
namespace {

// In scripts/setup.sh but not needed to build the image: what only tests use (the image is built
// without them) and the sqlite3 shell (the runtime stage has it).
const std::set<std::string> kNotNeededToBuild = {"libgtest-dev", "libgmock-dev", "prometheus",
                                                 "sqlite3"};
// Debian 12's base image already has these; the binaries load them.
const std::set<std::string> kInBaseImage = {"libc6", "libstdc++6", "libgcc-s1", "zlib1g"};

std::vector<std::string> Words(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

// The packages scripts/setup.sh installs: its packages=( ... ) list, comments dropped.
std::set<std::string> SetupPackages() {
  const std::string text = ReadSource("scripts/setup.sh");
  size_t begin = text.find("packages=(");
  size_t end = text.find("\n)", begin);
  EXPECT_NE(begin, std::string::npos) << "scripts/setup.sh has no packages=( list";
  std::set<std::string> packages;
  std::istringstream in(text.substr(begin + 10, end - begin - 10));
  for (std::string line; std::getline(in, line);) {
    for (const std::string& w : Words(line.substr(0, line.find('#')))) packages.insert(w);
  }
  return packages;
}

struct Stage {
  std::string name;
  std::set<std::string> installed;       // apt-get install arguments
  std::vector<std::string> copied_from;  // COPY --from=... source paths
  std::string run;                       // all RUN commands, joined
};

std::vector<Stage> ParseContainerfile() {
  std::vector<Stage> stages;
  for (const std::string& raw : LogicalLines(ReadSource("deploy/container/Containerfile"))) {
    std::vector<std::string> w = Words(raw);
    if (w.empty() || w[0][0] == '#') continue;
    if (w[0] == "FROM") {
      stages.push_back({w.size() >= 4 && w[2] == "AS" ? w[3] : w[1], {}, {}, ""});
      continue;
    }
    if (stages.empty()) continue;
    Stage& s = stages.back();
    if (w[0] == "RUN") {
      s.run += raw + "\n";
      for (size_t i = 0; i + 1 < w.size(); ++i) {
        if (w[i] != "apt-get" || w[i + 1] != "install") continue;
        for (size_t j = i + 2; j < w.size() && w[j] != "&&"; ++j) {
          if (w[j][0] != '-') s.installed.insert(w[j]);
        }
      }
    }
    if (w[0] == "COPY" && w.size() >= 4 && w[1].rfind("--from=", 0) == 0) {
      s.copied_from.insert(s.copied_from.end(), w.begin() + 2, w.end() - 1);
    }
  }
  return stages;
}

TEST(Containerfile, BuildStageInstallsWhatSetupShInstalls) {
  std::vector<Stage> stages = ParseContainerfile();
  ASSERT_EQ(stages.size(), 2u);
  const std::set<std::string> setup = SetupPackages();
  ASSERT_FALSE(setup.empty());
  for (const std::string& p : stages[0].installed) {
    EXPECT_TRUE(setup.count(p)) << "the build stage installs " << p
                                << ", which scripts/setup.sh does not";
  }
  for (const std::string& p : setup) {
    if (kNotNeededToBuild.count(p)) continue;
    EXPECT_TRUE(stages[0].installed.count(p))
        << "scripts/setup.sh installs " << p << "; the build stage does not";
  }
  EXPECT_NE(stages[0].run.find("cmake -S . -B"), std::string::npos) << "built with CMake";
}

// Each COPY --from=build /build/<dir>/<name> is add_executable(<name>) of <dir>/CMakeLists.txt
// (the build tree mirrors the source tree), and the stage builds exactly those targets.
TEST(Containerfile, CopiesTheBuildsExecutables) {
  std::vector<Stage> stages = ParseContainerfile();
  ASSERT_EQ(stages.size(), 2u);
  static const std::regex kBuilt(R"(^/build/([a-z_]+)/([A-Za-z0-9_-]+)$)");
  std::set<std::string> copied;
  for (const std::string& source : stages[1].copied_from) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(source, m, kBuilt)) << source;
    const std::string cmake = ReadSource(m[1].str() + "/CMakeLists.txt");
    EXPECT_NE(cmake.find("add_executable(" + m[2].str() + " "), std::string::npos)
        << source << ": no add_executable(" << m[2] << " ...) in " << m[1] << "/CMakeLists.txt";
    copied.insert(m[2].str());
  }
  EXPECT_EQ(copied, (std::set<std::string>{"breakeven-scheduler", "breakeven-node",
                                           "breakeven-worker", "breakeven"}));
  static const std::regex kTargets(R"(--target((?: [A-Za-z0-9_-]+)+))");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(stages[0].run, m, kTargets)) << stages[0].run;
  std::vector<std::string> targets = Words(m[1].str());
  EXPECT_EQ(std::set<std::string>(targets.begin(), targets.end()), copied);
}

// The Debian package that ships `path`, or "" (a library outside dpkg, e.g. the CUDA toolkit).
std::string PackageOf(const std::string& dpkg_query, const std::string& path) {
  static std::map<std::string, std::string> known;  // dpkg-query is slow: once per library
  if (auto it = known.find(path); it != known.end()) return it->second;
  char resolved[PATH_MAX];
  std::string real = ::realpath(path.c_str(), resolved) ? resolved : path;
  // With a merged /usr, dpkg may know a file by its /lib path or by its /usr/lib path.
  std::vector<std::string> candidates = {real, path};
  for (const std::string& p : std::vector<std::string>(candidates)) {
    if (p.rfind("/usr/", 0) == 0)
      candidates.push_back(p.substr(4));
    else
      candidates.push_back("/usr" + p);
  }
  for (const std::string& p : candidates) {
    CommandResult r = RunCommand({dpkg_query, "-S", p});
    if (r.exit_code != 0) continue;
    return known[path] = r.out.substr(0, r.out.find(':'));
  }
  return known[path] = "";
}

// The runtime stage installs the package of each library the binaries link directly (ELF
// NEEDED; apt brings those libraries' own dependencies), and nothing that is neither such a
// package nor in scripts/setup.sh.
TEST(Containerfile, RuntimeStageHasTheLibrariesTheBinariesLoad) {
  auto dpkg_query = Which("dpkg-query");
  auto ldd = Which("ldd");
  auto readelf = Which("readelf");
  if (!dpkg_query || !ldd || !readelf) GTEST_SKIP() << "needs dpkg-query, ldd and readelf";
  std::vector<Stage> stages = ParseContainerfile();
  ASSERT_EQ(stages.size(), 2u);
  const std::set<std::string>& runtime = stages[1].installed;

  std::map<std::string, std::string> needed;  // package -> what loads it
  for (const char* binary :
       {BREAKEVEN_SCHEDULER_BIN, BREAKEVEN_NODE_BIN, BREAKEVEN_WORKER_BIN, BREAKEVEN_CLI_BIN}) {
    CommandResult dynamic = RunCommand({*readelf, "-d", binary});
    ASSERT_EQ(dynamic.exit_code, 0) << dynamic.err;
    CommandResult resolved = RunCommand({*ldd, binary});
    ASSERT_EQ(resolved.exit_code, 0) << resolved.err;
    static const std::regex kNeeded(R"(\(NEEDED\)\s+Shared library: \[([^\]]+)\])");
    for (std::sregex_iterator it(dynamic.out.begin(), dynamic.out.end(), kNeeded), end; it != end;
         ++it) {
      const std::string soname = (*it)[1].str();
      // The dynamic loader (libc6), named outright by binaries that link the static CUDA
      // runtime; ldd lists it by path without "=>".
      if (soname.rfind("ld-linux", 0) == 0) continue;
      std::smatch where;
      const std::regex kPath("(?:^|\\s)" +
                             std::regex_replace(soname, std::regex(R"([.+])"), R"(\$&)") +
                             R"( => (\S+))");
      ASSERT_TRUE(std::regex_search(resolved.out, where, kPath))
          << binary << " needs " << soname << ", which ldd does not find:\n"
          << resolved.out;
      const std::string path = where[1].str();
      if (path.find("/cuda") != std::string::npos) continue;  // the CUDA variant's base image
      const std::string package = PackageOf(*dpkg_query, path);
      ASSERT_NE(package, "") << path << " (" << soname << ") belongs to no Debian package";
      needed[package] = std::string(binary) + " (" + soname + ")";
    }
  }
  for (const auto& [package, by] : needed) {
    if (kInBaseImage.count(package)) continue;
    EXPECT_TRUE(runtime.count(package))
        << "the runtime stage lacks " << package << ", needed by " << by;
  }
  const std::set<std::string> setup = SetupPackages();
  for (const std::string& p : runtime) {
    EXPECT_TRUE(needed.count(p) || setup.count(p))
        << "the runtime stage installs " << p
        << ", which no binary loads and scripts/setup.sh does not install";
  }
}

}  // namespace
}  // namespace breakeven::testing

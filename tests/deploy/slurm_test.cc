// deploy/slurm/breakeven-nodes.sbatch: it parses (bash, sbatch's #SBATCH rules, shellcheck when
// installed), and, run against stand-ins for srun, scontrol, scancel and breakeven-node, starts
// one agent per host named after it, and stops them all cleanly on SIGTERM.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "tests/deploy/deploy_support.h"
#include "tests/support/process.h"

namespace breakeven::testing {
namespace {

const char kScript[] = "deploy/slurm/breakeven-nodes.sbatch";

// srun --ntasks-per-node=1 on the hosts of $FAKE_SLURM_HOSTS: the command once per host, with
// SLURMD_NODENAME set and --output's %N replaced, as Slurm does; the tasks' pids go to a file for
// the fake scancel.
const char kFakeSrun[] = R"(#!/usr/bin/env bash
out=/dev/null
while [[ $1 == --* ]]; do
  case $1 in --output=*) out=${1#--output=} ;; esac
  shift
done
pids=()
for h in $FAKE_SLURM_HOSTS; do
  SLURMD_NODENAME=$h "$@" >> "${out//%N/$h}" 2>&1 &
  pids+=("$!")
done
echo "${pids[*]}" > "$FAKE_SLURM_DIR/task-pids"
rc=0
for p in "${pids[@]}"; do
  wait "$p" || rc=$?
done
exit "$rc"
)";

const char kFakeScontrol[] = R"(#!/usr/bin/env bash
[[ $1 == show && $2 == hostnames ]] || exit 1
printf '%s\n' $FAKE_SLURM_HOSTS
)";

const char kFakeScancel[] = R"(#!/usr/bin/env bash
echo "$*" >> "$FAKE_SLURM_DIR/scancel.log"
[[ $1 == --signal=TERM ]] && kill -TERM $(cat "$FAKE_SLURM_DIR/task-pids")
)";

// breakeven-node: writes its arguments and environment, then waits for SIGTERM (exit 0), or gives
// up after a minute (exit 1) so nothing outlives a failed test for long.
const char kFakeNode[] = R"(#!/usr/bin/env bash
name=unnamed
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  [[ ${args[i]} == --name ]] && name=${args[i+1]}
done
trap 'echo "fake agent $name: SIGTERM"; touch "$FAKE_SLURM_DIR/stopped-$name"; exit 0' TERM
printf '%s\n' "$@" > "$FAKE_SLURM_DIR/args-$name"
echo "fake agent $name up, GPUs ${CUDA_VISIBLE_DEVICES:-none}"
for ((i = 0; i < 600; i++)); do sleep 0.1; done
exit 1
)";

class SlurmScript : public ::testing::Test {
 protected:
  void SetUp() override {
    bin_ = dir_.path() + "/bin";
    logs_ = dir_.path() + "/logs";
    std::filesystem::create_directories(bin_);
    WriteFile(bin_ + "/srun", kFakeSrun, 0755);
    WriteFile(bin_ + "/scontrol", kFakeScontrol, 0755);
    WriteFile(bin_ + "/scancel", kFakeScancel, 0755);
    WriteFile(bin_ + "/breakeven-node", kFakeNode, 0755);
    WriteFile(bin_ + "/breakeven-worker", "#!/bin/sh\nexit 0\n", 0755);
    WriteFile(dir_.path() + "/cluster.token", std::string(64, 'a') + "\n", 0600);
  }

  // Starts the script as sbatch would on the first host of a job on `hosts`.
  ChildProcess Start(const std::string& hosts, const std::string& cuda_visible_devices,
                     std::vector<std::string> extra_env = {}) {
    std::vector<std::string> env = {
        "PATH=" + bin_ + ":" + std::getenv("PATH"),
        "FAKE_SLURM_DIR=" + dir_.path(),
        "FAKE_SLURM_HOSTS=" + hosts,
        "SLURM_JOB_ID=4242",
        "SLURM_JOB_NODELIST=fake[1-2]",
        "SLURM_SUBMIT_DIR=" + dir_.path(),
        "CUDA_VISIBLE_DEVICES=" + cuda_visible_devices,
        "BREAKEVEN_SCHEDULER=sched.example:7070",
        "BREAKEVEN_TOKEN_FILE=" + dir_.path() + "/cluster.token",
        "BREAKEVEN_BIN_DIR=" + bin_,
        "BREAKEVEN_LOG_DIR=" + logs_,
        "BREAKEVEN_PROMETHEUS_SD=" + dir_.path(),
    };
    env.insert(env.end(), extra_env.begin(), extra_env.end());
    const std::string log = dir_.path() + "/job.out";
    Result<ChildProcess> child =
        ChildProcess::Start({"/bin/bash", SourcePath(kScript)}, log, log, env);
    if (!child.ok()) throw std::runtime_error(child.status().ToString());
    return std::move(*child);
  }

  // The batch script's own output (sbatch's --output file).
  std::string JobLog() { return Read(dir_.path() + "/job.out"); }

  bool WaitForFile(const std::string& path, std::chrono::seconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (std::filesystem::exists(path)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  std::string Read(const std::string& path) {
    std::ifstream in(path);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  }

  ScopedTempDir dir_{"slurm"};
  std::string bin_, logs_;
};

TEST(SlurmBatchScript, ParsesAsBashAndSbatch) {
  const std::string text = ReadSource(kScript);
  CommandResult syntax = RunCommand({"/bin/bash", "-n", SourcePath(kScript)});
  EXPECT_EQ(syntax.exit_code, 0) << syntax.err;

  // sbatch reads #SBATCH lines only before the first command: after it they are comments.
  std::istringstream in(text);
  std::string line;
  bool commands_started = false;
  std::map<std::string, std::string> options;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line_no == 1) {
      EXPECT_EQ(line.rfind("#!", 0), 0u) << "sbatch needs an interpreter line";
      continue;
    }
    if (line.rfind("#SBATCH", 0) == 0) {
      EXPECT_FALSE(commands_started) << "line " << line_no << " comes after a command: " << line;
      std::string option = line.substr(8);
      ASSERT_EQ(option.rfind("--", 0), 0u) << "line " << line_no << ": " << line;
      size_t eq = option.find('=');
      options[option.substr(0, eq)] = eq == std::string::npos ? "" : option.substr(eq + 1);
      continue;
    }
    if (!line.empty() && line[0] != '#') commands_started = true;
  }
  // Options sbatch knows (a misspelt one makes sbatch refuse the script).
  const std::set<std::string> known = {
      "--job-name",  "--nodes",   "--ntasks-per-node", "--exclusive", "--gpus-per-node",
      "--time",      "--signal",  "--output",          "--error",     "--partition",
      "--account",   "--gres",    "--cpus-per-task",   "--mem",       "--constraint",
      "--open-mode", "--requeue", "--no-requeue",      "--qos",       "--nodelist"};
  for (const auto& [option, value] : options) {
    EXPECT_TRUE(known.count(option)) << "#SBATCH " << option << " is not an sbatch option";
  }
  EXPECT_EQ(options["--ntasks-per-node"], "1");
  EXPECT_EQ(options["--signal"].rfind("B:TERM@", 0), 0u)
      << "the batch shell must get SIGTERM before the time limit";
}

TEST(SlurmBatchScript, ShellcheckFindsNothing) {
  auto shellcheck = Which("shellcheck");
  if (!shellcheck) GTEST_SKIP() << "shellcheck is not installed";
  CommandResult r =
      RunCommand({*shellcheck, "--shell=bash", SourcePath(kScript)}, std::chrono::seconds(60));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

TEST(SlurmBatchScript, PassesOnlyFlagsTheNodeAccepts) {
  std::set<std::string> accepted = FlagsAccepted(BREAKEVEN_NODE_BIN);
  int exec_lines = 0;
  for (const std::string& line : LogicalLines(ReadSource(kScript))) {
    if (line.find("exec \"$node_bin\"") == std::string::npos) continue;
    ++exec_lines;
    for (const std::string& flag : FlagsIn(line)) {
      EXPECT_TRUE(accepted.count(flag)) << "breakeven-node has no " << flag;
    }
  }
  EXPECT_EQ(exec_lines, 1);
}

TEST_F(SlurmScript, StartsOneAgentPerHostAndStopsThemOnTerm) {
  ChildProcess job = Start("gpu-a gpu-b", "0,1");
  ASSERT_TRUE(WaitForFile(dir_.path() + "/args-gpu-a", std::chrono::seconds(20))) << JobLog();
  ASSERT_TRUE(WaitForFile(dir_.path() + "/args-gpu-b", std::chrono::seconds(20))) << JobLog();

  const std::string args = Read(dir_.path() + "/args-gpu-a");
  for (const std::string& want : std::vector<std::string>{
           "--scheduler\nsched.example:7070\n", "--name\ngpu-a\n", "--http\n0.0.0.0:7090\n",
           "--token-file\n" + dir_.path() + "/cluster.token\n",
           "--work-dir\n" + logs_ + "/gpu-a\n"}) {
    EXPECT_NE(args.find(want), std::string::npos) << "missing " << want << " in\n" << args;
  }
  EXPECT_NE(Read(logs_ + "/gpu-b.log").find("fake agent gpu-b up, GPUs 0,1"), std::string::npos)
      << "one log per host, and the job's GPUs reach the agent";
  const std::string sd = Read(dir_.path() + "/breakeven-slurm-4242.json");
  EXPECT_NE(sd.find(R"(["gpu-a:7090","gpu-b:7090"])"), std::string::npos) << sd;

  // What --signal=B:TERM@60 does a minute before the time limit.
  job.Signal(SIGTERM);
  std::optional<int> code = job.Wait(std::chrono::seconds(30));
  ASSERT_TRUE(code.has_value()) << "the script did not stop\n" << JobLog();
  EXPECT_EQ(*code, 0) << JobLog();
  EXPECT_TRUE(std::filesystem::exists(dir_.path() + "/stopped-gpu-a")) << JobLog();
  EXPECT_TRUE(std::filesystem::exists(dir_.path() + "/stopped-gpu-b")) << JobLog();
  EXPECT_NE(Read(dir_.path() + "/scancel.log").find("--signal=TERM 4242"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/breakeven-slurm-4242.json"))
      << "the scrape targets go with the job";
}

// A job holding part of a host's GPUs starts its agent with them visible (the agent maps its own
// ordinals through CUDA_VISIBLE_DEVICES for its workers).
TEST_F(SlurmScript, TakesAGpuSubset) {
  ChildProcess job = Start("gpu-a", "2,3");
  ASSERT_TRUE(WaitForFile(dir_.path() + "/args-gpu-a", std::chrono::seconds(20))) << JobLog();
  EXPECT_NE(Read(logs_ + "/gpu-a.log").find("GPUs 2,3"), std::string::npos)
      << Read(logs_ + "/gpu-a.log");
  job.Signal(SIGTERM);
  std::optional<int> code = job.Wait(std::chrono::seconds(30));
  ASSERT_TRUE(code.has_value()) << JobLog();
  EXPECT_EQ(*code, 0) << JobLog();
}

TEST_F(SlurmScript, RefusesToStartWithoutAScheduler) {
  ChildProcess job = Start("gpu-a", "0", {"BREAKEVEN_SCHEDULER="});
  std::optional<int> code = job.Wait(std::chrono::seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_NE(*code, 0);
  EXPECT_NE(JobLog().find("BREAKEVEN_SCHEDULER"), std::string::npos) << JobLog();
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/args-gpu-a"));
}

}  // namespace
}  // namespace breakeven::testing

// Real child processes for integration tests: started from an argument vector (no shell),
// output to a log file, killed and reaped by the test.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace breakeven::testing {

class ChildProcess {
 public:
  // Starts argv[0] with the arguments; stdout and stderr go to `log_path` (appended).
  static ChildProcess Start(const std::vector<std::string>& argv, const std::string& log_path);

  ChildProcess() = default;
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ~ChildProcess();  // SIGKILLs and reaps a process still running

  pid_t pid() const { return pid_; }
  bool running();
  void Signal(int signo);
  // Waits for exit; returns the exit code (128 + signal if killed), or nullopt on timeout.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  const std::string& log_path() const { return log_path_; }
  std::string Log() const;

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  std::string log_path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs a command to completion (killed after `timeout`) and captures its output.
CommandResult RunCommand(const std::vector<std::string>& argv,
                         std::chrono::milliseconds timeout = std::chrono::seconds(20));

// A TCP port on 127.0.0.1 that was free a moment ago.
int FreePort();

// A new empty directory under $TMPDIR (or /tmp), removed by RemoveTree.
std::string MakeTempDir(const std::string& prefix);
void RemoveTree(const std::string& path);

std::string ReadFile(const std::string& path);
void WriteFile(const std::string& path, const std::string& text, int mode = 0600);

}  // namespace breakeven::testing

// Child processes started from an argument vector (never through a shell), with their output
// sent to files, and signalled and reaped by their owner. Used by tests and benchmarks to run
// the real daemons, and by the node agent to run workers.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace breakeven {

class ChildProcess {
 public:
  // Starts argv[0] (a path) with the arguments and the current environment plus `extra_env`
  // ("NAME=value", replacing a variable of that name). stdin is /dev/null; stdout and stderr
  // are appended to the given files (the same file for both is fine). The child starts with no
  // signals blocked.
  static Result<ChildProcess> Start(const std::vector<std::string>& argv,
                                    const std::string& stdout_path, const std::string& stderr_path,
                                    const std::vector<std::string>& extra_env = {});

  ChildProcess() = default;
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ~ChildProcess();  // SIGKILLs and reaps a process that is still running

  pid_t pid() const { return pid_; }
  // Lets the process outlive this object (it is neither killed nor reaped here).
  void Detach() { pid_ = -1; }
  bool running();
  void Signal(int signo);
  // Waits for exit; returns the exit code (128 + signal number if killed by one), or nullopt
  // when `timeout` passes first.
  std::optional<int> Wait(std::chrono::milliseconds timeout);

 private:
  void KillAndReap();

  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

// User plus system CPU time of a running process, in seconds, from /proc/PID/stat.
Result<double> ProcessCpuSeconds(pid_t pid);

}  // namespace breakeven

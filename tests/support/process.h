// Helpers for tests that run real programs: one-shot commands, ports, temporary files.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "common/process.h"

namespace breakeven::testing {

// A program under test: the process and the file that collects its stdout and stderr.
class TestProcess {
 public:
  // Starts the program; a failure to start fails the test.
  static TestProcess Start(const std::vector<std::string>& argv, const std::string& log_path);

  bool running() { return process_.running(); }
  void Signal(int signo) { process_.Signal(signo); }
  std::optional<int> Wait(std::chrono::milliseconds timeout) { return process_.Wait(timeout); }
  pid_t pid() const { return process_.pid(); }
  const std::string& log_path() const { return log_path_; }
  std::string Log() const;

 private:
  ChildProcess process_;
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

// A new empty directory, removed with everything in it when this goes out of scope.
class ScopedTempDir {
 public:
  explicit ScopedTempDir(const std::string& prefix = "tmp") : path_(MakeTempDir(prefix)) {}
  ~ScopedTempDir() { RemoveTree(path_); }
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string ReadFile(const std::string& path);
void WriteFile(const std::string& path, const std::string& text, int mode = 0600);

}  // namespace breakeven::testing

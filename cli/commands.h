// The admin CLI's commands against a running scheduler. Each returns the process exit status
// and prints results to stdout, errors to stderr.
#pragma once

#include <string>

#include "common/clock.h"

namespace breakeven::cli {

enum class Output { kTable, kJson };

// Where the scheduler is and how to talk to it (global flags).
struct Context {
  std::string scheduler = "127.0.0.1:7070";
  std::string token_file;
  Millis timeout{5000};
  Output output = Output::kTable;
};

int CmdNodes(const Context& ctx);
int CmdStatus(const Context& ctx);
int CmdDrain(const Context& ctx, const std::string& node, const std::string& reason);
int CmdResume(const Context& ctx, const std::string& node);
int CmdEvents(const Context& ctx, const std::string& node, unsigned limit);

}  // namespace breakeven::cli

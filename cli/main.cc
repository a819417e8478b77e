// breakeven: the admin CLI.
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "common/version.h"

using namespace breakeven;

int main(int argc, char** argv) {
  cli::Context ctx;
  int64_t timeout_ms = ctx.timeout.count();
  std::string output = "table";

  CLI::App app{"breakeven: self-host or API, measured. Admin CLI for a breakeven cluster."};
  app.set_version_flag("--version", kVersion);
  app.require_subcommand(1);
  app.add_option("--scheduler", ctx.scheduler, "scheduler HOST:PORT")
      ->envname("BREAKEVEN_SCHEDULER")
      ->capture_default_str();
  app.add_option("--token-file", ctx.token_file,
                 "token file: the cluster token reads, the admin token also changes")
      ->envname("BREAKEVEN_TOKEN_FILE");
  app.add_option("--timeout-ms", timeout_ms, "deadline for connecting and for each request")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{3600000}));

  auto add_output = [&](CLI::App* cmd) {
    cmd->add_option("-o,--output", output, "table or json")
        ->capture_default_str()
        ->check(CLI::IsMember({"table", "json"}));
  };

  CLI::App* nodes = app.add_subcommand("nodes", "list nodes: state, devices, memory, heartbeat");
  add_output(nodes);

  CLI::App* status = app.add_subcommand("status", "count nodes by state");
  add_output(status);

  std::string node, reason;
  CLI::App* drain = app.add_subcommand("drain", "stop placing work on a node (admin token)");
  drain->add_option("node", node, "node name")->required();
  drain->add_option("--reason", reason, "why; shown in `breakeven nodes`")->required();
  add_output(drain);

  CLI::App* resume = app.add_subcommand("resume", "return a drained node to service (admin token)");
  resume->add_option("node", node, "node name")->required();
  add_output(resume);

  unsigned limit = 50;
  CLI::App* events =
      app.add_subcommand("events", "cluster history: registrations, state changes, drains");
  events->add_option("--node", node, "only this node's events");
  events->add_option("--limit", limit, "newest N events")->capture_default_str();
  add_output(events);

  CLI11_PARSE(app, argc, argv);
  ctx.timeout = Millis(timeout_ms);
  ctx.output = output == "json" ? cli::Output::kJson : cli::Output::kTable;

  if (*nodes) return cli::CmdNodes(ctx);
  if (*status) return cli::CmdStatus(ctx);
  if (*drain) return cli::CmdDrain(ctx, node, reason);
  if (*resume) return cli::CmdResume(ctx, node);
  if (*events) return cli::CmdEvents(ctx, node, limit);
  return 2;
}

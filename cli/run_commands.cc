// `breakeven submit`, `runs`, `run show` and `cancel`.
#include <fmt/format.h>

#include <iostream>

#include "cli/commands.h"
#include "cli/query_views.h"
#include "cli/rpc.h"
#include "cli/run_views.h"

namespace breakeven::cli {

int CmdSubmit(const Context& ctx, const std::string& file, bool dry_run) {
  auto yaml = ReadTextFile(file);
  if (!yaml.ok()) return Fail(yaml.status());
  auto client = Connect(ctx);
  if (!client.ok()) return Fail(client.status());
  v1::Envelope req;
  req.mutable_submit_matrix()->set_yaml(std::move(*yaml));
  req.mutable_submit_matrix()->set_source(file);
  req.mutable_submit_matrix()->set_dry_run(dry_run);
  auto reply = CallFor(**client, std::move(req), v1::Envelope::kSubmitMatrixReply, "SubmitMatrix");
  if (!reply.ok()) return Fail(reply.status());
  if (ctx.output == Output::kJson) {
    PrintJson(SubmitJson(reply->submit_matrix_reply(), dry_run));
  } else {
    std::cout << SubmitText(reply->submit_matrix_reply(), dry_run);
  }
  return 0;
}

int CmdRuns(const Context& ctx, uint64_t matrix_id, bool active_only, unsigned limit) {
  auto client = Connect(ctx);
  if (!client.ok()) return Fail(client.status());
  v1::Envelope req;
  req.mutable_list_runs()->set_matrix_id(matrix_id);
  req.mutable_list_runs()->set_active_only(active_only);
  req.mutable_list_runs()->set_limit(limit);
  auto reply = CallFor(**client, std::move(req), v1::Envelope::kListRunsReply, "ListRuns");
  if (!reply.ok()) return Fail(reply.status());
  if (ctx.output == Output::kJson) {
    PrintJson(RunsJson(reply->list_runs_reply()));
  } else {
    std::cout << RunsTable(reply->list_runs_reply());
  }
  return 0;
}

int CmdRunShow(const Context& ctx, uint64_t run_id, bool wide) {
  auto client = Connect(ctx);
  if (!client.ok()) return Fail(client.status());
  v1::Envelope req;
  req.mutable_get_run()->set_run_id(run_id);
  auto reply = CallFor(**client, std::move(req), v1::Envelope::kGetRunReply, "GetRun");
  if (!reply.ok()) return Fail(reply.status());
  const v1::GetRunReply& run = reply->get_run_reply();
  if (ctx.output == Output::kJson) {
    PrintJson(RunDetailsJson(run));
    return 0;
  }
  std::vector<int> columns = AllColumns(run.points());
  if (!wide) {
    auto chosen = SelectColumns(run.points(), {}, DefaultPointColumns());
    if (!chosen.ok()) return Fail(chosen.status());
    columns = std::move(*chosen);
  }
  std::cout << RunDetailsText(run, columns);
  return 0;
}

int CmdCancel(const Context& ctx, uint64_t run_id) {
  auto client = Connect(ctx);
  if (!client.ok()) return Fail(client.status());
  v1::Envelope req;
  req.mutable_cancel_run()->set_run_id(run_id);
  auto reply = CallFor(**client, std::move(req), v1::Envelope::kRunChangeReply, "CancelRun");
  if (!reply.ok()) return Fail(reply.status());
  const v1::RunInfo& run = reply->run_change_reply().run();
  if (ctx.output == Output::kJson) {
    PrintJson(RunJson(run));
  } else {
    std::string reason = run.reason().empty() ? "" : fmt::format(" ({})", run.reason());
    fmt::print("run {}: {}{}\n", run.id(), RunStateName(run.state()), reason);
  }
  return 0;
}

}  // namespace breakeven::cli

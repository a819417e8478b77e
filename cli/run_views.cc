#include "cli/run_views.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "cli/query_views.h"
#include "cli/table.h"
#include "common/clock.h"

namespace breakeven::cli {

namespace {

std::string NodesCell(const v1::RunInfo& run) {
  if (run.nodes().empty()) return "-";
  std::string out;
  for (const auto& n : run.nodes()) out += (out.empty() ? "" : ",") + n;
  return out;
}

std::string AttemptCell(const v1::RunInfo& run) {
  return fmt::format("{}/{}", run.attempt(), run.max_attempts());
}

nlohmann::ordered_json TimeOrNull(int64_t unix_ms) {
  return unix_ms == 0 ? nlohmann::ordered_json(nullptr)
                      : nlohmann::ordered_json(FormatUnixMs(unix_ms));
}

std::string TimeOrDash(int64_t unix_ms) { return unix_ms == 0 ? "-" : FormatUnixMs(unix_ms); }

// Where a submitted run goes: its nodes, or why it waits.
std::string PlacementCell(const v1::RunInfo& run) {
  if (!run.nodes().empty()) return NodesCell(run);
  if (!run.reason().empty()) return run.reason();
  return "-";
}

}  // namespace

std::string RunStateName(v1::RunState state) {
  if (!v1::RunState_IsValid(state) || state == v1::RUN_STATE_UNSPECIFIED) return "UNKNOWN";
  constexpr std::string_view kPrefix = "RUN_STATE_";
  return v1::RunState_Name(state).substr(kPrefix.size());
}

bool IsActive(v1::RunState state) {
  return state == v1::RUN_STATE_PENDING || state == v1::RUN_STATE_PLACED ||
         state == v1::RUN_STATE_STARTING || state == v1::RUN_STATE_RUNNING;
}

std::string ProgressCell(const v1::RunInfo& run) {
  double fraction = std::clamp(std::isfinite(run.progress()) ? run.progress() : 0.0, 0.0, 1.0);
  return fmt::format("{}% {} pts", static_cast<int>(std::floor(fraction * 100)), run.points_done());
}

std::string ReasonCell(const v1::RunInfo& run) {
  switch (run.state()) {
    case v1::RUN_STATE_PENDING:
    case v1::RUN_STATE_FAILED:
    case v1::RUN_STATE_CANCELLED:
      return run.reason();
    default:
      return "";
  }
}

std::string MatrixCell(const v1::RunInfo& run) {
  return fmt::format("{}#{}", run.matrix(), run.matrix_id());
}

std::string RunsTable(const v1::ListRunsReply& reply) {
  Table t({"ID", "MATRIX", "MODEL", "WORKLOAD", "TP", "DEVICE", "STATE", "ATTEMPT", "PROGRESS",
           "NODES", "AGE", "REASON"});
  t.AlignRight(0);
  t.AlignRight(4);
  for (const auto& run : reply.runs()) {
    std::string age = run.created_at_unix_ms() == 0
                          ? "-"
                          : FormatAge(reply.now_unix_ms() - run.created_at_unix_ms());
    t.AddRow({std::to_string(run.id()), MatrixCell(run), run.model(), run.workload(),
              std::to_string(run.tp()), run.device_type(), RunStateName(run.state()),
              AttemptCell(run), ProgressCell(run), NodesCell(run), age, ReasonCell(run)});
  }
  return t.Render();
}

nlohmann::ordered_json RunJson(const v1::RunInfo& run) {
  nlohmann::ordered_json nodes = nlohmann::ordered_json::array();
  for (const auto& n : run.nodes()) nodes.push_back(n);
  return {
      {"id", run.id()},
      {"matrix_id", run.matrix_id()},
      {"matrix", run.matrix()},
      {"batch", run.batch()},
      {"model", run.model()},
      {"weights", run.weights()},
      {"workload", run.workload()},
      {"tp", run.tp()},
      {"device_type", run.device_type()},
      {"load", run.load()},
      {"state", RunStateName(run.state())},
      {"reason", run.reason().empty() ? nlohmann::ordered_json(nullptr)
                                      : nlohmann::ordered_json(run.reason())},
      {"attempt", run.attempt()},
      {"max_attempts", run.max_attempts()},
      {"progress", std::isfinite(run.progress()) ? run.progress() : 0.0},
      {"points_done", run.points_done()},
      {"nodes", nodes},
      {"created_at", TimeOrNull(run.created_at_unix_ms())},
      {"started_at", TimeOrNull(run.started_at_unix_ms())},
      {"finished_at", TimeOrNull(run.finished_at_unix_ms())},
  };
}

nlohmann::ordered_json RunsJson(const v1::ListRunsReply& reply) {
  nlohmann::ordered_json runs = nlohmann::ordered_json::array();
  for (const auto& run : reply.runs()) runs.push_back(RunJson(run));
  return runs;
}

std::string SubmitText(const v1::SubmitMatrixReply& reply, bool dry_run) {
  Table t({"ID", "MODEL", "WEIGHTS", "WORKLOAD", "TP", "DEVICE", "LOAD", "STATE", "PLACEMENT"});
  t.AlignRight(0);
  t.AlignRight(4);
  for (const auto& run : reply.runs()) {
    t.AddRow({dry_run ? "-" : std::to_string(run.id()), run.model(), run.weights(), run.workload(),
              std::to_string(run.tp()), run.device_type(), run.load(), RunStateName(run.state()),
              PlacementCell(run)});
  }
  std::string out = t.Render() + "\n";
  size_t runs = reply.runs_size();
  const char* noun = runs == 1 ? "run" : "runs";
  if (dry_run) {
    out += fmt::format("dry run: {} {}, nothing queued\n", runs, noun);
  } else {
    out += fmt::format("queued matrix {} with {} {}\n", reply.matrix_id(), runs, noun);
  }
  if (reply.next_fire_unix_ms() != 0) {
    out += fmt::format("next scheduled run: {} (UTC)\n", FormatUnixMs(reply.next_fire_unix_ms()));
  }
  return out;
}

nlohmann::ordered_json SubmitJson(const v1::SubmitMatrixReply& reply, bool dry_run) {
  nlohmann::ordered_json runs = nlohmann::ordered_json::array();
  for (const auto& run : reply.runs()) {
    nlohmann::ordered_json j = RunJson(run);
    if (dry_run) j["id"] = nullptr;
    runs.push_back(std::move(j));
  }
  return {{"dry_run", dry_run},
          {"matrix_id",
           dry_run ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(reply.matrix_id())},
          {"runs", runs},
          {"next_fire_at", TimeOrNull(reply.next_fire_unix_ms())}};
}

namespace {

// Events oldest first, whatever order the scheduler sent them in.
std::vector<const v1::Event*> Chronological(const v1::GetRunReply& reply) {
  std::vector<const v1::Event*> events;
  for (const auto& e : reply.events()) events.push_back(&e);
  std::stable_sort(events.begin(), events.end(), [](const v1::Event* a, const v1::Event* b) {
    return a->at_unix_ms() < b->at_unix_ms();
  });
  return events;
}

}  // namespace

std::string RunDetailsText(const v1::GetRunReply& reply, const std::vector<int>& point_columns) {
  const v1::RunInfo& run = reply.run();
  std::string weights = run.weights().empty() ? "" : fmt::format(" (weights {})", run.weights());
  std::vector<std::pair<std::string, std::string>> fields = {
      {"run", std::to_string(run.id())},
      {"matrix", fmt::format("{} (batch {})", MatrixCell(run), run.batch())},
      {"model", run.model() + weights},
      {"workload", run.workload()},
      {"tp", std::to_string(run.tp())},
      {"device", run.device_type()},
      {"load", run.load().empty() ? "-" : run.load()},
      {"state", RunStateName(run.state())},
      {"reason", run.reason().empty() ? "-" : run.reason()},
      {"attempt", AttemptCell(run)},
      {"progress", ProgressCell(run)},
      {"nodes", NodesCell(run)},
      {"created", TimeOrDash(run.created_at_unix_ms())},
      {"started", TimeOrDash(run.started_at_unix_ms())},
      {"finished", TimeOrDash(run.finished_at_unix_ms())},
  };
  std::string out;
  for (const auto& [key, value] : fields) out += fmt::format("{:<10}{}\n", key + ":", value);

  out += "\nevents:\n";
  if (reply.events().empty()) {
    out += "  none\n";
  } else {
    Table events({"TIME", "KIND", "DETAIL"});
    for (const v1::Event* e : Chronological(reply)) {
      events.AddRow({FormatUnixMs(e->at_unix_ms()), e->kind(), e->detail()});
    }
    out += events.Render();
  }

  out += "\npoints:\n";
  if (reply.points().rows().empty()) {
    out += "  none yet\n";
  } else {
    out += QueryTableText(reply.points(), point_columns);
  }
  out += NotesText(reply.points());
  return out;
}

nlohmann::ordered_json RunDetailsJson(const v1::GetRunReply& reply) {
  nlohmann::ordered_json events = nlohmann::ordered_json::array();
  for (const v1::Event* e : Chronological(reply)) {
    events.push_back({{"at", FormatUnixMs(e->at_unix_ms())},
                      {"node", e->node()},
                      {"kind", e->kind()},
                      {"detail", e->detail()}});
  }
  nlohmann::ordered_json notes = nlohmann::ordered_json::array();
  for (const auto& n : reply.points().notes()) notes.push_back(n);
  return {{"run", RunJson(reply.run())},
          {"events", events},
          {"points", QueryTableJson(reply.points(), AllColumns(reply.points()))},
          {"notes", notes}};
}

}  // namespace breakeven::cli

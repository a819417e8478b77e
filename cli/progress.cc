#include "cli/progress.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "cli/run_views.h"
#include "cli/table.h"

namespace breakeven::cli {

namespace {

double Fraction(const v1::RunInfo& run) {
  if (run.state() == v1::RUN_STATE_SUCCEEDED) return 1.0;
  double f = std::isfinite(run.progress()) ? run.progress() : 0.0;
  return std::clamp(f, 0.0, 1.0);
}

// What the run is doing, after its state name.
std::string Detail(const v1::RunInfo& run) {
  switch (run.state()) {
    case v1::RUN_STATE_PENDING:
    case v1::RUN_STATE_FAILED:
    case v1::RUN_STATE_CANCELLED:
      return run.reason().empty() ? "" : ": " + run.reason();
    default:
      break;
  }
  std::string out;
  if (run.state() == v1::RUN_STATE_RUNNING || run.points_done() > 0) {
    std::optional<uint32_t> planned = run.points_planned() > 0
                                          ? std::optional<uint32_t>(run.points_planned())
                                          : PlannedPoints(run.load());
    out += planned ? fmt::format(" {}/{} points", run.points_done(), *planned)
                   : fmt::format(" {} points", run.points_done());
  }
  if (run.attempt() > 1) out += fmt::format(" attempt {}/{}", run.attempt(), run.max_attempts());
  if (IsActive(run.state()) && !run.nodes().empty()) {
    std::string nodes;
    for (const auto& n : run.nodes()) nodes += (nodes.empty() ? "" : ",") + n;
    out += " on " + nodes;
  }
  return out;
}

// Active runs first (running before waiting), then finished ones; by id within each.
int DisplayRank(v1::RunState state) {
  switch (state) {
    case v1::RUN_STATE_RUNNING:
    case v1::RUN_STATE_STARTING:
      return 0;
    case v1::RUN_STATE_PLACED:
    case v1::RUN_STATE_PENDING:
      return 1;
    default:
      return 2;
  }
}

}  // namespace

std::string ProgressBar(double fraction, int width) {
  if (!std::isfinite(fraction)) fraction = 0;
  fraction = std::clamp(fraction, 0.0, 1.0);
  int filled = static_cast<int>(std::floor(fraction * width));
  return "[" + std::string(filled, '#') + std::string(width - filled, '-') + "]";
}

std::optional<uint32_t> PlannedPoints(std::string_view load) {
  size_t at = load.find(" point");
  if (at == std::string_view::npos) return std::nullopt;
  size_t start = at;
  while (start > 0 && std::isdigit(static_cast<unsigned char>(load[start - 1]))) --start;
  if (start == at) return std::nullopt;
  uint32_t n = 0;
  for (size_t i = start; i < at; ++i) n = n * 10 + static_cast<uint32_t>(load[i] - '0');
  if (n == 0) return std::nullopt;
  return n;
}

std::string WatchLine(const v1::RunInfo& run) {
  double fraction = Fraction(run);
  std::string what =
      fmt::format("run {} {} {} tp{}", run.id(), run.model(), run.workload(), run.tp());
  if (!run.device_type().empty()) what += " " + run.device_type();
  return fmt::format("{} {:>4}  {} {}{}", ProgressBar(fraction),
                     fmt::format("{}%", static_cast<int>(std::floor(fraction * 100))), what,
                     RunStateName(run.state()), Detail(run));
}

std::string FitToWidth(const std::string& line, size_t columns) {
  if (columns == 0 || DisplayWidth(line) <= columns) return line;
  // Keep `columns` code points: stop before the lead byte of the first one past the limit.
  size_t seen = 0;
  for (size_t i = 0; i < line.size(); ++i) {
    if ((line[i] & 0xc0) != 0x80 && seen++ == columns) return line.substr(0, i);
  }
  return line;
}

RunCounts CountRuns(const std::vector<v1::RunInfo>& runs) {
  RunCounts c;
  for (const auto& run : runs) {
    switch (run.state()) {
      case v1::RUN_STATE_PENDING:
      case v1::RUN_STATE_PLACED:
        ++c.pending;
        break;
      case v1::RUN_STATE_STARTING:
      case v1::RUN_STATE_RUNNING:
        ++c.running;
        break;
      case v1::RUN_STATE_SUCCEEDED:
        ++c.succeeded;
        break;
      case v1::RUN_STATE_FAILED:
        ++c.failed;
        break;
      case v1::RUN_STATE_CANCELLED:
        ++c.cancelled;
        break;
      default:
        break;
    }
  }
  return c;
}

std::string CountsLine(const RunCounts& c) {
  return fmt::format("{} running, {} pending, {} succeeded, {} failed, {} cancelled", c.running,
                     c.pending, c.succeeded, c.failed, c.cancelled);
}

std::string SummaryLine(const RunCounts& c) {
  return fmt::format("done: {} succeeded, {} failed, {} cancelled", c.succeeded, c.failed,
                     c.cancelled);
}

std::vector<std::string> WatchFrame(const std::vector<v1::RunInfo>& runs, size_t max_lines,
                                    size_t columns) {
  std::vector<const v1::RunInfo*> order;
  for (const auto& run : runs) order.push_back(&run);
  std::stable_sort(order.begin(), order.end(), [](const v1::RunInfo* a, const v1::RunInfo* b) {
    int ra = DisplayRank(a->state()), rb = DisplayRank(b->state());
    return ra != rb ? ra < rb : a->id() < b->id();
  });
  max_lines = std::max<size_t>(max_lines, 2);
  size_t room = max_lines - 1;  // the counts line
  size_t shown = order.size() <= room ? order.size() : room - 1;
  std::vector<std::string> lines;
  for (size_t i = 0; i < shown; ++i) lines.push_back(FitToWidth(WatchLine(*order[i]), columns));
  if (shown < order.size()) {
    size_t active = 0;
    for (size_t i = shown; i < order.size(); ++i) active += IsActive(order[i]->state()) ? 1 : 0;
    lines.push_back(FitToWidth(
        fmt::format("... {} more runs ({} active)", order.size() - shown, active), columns));
  }
  lines.push_back(FitToWidth(CountsLine(CountRuns(runs)), columns));
  return lines;
}

std::string RedrawFrame(size_t previous_lines, const std::vector<std::string>& lines) {
  std::string out;
  if (previous_lines > 0) out += fmt::format("\x1b[{}A", previous_lines);
  for (const auto& line : lines) out += "\r\x1b[2K" + line + "\n";
  out += "\x1b[J";
  return out;
}

bool ChangeTracker::Update(const v1::RunInfo& run) {
  std::pair<v1::RunState, uint32_t> now{run.state(), run.points_done()};
  auto [it, inserted] = seen_.try_emplace(run.id(), now);
  if (inserted) return true;
  if (it->second == now) return false;
  it->second = now;
  return true;
}

std::vector<v1::RunInfo> SelectMatrixRuns(const v1::ListRunsReply& reply) {
  uint32_t newest = 0;
  for (const auto& run : reply.runs()) newest = std::max(newest, run.batch());
  std::vector<v1::RunInfo> chosen;
  for (const auto& run : reply.runs()) {
    if (run.batch() == newest || IsActive(run.state())) chosen.push_back(run);
  }
  std::sort(chosen.begin(), chosen.end(),
            [](const v1::RunInfo& a, const v1::RunInfo& b) { return a.id() < b.id(); });
  return chosen;
}

}  // namespace breakeven::cli

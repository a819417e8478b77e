// `breakeven watch`, the pure part: the progress bar, one line per run, the frame redrawn on a
// terminal, which runs a poll changed, and the closing summary. The polling loop is in watch.cc.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proto/breakeven.pb.h"

namespace breakeven::cli {

// "[#########-----------]": `width` cells, filled in proportion to `fraction` (clamped to 0..1,
// rounded down so a full bar means done).
std::string ProgressBar(double fraction, int width = 20);

// The load points a plan expects, read from RunInfo.load ("sweep 4 points x 10s" -> 4); none when
// the text does not say.
std::optional<uint32_t> PlannedPoints(std::string_view load);

// One run:
//   [#########-----------]  45%  run 12 tiny-15m 128/1024 tp2 cpu RUNNING 3/6 points on gpu-a
//   [--------------------]   0%  run 13 tiny-15m 128/1024 tp4 cpu PENDING: no node has 4 cores
std::string WatchLine(const v1::RunInfo& run);

// `line` cut to `columns` display columns (a wrapped line would break the redraw); 0: no limit.
std::string FitToWidth(const std::string& line, size_t columns);

struct RunCounts {
  int pending = 0;  // PENDING and PLACED
  int running = 0;  // STARTING and RUNNING
  int succeeded = 0;
  int failed = 0;
  int cancelled = 0;
  int active() const { return pending + running; }
};
RunCounts CountRuns(const std::vector<v1::RunInfo>& runs);
// "2 running, 1 pending, 3 succeeded, 1 failed, 0 cancelled"
std::string CountsLine(const RunCounts& counts);
// When nothing is active any more: "done: 3 succeeded, 1 failed, 0 cancelled".
std::string SummaryLine(const RunCounts& counts);

// What a terminal shows: one WatchLine per run (active runs first, then by id) and a counts line,
// at most `max_lines` lines in all (a "... N more runs" line stands for the rest), each cut to
// `columns`.
std::vector<std::string> WatchFrame(const std::vector<v1::RunInfo>& runs, size_t max_lines,
                                    size_t columns);

// The bytes that replace the `previous_lines` lines drawn last time with `lines`: cursor up,
// each line cleared and rewritten, anything below cleared.
std::string RedrawFrame(size_t previous_lines, const std::vector<std::string>& lines);

// Remembers each run's state and points done; Update says whether this run is new or either one
// changed since the last call for it.
class ChangeTracker {
 public:
  bool Update(const v1::RunInfo& run);

 private:
  std::map<uint64_t, std::pair<v1::RunState, uint32_t>> seen_;
};

// The runs `watch --matrix` follows from a list of the matrix's runs: those of its newest batch
// (a scheduled matrix adds one batch per firing) and any other run still active, by id.
std::vector<v1::RunInfo> SelectMatrixRuns(const v1::ListRunsReply& reply);

}  // namespace breakeven::cli

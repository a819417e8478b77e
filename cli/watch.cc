// `breakeven watch`: polls ListRuns until the runs it follows are done.
//
// On a terminal the frame (one line per run and a counts line) is redrawn in place; lines are
// cut to the terminal's width and the frame to its height, so the cursor-up count stays right.
// Otherwise (a pipe, a log file) one line is printed per change of a run's state or points done.
#include <fmt/format.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <thread>

#include "cli/commands.h"
#include "cli/progress.h"
#include "cli/rpc.h"
#include "cli/run_views.h"
#include "common/clock.h"

namespace breakeven::cli {

namespace {

struct TerminalSize {
  size_t columns = 0;  // 0: unknown, no limit
  size_t rows = 0;
};

TerminalSize QueryTerminalSize() {
  winsize ws{};
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) != 0) return {};
  return {ws.ws_col, ws.ws_row};
}

// Follows a selection of runs across polls.
class Follower {
 public:
  Follower(SchedulerClient& client, uint64_t matrix_id) : client_(client), matrix_id_(matrix_id) {}

  // Refreshes the selection: the matrix's newest batch and its active runs, or every active run
  // plus those seen active before (asked for one by one once they leave the active list, so the
  // summary knows how they ended).
  Status Poll() {
    v1::Envelope req;
    req.mutable_list_runs()->set_matrix_id(matrix_id_);
    req.mutable_list_runs()->set_active_only(matrix_id_ == 0);
    BE_ASSIGN_OR_RETURN(v1::Envelope reply,
                        CallFor(client_, std::move(req), v1::Envelope::kListRunsReply, "ListRuns"));
    now_unix_ms_ = reply.list_runs_reply().now_unix_ms();
    if (matrix_id_ != 0) {
      runs_.clear();
      for (auto& run : SelectMatrixRuns(reply.list_runs_reply())) runs_[run.id()] = std::move(run);
      return Status::Ok();
    }
    std::map<uint64_t, v1::RunInfo> listed;
    for (const auto& run : reply.list_runs_reply().runs()) listed[run.id()] = run;
    for (auto& [id, run] : runs_) {
      if (listed.count(id) != 0 || !IsActive(run.state())) continue;
      v1::Envelope get;
      get.mutable_get_run()->set_run_id(id);
      BE_ASSIGN_OR_RETURN(v1::Envelope got,
                          CallFor(client_, std::move(get), v1::Envelope::kGetRunReply, "GetRun"));
      run = got.get_run_reply().run();
    }
    for (auto& [id, run] : listed) runs_[id] = std::move(run);
    return Status::Ok();
  }

  std::vector<v1::RunInfo> Runs() const {
    std::vector<v1::RunInfo> out;
    for (const auto& [id, run] : runs_) out.push_back(run);
    return out;
  }
  int64_t now_unix_ms() const { return now_unix_ms_; }

 private:
  SchedulerClient& client_;
  uint64_t matrix_id_;
  std::map<uint64_t, v1::RunInfo> runs_;
  int64_t now_unix_ms_ = 0;
};

}  // namespace

int CmdWatch(const Context& ctx, const WatchOptions& options) {
  auto client = Connect(ctx);
  if (!client.ok()) return Fail(client.status());
  Follower follower(**client, options.matrix_id);
  const bool terminal = isatty(STDOUT_FILENO) == 1;
  ChangeTracker changes;
  size_t drawn = 0;
  for (;;) {
    if (Status s = follower.Poll(); !s.ok()) return Fail(s);
    std::vector<v1::RunInfo> runs = follower.Runs();
    if (terminal) {
      TerminalSize size = QueryTerminalSize();
      size_t max_lines = size.rows > 1 ? size.rows - 1 : 50;
      std::vector<std::string> frame = WatchFrame(runs, max_lines, size.columns);
      std::fputs(RedrawFrame(drawn, frame).c_str(), stdout);
      drawn = frame.size();
    } else {
      for (const auto& run : runs) {
        if (changes.Update(run)) {
          fmt::print("{}  {}\n", FormatUnixMs(follower.now_unix_ms()), WatchLine(run));
        }
      }
    }
    std::fflush(stdout);

    RunCounts counts = CountRuns(runs);
    if (counts.active() == 0) {
      if (runs.empty() && options.matrix_id != 0) {
        fmt::print("matrix {} has no runs\n", options.matrix_id);
      } else if (runs.empty()) {
        fmt::print("no active runs\n");
      } else {
        fmt::print("{}\n", SummaryLine(counts));
      }
      return counts.failed > 0 ? 1 : 0;
    }
    if (options.once) return 0;
    std::this_thread::sleep_for(options.interval);
  }
}

}  // namespace breakeven::cli

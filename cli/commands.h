// The admin CLI's commands against a running scheduler. Each returns the process exit status
// and prints results to stdout, errors to stderr ("breakeven: <what went wrong>", exit 1).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"

namespace breakeven::kernels {
struct GemmPoint;
}  // namespace breakeven::kernels

namespace breakeven::cli {

// -o: table for people; json and csv for scripts (csv only where the result is one table).
enum class Output { kTable, kJson, kCsv };

// Where the scheduler is and how to talk to it (global flags).
struct Context {
  std::string scheduler = "127.0.0.1:7070";
  std::string token_file;
  Millis timeout{5000};
  Output output = Output::kTable;
};

// Cluster: nodes and their history (commands.cc).
int CmdNodes(const Context& ctx);
int CmdStatus(const Context& ctx);
int CmdDrain(const Context& ctx, const std::string& node, const std::string& reason);
int CmdResume(const Context& ctx, const std::string& node);
int CmdEvents(const Context& ctx, const std::string& node, unsigned limit);

// Benchmark matrices and their runs (run_commands.cc).
int CmdSubmit(const Context& ctx, const std::string& file, bool dry_run);
int CmdRuns(const Context& ctx, uint64_t matrix_id, bool active_only, unsigned limit);
// `wide`: every column of the points table, not the compact default.
int CmdRunShow(const Context& ctx, uint64_t run_id, bool wide);
int CmdCancel(const Context& ctx, uint64_t run_id);

// `breakeven watch` (watch.cc). Without a matrix it follows every active run.
struct WatchOptions {
  uint64_t matrix_id = 0;
  Millis interval{1000};
  bool once = false;  // one poll, then exit 0 (or the summary's status when nothing is active)
};
int CmdWatch(const Context& ctx, const WatchOptions& options);

// Queries answered with a table: results, prices, compare, plan (query_commands.cc).
struct QueryOptions {
  std::string kind;
  std::map<std::string, std::string> args;   // only the flags given
  std::vector<std::string> columns;          // --columns: these, in this order, in every format
  std::vector<std::string> default_columns;  // the text table's columns without --columns
  bool wide = false;                         // --wide: every column in the text table too
};
int CmdQuery(const Context& ctx, const QueryOptions& options);

// `breakeven demo` (demo.cc): a scheduler and two CPU node agents on loopback, one matrix
// through them, then the results and the economics.
struct DemoOptions {
  std::string dir = ".breakeven-demo";  // token, database, logs
  std::string matrix;                   // default: examples/demo.yaml
  int port = 0;                         // 0: any free port
  std::string api = "OpenAI/gpt-4o-mini";
  std::string rate = "2";                          // requests/s for the capacity plan
  std::string slo = "ttft_p95=1s,tpot_p95=100ms";  // for the capacity plan
  bool keep = false;                               // leave the cluster running
};
int CmdDemo(const DemoOptions& options);

// `breakeven gemm-sweep` (gemm_sweep.cc): W (m x k) times X (k x n) on this machine for each n,
// without a scheduler. Shows that a product is memory-bound, and so costs about the same, until
// n reaches the machine balance.
struct GemmSweepOptions {
  std::string backend = "cpu";                     // --backend: cpu or cuda
  int device = 0;                                  // --device: CUDA ordinal
  int64_t m = 8192;                                // --m: rows of W (output features)
  int64_t k = 8192;                                // --k: columns of W (input features)
  std::string n = "1,2,4,8,16,32,64,128,256,512";  // --n: columns of X, comma-separated
  int repeats = 5;                                 // --repeats: timed runs per n (median shown)
};
// The column counts from --n after checking every flag; an error names the flag at fault.
Result<std::vector<int64_t>> CheckGemmSweepOptions(const GemmSweepOptions& options);
// The points as a table (N, TIME_US, TFLOP/S or GFLOP/S, TIME_VS_N=<first>) and the closing line.
std::string GemmSweepTable(const std::vector<kernels::GemmPoint>& points, bool tflops);
// "N=64 costs 1.08x the time of N=1 for 64x the work.": the largest n within 1.5x of the first
// point's time, else within 3x, else the second point; empty with fewer than two points.
std::string GemmSweepVerdict(const std::vector<kernels::GemmPoint>& points);
int CmdGemmSweep(const GemmSweepOptions& options, Output output);

// The price catalog and settings (admin token).
int CmdPricesImport(const Context& ctx, const std::string& csv_file);
int CmdSetSetting(const Context& ctx, const std::string& key, const std::string& value);

}  // namespace breakeven::cli

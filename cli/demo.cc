// `breakeven demo`: a whole cluster on this machine, one benchmark matrix through it, and the
// answer. Starts a scheduler and two CPU node agents on loopback (real processes, real sockets),
// submits examples/demo.yaml, shows live progress, then the results and the economics, and
// leaves the SQLite file for sqlite3 and Grafana.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "cli/commands.h"
#include "cli/query_views.h"
#include "cli/rpc.h"
#include "cli/run_views.h"
#include "common/process.h"

namespace breakeven::cli {

namespace fs = std::filesystem;

namespace {

// A port on 127.0.0.1 that was free a moment ago.
Result<int> FreeLoopbackPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (fd >= 0) ::close(fd);
    return Unavailable("cannot find a free port on 127.0.0.1");
  }
  ::close(fd);
  return static_cast<int>(ntohs(addr.sin_port));
}

// A program of this build: beside this executable (installed), or in the build tree's folder
// for it (build/cli/breakeven -> build/scheduler/breakeven-scheduler).
Result<std::string> Sibling(const std::string& name, const std::string& build_dir) {
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec).parent_path();
  for (fs::path p : {self / name, self / ".." / build_dir / name}) {
    if (fs::exists(p, ec)) return p.lexically_normal().string();
  }
  return NotFound("cannot find {} next to {} (build everything: scripts/setup.sh)", name,
                  self.string());
}

// examples/demo.yaml from the working directory, else from the source tree this was built from.
std::string DefaultMatrix() {
  std::error_code ec;
  if (fs::exists("examples/demo.yaml", ec)) return "examples/demo.yaml";
  return std::string(BREAKEVEN_SOURCE_DIR) + "/examples/demo.yaml";
}

Status WriteToken(const fs::path& path) {
  std::error_code ec;
  if (fs::exists(path, ec) && fs::file_size(path, ec) > 0) return Status::Ok();
  std::random_device rd;
  std::string token;
  for (int i = 0; i < 48; ++i) token += "0123456789abcdef"[rd() % 16];
  std::ofstream out(path);
  out << token << "\n";
  if (!out) return Unavailable("cannot write {}", path.string());
  fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write, ec);
  return Status::Ok();
}

void Heading(const std::string& text) { fmt::print("\n== {} ==\n\n", text); }

}  // namespace

int CmdDemo(const DemoOptions& o) {
  const fs::path dir = fs::absolute(o.dir);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Fail(Unavailable("cannot create {}: {}", dir.string(), ec.message()));
  const fs::path token = dir / "cluster.token";
  if (Status s = WriteToken(token); !s.ok()) return Fail(s);
  const std::string matrix = o.matrix.empty() ? DefaultMatrix() : o.matrix;
  Result<std::string> yaml = ReadTextFile(matrix);
  if (!yaml.ok()) return Fail(yaml.status());

  Result<std::string> scheduler_bin = Sibling("breakeven-scheduler", "scheduler");
  Result<std::string> node_bin = Sibling("breakeven-node", "node");
  Result<std::string> worker_bin = Sibling("breakeven-worker", "node");
  for (const auto* r : {&scheduler_bin, &node_bin, &worker_bin}) {
    if (!r->ok()) return Fail(r->status());
  }
  Result<int> port = o.port > 0 ? Result<int>(o.port) : FreeLoopbackPort();
  if (!port.ok()) return Fail(port.status());

  Context ctx;
  ctx.scheduler = fmt::format("127.0.0.1:{}", *port);
  ctx.token_file = token.string();
  ctx.timeout = Millis(10000);

  // The cluster: a scheduler and two node agents, each with half of this machine's cores so
  // their runs do not measure each other.
  const unsigned cores = std::max(2u, std::thread::hardware_concurrency());
  const fs::path db = dir / "breakeven.db";
  std::vector<ChildProcess> procs;
  auto start = [&](std::vector<std::string> argv, const std::string& log) -> Status {
    BE_ASSIGN_OR_RETURN(ChildProcess p, ChildProcess::Start(argv, log, log));
    procs.push_back(std::move(p));
    return Status::Ok();
  };
  Heading("Starting a local cluster");
  fmt::print("scheduler on {} (database {}), nodes demo-a and demo-b with {} cores each\n",
             ctx.scheduler, db.string(), cores / 2);
  if (Status s = start({*scheduler_bin, "--listen", ctx.scheduler, "--http", "127.0.0.1:0", "--db",
                        db.string(), "--token-file", token.string()},
                       (dir / "scheduler.log").string());
      !s.ok()) {
    return Fail(s);
  }
  for (const char* name : {"demo-a", "demo-b"}) {
    if (Status s = start({*node_bin, "--scheduler", ctx.scheduler, "--token-file", token.string(),
                          "--name", name, "--worker", *worker_bin, "--work-dir",
                          (dir / fmt::format("work-{}", name)).string(), "--cpu-cores",
                          std::to_string(cores / 2)},
                         (dir / fmt::format("{}.log", name)).string());
        !s.ok()) {
      return Fail(s);
    }
  }

  // Wait for both agents: they calibrate (bandwidth and matrix rate) before registering.
  std::unique_ptr<SchedulerClient> client;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  for (;;) {
    if (!procs[0].running()) {
      return Fail(Unavailable("the scheduler exited; see {}", (dir / "scheduler.log").string()));
    }
    if (!client) {
      auto c = Connect(ctx);
      if (c.ok()) client = std::move(*c);
    }
    if (client) {
      v1::Envelope req;
      req.mutable_list_nodes();
      auto reply = CallFor(*client, req, v1::Envelope::kListNodesReply, "list nodes");
      int up = 0;
      if (reply.ok()) {
        for (const auto& n : reply->list_nodes_reply().nodes()) {
          up += n.state() == v1::NODE_STATE_UP && n.connected() ? 1 : 0;
        }
      }
      if (up >= 2) break;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return Fail(DeadlineExceeded("the node agents did not come up within 90 s; see {}/*.log",
                                   dir.string()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  CmdNodes(ctx);

  Heading(fmt::format("Submitting {}", matrix));
  v1::Envelope submit;
  submit.mutable_submit_matrix()->set_yaml(*yaml);
  submit.mutable_submit_matrix()->set_source(fs::path(matrix).filename().string());
  auto submitted = CallFor(*client, submit, v1::Envelope::kSubmitMatrixReply, "submit");
  if (!submitted.ok()) return Fail(submitted.status());
  const v1::SubmitMatrixReply& reply = submitted->submit_matrix_reply();
  fmt::print("{}", SubmitText(reply, false));
  const std::string matrix_id = std::to_string(reply.matrix_id());
  std::string model = reply.runs_size() > 0 ? reply.runs(0).model() : "";
  std::string workload = reply.runs_size() > 0 ? reply.runs(0).workload() : "";

  Heading("Running (live progress)");
  WatchOptions watch;
  watch.matrix_id = reply.matrix_id();
  watch.interval = Millis(500);
  const int watched = CmdWatch(ctx, watch);

  Heading("Results: one row per load point");
  QueryOptions results;
  results.kind = "results";
  results.args = {{"matrix", matrix_id}};
  results.default_columns = DefaultResultColumns();
  CmdQuery(ctx, results);

  Heading(fmt::format("Self-hosted against {}", o.api));
  QueryOptions compare;
  compare.kind = "compare";
  compare.args = {{"model", model}, {"api", o.api}};
  compare.default_columns = DefaultCompareColumns();
  CmdQuery(ctx, compare);

  Heading(fmt::format("Capacity plan: {} at {} requests/s of {}", model, o.rate, workload));
  QueryOptions plan;
  plan.kind = "plan";
  plan.args = {{"model", model}, {"workload", workload}, {"rate", o.rate}, {"compare_to", o.api}};
  if (!o.slo.empty()) plan.args["slo"] = o.slo;
  plan.default_columns = DefaultPlanColumns();
  CmdQuery(ctx, plan);

  Heading("What is left");
  fmt::print(
      "Database: {}\n"
      "  sqlite3 {} 'SELECT * FROM load_points LIMIT 5'\n"
      "  the queries behind results, compare and plan: db/queries/*.sql (docs/queries.md)\n"
      "Logs: {}/scheduler.log, {}/demo-a.log, {}/demo-b.log, worker logs in {}/work-*/\n",
      db.string(), db.string(), dir.string(), dir.string(), dir.string(), dir.string());
  if (o.keep) {
    std::ofstream pids(dir / "pids");
    for (ChildProcess& p : procs) {
      pids << p.pid() << "\n";
      p.Detach();
    }
    fmt::print(
        "The cluster keeps running on {}: try\n"
        "  build/cli/breakeven --scheduler {} --token-file {} runs\n"
        "Stop it with: kill $(cat {}/pids)\n",
        ctx.scheduler, ctx.scheduler, token.string(), dir.string());
  } else {
    for (ChildProcess& p : procs) p.Signal(SIGTERM);
    for (ChildProcess& p : procs) p.Wait(std::chrono::seconds(10));
    fmt::print("The cluster has stopped (run with --keep to leave it running).\n");
  }
  return watched;
}

}  // namespace breakeven::cli

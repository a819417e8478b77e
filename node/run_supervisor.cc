#include "node/run_supervisor.h"

#include <google/protobuf/util/json_util.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "common/endpoint.h"
#include "common/process.h"

namespace breakeven::node {

namespace fs = std::filesystem;

struct RunSupervisor::Attempt {
  v1::RunAssignment assignment;
  fs::path dir;
  std::vector<uint32_t> ranks;
  std::vector<ChildProcess> children;  // by position in `ranks`
  std::thread thread;
  std::atomic<bool> kill_requested{false};
  std::atomic<bool> done{false};
  std::mutex mu;
  std::string kill_reason;      // under mu
  std::string metrics_address;  // under mu: rank 0's /metrics, once it said where

  // Without the metrics address: what run events carry.
  v1::RunRef Ref() const {
    v1::RunRef r;
    r.set_run_id(assignment.run_id());
    r.set_attempt(assignment.attempt());
    return r;
  }
  fs::path OutPath(uint32_t rank) const { return dir / fmt::format("rank-{}.out", rank); }
  fs::path LogPath(uint32_t rank) const { return dir / fmt::format("rank-{}.log", rank); }
  fs::path ReportPath(uint32_t rank) const {
    return dir / fmt::format("rank-{}.report.json", rank);
  }
};

namespace {

v1::RunEvent MakeEvent(const v1::RunRef& ref) {
  v1::RunEvent e;
  *e.mutable_run() = ref;
  return e;
}

// Why a rank stopped, in its own words: the error in its report, else its last log line.
std::string LastWords(const fs::path& report, const fs::path& log) {
  std::ifstream r(report);
  if (r) {
    try {
      nlohmann::json j = nlohmann::json::parse(r);
      if (j.contains("error")) return j["error"].get<std::string>();
    } catch (const std::exception&) {
    }
  }
  std::ifstream in(log);
  std::string line, last;
  while (std::getline(in, line)) {
    if (!line.empty()) last = line;
  }
  return last.empty() ? "no message" : last;
}

// Stops every child still running: SIGTERM, then SIGKILL after `grace`.
void StopAll(std::vector<ChildProcess>& children, std::chrono::milliseconds grace) {
  for (ChildProcess& c : children) {
    if (c.running()) c.Signal(SIGTERM);
  }
  const auto deadline = std::chrono::steady_clock::now() + grace;
  for (ChildProcess& c : children) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (!c.Wait(std::max(left, std::chrono::milliseconds(0)))) {
      c.Signal(SIGKILL);
      c.Wait(std::chrono::seconds(10));
    }
  }
}

// Reads the complete lines appended to a file since the last call.
class LineTail {
 public:
  explicit LineTail(fs::path path) : path_(std::move(path)) {}
  std::vector<std::string> Next() {
    std::vector<std::string> lines;
    std::ifstream in(path_, std::ios::binary);
    if (!in) return lines;
    in.seekg(static_cast<std::streamoff>(offset_));
    std::string chunk((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    offset_ += chunk.size();
    partial_ += chunk;
    size_t start = 0;
    for (size_t nl; (nl = partial_.find('\n', start)) != std::string::npos; start = nl + 1) {
      lines.push_back(partial_.substr(start, nl - start));
    }
    partial_.erase(0, start);
    return lines;
  }

 private:
  fs::path path_;
  size_t offset_ = 0;
  std::string partial_;
};

}  // namespace

RunSupervisor::RunSupervisor(SupervisorOptions options, Emit emit)
    : options_(std::move(options)), emit_(std::move(emit)) {}

RunSupervisor::~RunSupervisor() {
  std::vector<std::shared_ptr<Attempt>> all;
  {
    std::lock_guard lock(mu_);
    for (auto& [key, a] : attempts_) all.push_back(a);
  }
  for (auto& a : all) {
    {
      std::lock_guard lock(a->mu);
      a->kill_reason = "the node agent is stopping";
    }
    a->kill_requested = true;
  }
  for (auto& a : all) {
    if (a->thread.joinable()) a->thread.join();
  }
}

std::string RunSupervisor::VisibleDevice(uint32_t ordinal, std::string_view parent) {
  std::vector<std::string_view> entries;
  size_t start = 0;
  while (start <= parent.size() && !parent.empty()) {
    const size_t comma = parent.find(',', start);
    const std::string_view entry = parent.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    if (!entry.empty()) entries.push_back(entry);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  if (ordinal < entries.size()) return std::string(entries[ordinal]);
  return std::to_string(ordinal);
}

std::vector<std::string> RunSupervisor::WorkerArgv(const SupervisorOptions& o,
                                                   const v1::RunAssignment& a, uint32_t rank,
                                                   const std::string& host,
                                                   const std::string& report_path) {
  std::vector<std::string> argv = {o.worker_binary,
                                   "--model",
                                   a.model(),
                                   "--weights",
                                   a.weights(),
                                   "--dtype",
                                   a.dtype(),
                                   "--tp",
                                   std::to_string(a.tp()),
                                   "--rank",
                                   std::to_string(rank),
                                   "--group",
                                   a.group(),
                                   "--collectives",
                                   a.collectives().empty() ? "shm" : a.collectives(),
                                   "--host",
                                   host,
                                   "--backend",
                                   a.backend().empty() ? "cpu" : a.backend(),
                                   "--kv-cache-mib",
                                   std::to_string(a.kv_cache_mib()),
                                   "--load-json",
                                   a.load_json(),
                                   "--report",
                                   report_path};
  if (a.tp() > 1) argv.insert(argv.end(), {"--scheduler", o.scheduler});
  if (a.threads_per_rank() > 0) {
    argv.insert(argv.end(), {"--threads", std::to_string(a.threads_per_rank())});
  }
  if (a.peak_bandwidth_gb_s() > 0) {
    argv.insert(argv.end(), {"--peak-bandwidth-gb-s", fmt::format("{}", a.peak_bandwidth_gb_s())});
  }
  if (a.peak_matmul_tflops() > 0) {
    argv.insert(argv.end(), {"--peak-matmul-tflops", fmt::format("{}", a.peak_matmul_tflops())});
  }
  if (rank == 0) {
    argv.push_back("--events");
    argv.insert(argv.end(), {"--metrics-listen", HostPort{o.metrics_host, 0}.ToString(), "--run-id",
                             std::to_string(a.run_id()), "--attempt", std::to_string(a.attempt())});
  }
  return argv;
}

void RunSupervisor::Reap() {
  std::vector<std::shared_ptr<Attempt>> finished;
  {
    std::lock_guard lock(mu_);
    for (auto it = attempts_.begin(); it != attempts_.end();) {
      if (it->second->done) {
        finished.push_back(it->second);
        it = attempts_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& a : finished) {
    if (a->thread.joinable()) a->thread.join();
  }
}

void RunSupervisor::Assign(const v1::RunAssignment& as, const std::string& host) {
  Reap();
  const auto key = std::make_pair(as.run_id(), as.attempt());
  auto a = std::make_shared<Attempt>();
  a->assignment = as;
  a->ranks.assign(as.ranks().begin(), as.ranks().end());
  {
    std::lock_guard lock(mu_);
    if (attempts_.count(key)) return;  // sent again after a reconnect
    attempts_[key] = a;
  }
  auto fail = [&](const std::string& why) {
    spdlog::error("run {} attempt {}: {}", as.run_id(), as.attempt(), why);
    StopAll(a->children, options_.kill_grace);
    v1::RunEvent e = MakeEvent(a->Ref());
    e.set_failed(why);
    emit_(std::move(e));
    a->done = true;
  };
  a->dir = fs::path(options_.work_dir) / fmt::format("run-{}-{}", as.run_id(), as.attempt());
  std::error_code ec;
  fs::create_directories(a->dir, ec);
  if (ec) return fail(fmt::format("cannot create {}: {}", a->dir.string(), ec.message()));
  if (a->ranks.empty()) return fail("the assignment names no ranks");

  for (size_t i = 0; i < a->ranks.size(); ++i) {
    const uint32_t rank = a->ranks[i];
    std::vector<std::string> env = {"BREAKEVEN_TOKEN=" + options_.token};
    if (as.backend() == "cuda" && static_cast<int>(i) < as.devices_size()) {
      const char* parent = std::getenv("CUDA_VISIBLE_DEVICES");
      env.push_back("CUDA_VISIBLE_DEVICES=" +
                    VisibleDevice(as.devices(static_cast<int>(i)), parent ? parent : ""));
    }
    auto argv = WorkerArgv(options_, as, rank, host, a->ReportPath(rank).string());
    Result<ChildProcess> child =
        ChildProcess::Start(argv, a->OutPath(rank).string(), a->LogPath(rank).string(), env);
    if (!child.ok()) return fail(fmt::format("rank {}: {}", rank, child.status().message()));
    a->children.push_back(std::move(*child));
  }
  spdlog::info("run {} attempt {}: started {} worker(s) ({}), logs in {}", as.run_id(),
               as.attempt(), a->children.size(), as.model(), a->dir.string());
  v1::RunEvent started = MakeEvent(a->Ref());
  started.set_started(true);
  emit_(std::move(started));
  a->thread = std::thread([this, a] { Watch(a); });
}

void RunSupervisor::Kill(uint64_t run_id, uint32_t attempt, const std::string& reason) {
  std::lock_guard lock(mu_);
  auto it = attempts_.find({run_id, attempt});
  if (it == attempts_.end()) return;
  {
    std::lock_guard alock(it->second->mu);
    it->second->kill_reason = reason;
  }
  it->second->kill_requested = true;
}

std::vector<v1::RunRef> RunSupervisor::Running() const {
  std::lock_guard lock(mu_);
  std::vector<v1::RunRef> out;
  for (const auto& [key, a] : attempts_) {
    if (a->done) continue;
    v1::RunRef ref = a->Ref();
    std::lock_guard alock(a->mu);
    ref.set_metrics_address(a->metrics_address);
    out.push_back(std::move(ref));
  }
  return out;
}

int RunSupervisor::WorkersRunning() const {
  std::lock_guard lock(mu_);
  int workers = 0;
  for (const auto& [key, a] : attempts_) {
    if (!a->done) workers += static_cast<int>(a->ranks.size());
  }
  return workers;
}

void RunSupervisor::Watch(std::shared_ptr<Attempt> a) {
  const v1::RunRef ref = a->Ref();
  const bool has_rank0 = std::find(a->ranks.begin(), a->ranks.end(), 0u) != a->ranks.end();
  LineTail events(a->OutPath(0));
  std::vector<std::optional<int>> exits(a->children.size());

  auto forward_points = [&] {
    if (!has_rank0) return;
    for (const std::string& line : events.Next()) {
      if (line.empty()) continue;
      try {
        nlohmann::json j = nlohmann::json::parse(line);
        if (j.contains("metrics_address") && j["metrics_address"].is_string()) {
          std::lock_guard lock(a->mu);
          a->metrics_address = j["metrics_address"].get<std::string>();
          continue;
        }
        if (!j.contains("point")) continue;
        v1::RunEvent e = MakeEvent(ref);
        auto parsed =
            google::protobuf::util::JsonStringToMessage(j["point"].dump(), e.mutable_point());
        if (!parsed.ok()) {
          spdlog::warn("run {}: rank 0 printed a point that does not parse: {}", ref.run_id(),
                       parsed.ToString());
          continue;
        }
        emit_(std::move(e));
      } catch (const std::exception& ex) {
        spdlog::debug("run {}: rank 0 stdout line is not JSON: {}", ref.run_id(), ex.what());
      }
    }
  };

  v1::RunEvent final_event = MakeEvent(ref);
  for (;;) {
    forward_points();
    if (a->kill_requested) {
      StopAll(a->children, options_.kill_grace);
      std::lock_guard lock(a->mu);
      final_event.set_failed(fmt::format("stopped: {}", a->kill_reason));
      break;
    }
    std::optional<size_t> failed;
    bool all_exited = true;
    for (size_t i = 0; i < a->children.size(); ++i) {
      if (!exits[i] && !a->children[i].running())
        exits[i] = a->children[i].Wait(std::chrono::milliseconds(0));
      if (!exits[i]) all_exited = false;
      if (exits[i] && *exits[i] != 0 && !failed) failed = i;
    }
    if (failed) {
      const uint32_t rank = a->ranks[*failed];
      StopAll(a->children, options_.kill_grace);
      forward_points();
      final_event.set_failed(fmt::format("rank {} exited with status {}: {}", rank, *exits[*failed],
                                         LastWords(a->ReportPath(rank), a->LogPath(rank))));
      break;
    }
    if (all_exited) {
      forward_points();
      final_event.set_succeeded(true);
      break;
    }
    std::this_thread::sleep_for(options_.poll);
  }
  if (final_event.has_failed()) {
    spdlog::warn("run {} attempt {}: {}", ref.run_id(), ref.attempt(), final_event.failed());
  } else {
    spdlog::info("run {} attempt {}: every worker exited cleanly", ref.run_id(), ref.attempt());
  }
  // The event is queued before the attempt leaves Running(), so a heartbeat never shows the
  // attempt gone while its outcome is still unsent.
  emit_(std::move(final_event));
  a->done = true;
}

}  // namespace breakeven::node

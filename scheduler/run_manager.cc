#include "scheduler/run_manager.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "bench/load_generator.h"
#include "common/version.h"
#include "db/run_store.h"
#include "engine/catalog.h"
#include "scheduler/matrix.h"

namespace breakeven::scheduler {

namespace {

std::string FormatSeconds(double s) { return fmt::format("{:g}s", s); }

template <typename T>
std::string JoinNumbers(const std::vector<T>& v) {
  std::string out;
  for (const T& x : v)
    out += (out.empty() ? "" : ",") + fmt::format("{:g}", static_cast<double>(x));
  return out;
}

std::string RanksText(const std::vector<uint32_t>& ranks) {
  if (ranks.size() == 1) return fmt::format("rank {}", ranks.front());
  return fmt::format("ranks {}-{}", ranks.front(), ranks.back());
}

// Seconds of load a plan applies (warm-up included), for the run's deadline.
double PlannedLoadSeconds(const bench::LoadPlan& plan) {
  return bench::PlannedPoints(plan) * (plan.warmup_s + plan.duration_s);
}

}  // namespace

std::string DescribeLoad(const bench::LoadPlan& p) {
  const std::string each = FormatSeconds(p.duration_s);
  switch (p.pattern) {
    case bench::LoadPattern::kSync:
      return fmt::format("sync x {}", each);
    case bench::LoadPattern::kConcurrency:
      return fmt::format("concurrency {} x {}", JoinNumbers(p.concurrency), each);
    case bench::LoadPattern::kRate:
      return fmt::format("rate {} req/s x {}", JoinNumbers(p.rates), each);
    case bench::LoadPattern::kSweep:
      return fmt::format("sweep: sync, max, {} rates x {}", p.sweep_points, each);
    case bench::LoadPattern::kSloSearch:
      return fmt::format("slo-search: sync, max, {} probes x {}", p.search_steps, each);
  }
  return "?";
}

RunManager::RunManager(db::Database& db, db::RunStore& store, NodeRegistry& registry,
                       RendezvousStore& rendezvous, const Clock& clock, RunConfig config,
                       SendToNode send)
    : db_(db),
      store_(store),
      registry_(registry),
      rendezvous_(rendezvous),
      clock_(clock),
      config_(config),
      send_(std::move(send)) {}

RunManager::Active* RunManager::Find(uint64_t run_id) {
  auto it = runs_.find(run_id);
  return it == runs_.end() ? nullptr : &it->second;
}

void RunManager::Note(const db::RunRow& run, std::optional<uint64_t> node, const std::string& kind,
                      const std::string& detail) {
  db::RunEventRow e;
  e.at_unix_ms = clock_.WallUnixMs();
  if (node) e.node_id = static_cast<int64_t>(*node);
  e.run_id = run.id;
  e.kind = kind;
  e.detail = detail;
  if (Status s = db_writes_.Time("run_event", [&] { return store_.AddEvent(e); }); !s.ok()) {
    spdlog::error("run {}: cannot record event '{}': {}", run.id, kind, s.message());
  }
}

Result<std::vector<db::RunRow>> RunManager::ExpandRuns(std::string_view yaml,
                                                       std::string_view source, int64_t batch,
                                                       std::string* name,
                                                       std::optional<std::string>* schedule) const {
  BE_ASSIGN_OR_RETURN(MatrixSpec spec, ParseMatrix(yaml, source));
  *name = spec.name;
  *schedule = spec.schedule;
  std::vector<db::RunRow> rows;
  for (const RunSpec& r : spec.Expand()) {
    db::RunRow row;
    row.batch = batch;
    row.model = r.model.name;
    row.weights = r.model.weights;
    row.dtype = r.dtype;
    row.workload = r.workload.name;
    row.input_tokens = r.workload.input_tokens;
    row.output_tokens = r.workload.output_tokens;
    row.prefix_tokens = r.workload.prefix_tokens;
    row.samples = r.workload.samples;
    row.tp = r.tp;
    row.device_type = r.device_type;
    row.allow_multi_host = r.allow_multi_host;
    row.kv_cache_mib = r.kv_cache_mib;
    bench::RunLoad load{r.workload, r.load, r.slo, static_cast<uint64_t>(r.repeat)};
    row.load_json = bench::EncodeLoadJson(load);
    row.load_summary = DescribeLoad(r.load);
    row.points_planned = std::max(1, bench::PlannedPoints(r.load));
    row.repeat_index = r.repeat;
    row.max_attempts = r.max_attempts;
    row.state = v1::RUN_STATE_PENDING;
    row.reason = "waiting to be placed";
    row.created_at_unix_ms = clock_.WallUnixMs();
    rows.push_back(std::move(row));
  }
  if (rows.empty()) return InvalidArgument("{}: the matrix expands to no runs", source);
  return rows;
}

PlacementRequest RunManager::RequestFor(const db::RunRow& row) const {
  PlacementRequest req;
  req.device_type = row.device_type;
  req.tp = static_cast<int>(row.tp);
  req.allow_multi_host = row.allow_multi_host;
  Result<engine::ModelConfig> model = engine::FindModel(row.model);
  std::optional<DType> dtype = ParseDType(row.dtype);
  if (model.ok() && dtype) {
    // Files may hold another model under a catalog name; the worker checks again with the real
    // shapes before loading anything.
    req.bytes_per_rank =
        model->WeightBytes(*dtype) / row.tp + row.kv_cache_mib * (int64_t{1} << 20);
  }
  return req;
}

std::vector<NodeCapacity> RunManager::Capacity() const {
  std::vector<NodeCapacity> out;
  for (const v1::NodeInfo& n : registry_.List()) {
    NodeCapacity c;
    c.id = n.id();
    c.name = n.name();
    c.schedulable = n.connected() && n.state() == v1::NODE_STATE_UP;
    c.devices.assign(n.devices().begin(), n.devices().end());
    if (auto it = holds_.find(n.id()); it != holds_.end()) {
      for (const auto& [device, hold] : it->second) c.busy_devices.push_back(device);
    }
    out.push_back(std::move(c));
  }
  return out;
}

int RunManager::ActiveRunsOn(uint64_t node_id) const {
  auto it = holds_.find(node_id);
  if (it == holds_.end()) return 0;
  std::set<uint64_t> runs;
  for (const auto& [device, hold] : it->second) runs.insert(hold.run_id);
  return static_cast<int>(runs.size());
}

Status RunManager::Load() {
  // Finished runs are not held in memory; /metrics counts them from these totals on.
  BE_ASSIGN_OR_RETURN(db::Statement finished, db_.Prepare(R"sql(
    SELECT state, COUNT(*) FROM runs
    WHERE state IN ('SUCCEEDED', 'FAILED', 'CANCELLED') GROUP BY state)sql"));
  finished_.clear();
  for (;;) {
    BE_ASSIGN_OR_RETURN(bool row, finished.Step());
    if (!row) break;
    finished_[db::ParseRunState(finished.Text(0))] = finished.Int64(1);
  }
  BE_ASSIGN_OR_RETURN(auto matrices, store_.LoadScheduledMatrices());
  for (db::MatrixRow& m : matrices) {
    Result<CronSchedule> cron = CronSchedule::Parse(*m.schedule);
    if (!cron.ok()) {
      spdlog::error("matrix {} '{}': stored schedule no longer parses: {}", m.id, m.name,
                    cron.status().message());
      continue;
    }
    schedules_.emplace(m.id, Scheduled{std::move(m), std::move(*cron)});
  }
  BE_ASSIGN_OR_RETURN(auto rows, store_.LoadActiveRuns());
  const SteadyTime now = clock_.Now();
  for (db::RunRow& row : rows) {
    Active a;
    a.row = std::move(row);
    Result<bench::RunLoad> load = bench::DecodeLoadJson(a.row.load_json);
    if (!load.ok()) {
      a.row.state = v1::RUN_STATE_FAILED;
      a.row.reason = fmt::format("stored load plan no longer parses: {}", load.status().message());
      a.row.finished_at_unix_ms = clock_.WallUnixMs();
      BE_RETURN_IF_ERROR(
          db_writes_.Time("run_update", [&] { return store_.SaveRun(a.row, std::nullopt); }));
      Finished(a.row.state);
      continue;
    }
    a.load = *load;
    a.planned_points = std::max(1, bench::PlannedPoints(a.load.plan));
    const uint64_t id = static_cast<uint64_t>(a.row.id);
    if (a.row.state == v1::RUN_STATE_STARTING || a.row.state == v1::RUN_STATE_RUNNING) {
      // The workers may still be running: wait for their nodes to say so.
      BE_ASSIGN_OR_RETURN(auto attempt, store_.GetAttempt(a.row.id, a.row.attempt));
      Placement p;
      if (attempt) {
        try {
          for (const auto& s : nlohmann::json::parse(attempt->placement_json)) {
            NodeShare share;
            share.node_id = s.at("node_id").get<uint64_t>();
            share.node = s.at("node").get<std::string>();
            share.ranks = s.at("ranks").get<std::vector<uint32_t>>();
            share.devices = s.at("devices").get<std::vector<uint32_t>>();
            p.shares.push_back(std::move(share));
          }
        } catch (const std::exception& e) {
          p.shares.clear();
        }
      }
      if (!p.shares.empty()) {
        for (const NodeShare& s : p.shares) {
          for (uint32_t d : s.devices) {
            holds_[s.node_id][d] = Hold{id, static_cast<uint32_t>(a.row.attempt)};
          }
        }
        rendezvous_.OpenGroup(RendezvousStore::GroupOf(id, static_cast<uint32_t>(a.row.attempt)));
        a.placement = std::move(p);
        a.orphan = true;
        a.deadline = now + config_.orphan_timeout;
      } else {
        a.row.state = v1::RUN_STATE_PENDING;
        a.row.reason = "requeued: its placement was lost";
        a.waiting_since_unix_ms = clock_.WallUnixMs();
      }
    } else {
      a.row.state = v1::RUN_STATE_PENDING;
    }
    runs_.emplace(id, std::move(a));
  }
  for (auto& [node, devices] : holds_) registry_.SetActiveRuns(node, ActiveRunsOn(node));
  return Status::Ok();
}

Result<v1::SubmitMatrixReply> RunManager::Submit(const v1::SubmitMatrixRequest& request) {
  const std::string source = request.source().empty() ? "matrix" : request.source();
  std::string name;
  std::optional<std::string> schedule_text;
  BE_ASSIGN_OR_RETURN(std::vector<db::RunRow> rows,
                      ExpandRuns(request.yaml(), source, 1, &name, &schedule_text));
  std::optional<CronSchedule> schedule;
  if (schedule_text) {
    BE_ASSIGN_OR_RETURN(CronSchedule c, CronSchedule::Parse(*schedule_text));
    schedule = std::move(c);
  }
  const int64_t now_ms = clock_.WallUnixMs();
  v1::SubmitMatrixReply reply;
  if (schedule) reply.set_next_fire_unix_ms(schedule->Next(now_ms));

  if (request.dry_run()) {
    // Where each run would go now, taking the earlier runs of this matrix into account.
    std::vector<NodeCapacity> caps = Capacity();
    for (const db::RunRow& row : rows) {
      v1::RunInfo* info = reply.add_runs();
      info->set_model(row.model);
      info->set_weights(row.weights);
      info->set_workload(row.workload);
      info->set_tp(static_cast<uint32_t>(row.tp));
      info->set_device_type(row.device_type);
      info->set_load(row.load_summary);
      info->set_points_planned(static_cast<uint32_t>(row.points_planned));
      info->set_matrix(name);
      info->set_max_attempts(static_cast<uint32_t>(row.max_attempts));
      PlacementResult placed = Place(RequestFor(row), caps);
      if (!placed.placement) {
        info->set_state(v1::RUN_STATE_PENDING);
        info->set_reason(placed.reason);
        continue;
      }
      info->set_state(v1::RUN_STATE_PLACED);
      for (const NodeShare& s : placed.placement->shares) {
        info->add_nodes(s.node);
        for (NodeCapacity& c : caps) {
          if (c.id == s.node_id)
            c.busy_devices.insert(c.busy_devices.end(), s.devices.begin(), s.devices.end());
        }
      }
    }
    return reply;
  }

  db::MatrixRow m;
  m.name = name;
  m.spec_yaml = request.yaml();
  m.schedule = schedule_text;
  m.submitted_at_unix_ms = now_ms;
  if (schedule) {
    m.next_fire_unix_ms = reply.next_fire_unix_ms();
    rows.clear();  // the schedule creates the batches
  } else {
    m.fired = 1;
  }
  db::RunEventRow event;
  event.at_unix_ms = now_ms;
  event.kind = "submitted";
  event.detail = schedule ? fmt::format("scheduled '{}'", *schedule_text)
                          : fmt::format("{} runs", rows.size());
  BE_RETURN_IF_ERROR(
      db_writes_.Time("submit", [&] { return store_.InsertMatrix(&m, &rows, event); }));
  spdlog::info("matrix {} '{}' submitted from {}: {}", m.id, m.name, source, event.detail);
  reply.set_matrix_id(static_cast<uint64_t>(m.id));
  if (schedule) schedules_.emplace(m.id, Scheduled{m, std::move(*schedule)});
  std::vector<uint64_t> ids;
  for (db::RunRow& row : rows) {
    Active a;
    a.row = std::move(row);
    a.load = *bench::DecodeLoadJson(a.row.load_json);
    a.planned_points = std::max(1, bench::PlannedPoints(a.load.plan));
    ids.push_back(static_cast<uint64_t>(a.row.id));
    runs_.emplace(ids.back(), std::move(a));
  }
  PlacePending();
  for (uint64_t id : ids) {
    BE_ASSIGN_OR_RETURN(v1::RunInfo info, store_.RunInfo(static_cast<int64_t>(id)));
    *reply.add_runs() = std::move(info);
  }
  return reply;
}

void RunManager::PlacePending() {
  std::vector<NodeCapacity> caps;
  bool have_caps = false;
  for (auto& [id, run] : runs_) {
    if (run.row.state != v1::RUN_STATE_PENDING) continue;
    if (!have_caps) {
      caps = Capacity();
      have_caps = true;
    }
    PlacementResult placed = Place(RequestFor(run.row), caps);
    if (metrics::Counter* c = placed.placement ? placed_ : waiting_) c->Inc();
    if (placed.placement) {
      if (Status s = StartAttempt(run, *placed.placement); !s.ok()) {
        spdlog::error("run {}: cannot start: {}", id, s.message());
      }
      have_caps = false;  // devices were taken
      continue;
    }
    std::string reason = placed.reason;
    if (!run.last_failure.empty()) reason += fmt::format(" (after {})", run.last_failure);
    if (reason != run.row.reason) {
      run.row.reason = reason;
      db::RunEventRow e{clock_.WallUnixMs(), std::nullopt, run.row.id, "pending", reason};
      if (Status s = db_writes_.Time("run_update", [&] { return store_.SaveRun(run.row, e); });
          !s.ok()) {
        spdlog::error("run {}: cannot save: {}", id, s.message());
      }
    }
  }
  // A run that ended during StartAttempt (its node vanished) is not active any more.
  for (auto it = runs_.begin(); it != runs_.end();) {
    it = db::IsTerminal(it->second.row.state) ? runs_.erase(it) : std::next(it);
  }
}

Status RunManager::StartAttempt(Active& run, const Placement& placement) {
  const uint64_t id = static_cast<uint64_t>(run.row.id);
  const int64_t now_ms = clock_.WallUnixMs();
  db::RunRow next = run.row;
  next.attempt += 1;
  next.state = v1::RUN_STATE_STARTING;
  next.reason.clear();
  next.progress = 0;
  next.points_done = 0;
  if (!next.started_at_unix_ms) next.started_at_unix_ms = now_ms;
  const uint32_t attempt = static_cast<uint32_t>(next.attempt);
  const bool cpu = next.device_type == "cpu" || next.device_type == "CPU";

  nlohmann::json shares = nlohmann::json::array();
  std::string nodes, names, where;
  double bandwidth = 0, tflops = 0;
  for (const NodeShare& s : placement.shares) {
    shares.push_back({{"node", s.node},
                      {"node_id", s.node_id},
                      {"ranks", s.ranks},
                      {"devices", s.devices},
                      {"device", s.device_name}});
    nodes += (nodes.empty() ? "" : ",") + s.node;
    if (names.find(s.device_name) == std::string::npos) {
      names += (names.empty() ? "" : ", ") + s.device_name;
    }
    where += fmt::format("{}{} ({})", where.empty() ? "" : ", ", s.node, RanksText(s.ranks));
    bandwidth += s.bandwidth_gb_s;
    tflops += s.matmul_tflops;
  }
  // GPU ranks exchange tensors through NCCL (step plans still go over shm or Gloo); CPU ranks
  // through shared memory on one host and Gloo across hosts.
  const std::string collectives = !cpu ? "nccl" : placement.multi_host() ? "gloo" : "shm";
  db::AttemptRow a;
  a.run_id = next.id;
  a.attempt = next.attempt;
  a.placement_json = shares.dump();
  a.started_at_unix_ms = now_ms;
  a.software_version = kVersion;
  a.backend = cpu ? "cpu" : "cuda";
  a.nodes = nodes;
  a.devices = placement.devices();
  a.device_names = names;
  db::RunEventRow e{now_ms, std::nullopt, next.id, "placed",
                    fmt::format("attempt {}/{} on {}; collectives {}", attempt, next.max_attempts,
                                where, next.tp > 1 ? collectives : "none")};
  BE_RETURN_IF_ERROR(
      db_writes_.Time("attempt_start", [&] { return store_.StartAttempt(next, a, e); }));
  run.row = next;
  run.placement = placement;
  run.started.clear();
  run.finished.clear();
  run.orphan = false;
  run.deadline = clock_.Now() + config_.start_timeout;
  const std::string group = RendezvousStore::GroupOf(id, attempt);
  rendezvous_.OpenGroup(group);
  for (const NodeShare& s : placement.shares) {
    for (uint32_t d : s.devices) holds_[s.node_id][d] = Hold{id, attempt};
    registry_.SetActiveRuns(s.node_id, ActiveRunsOn(s.node_id));
  }
  spdlog::info("run {} attempt {}: {} {} tp{} on {}", id, attempt, next.model, next.workload,
               next.tp, where);

  for (const NodeShare& s : placement.shares) {
    v1::Envelope frame;
    v1::RunAssignment* as = frame.mutable_run_assignment();
    as->set_run_id(id);
    as->set_attempt(attempt);
    as->set_model(next.model);
    as->set_weights(next.weights);
    as->set_dtype(next.dtype);
    as->set_tp(static_cast<uint32_t>(next.tp));
    for (uint32_t r : s.ranks) as->add_ranks(r);
    for (uint32_t d : s.devices) as->add_devices(d);
    as->set_collectives(collectives);
    as->set_group(group);
    as->set_load_json(next.load_json);
    as->set_kv_cache_mib(static_cast<uint64_t>(next.kv_cache_mib));
    as->set_threads_per_rank(
        cpu ? std::max<uint32_t>(1, s.compute_units / static_cast<uint32_t>(s.ranks.size())) : 0);
    as->set_backend(a.backend);
    as->set_peak_bandwidth_gb_s(bandwidth);
    as->set_peak_matmul_tflops(tflops);
    if (!send_(s.node_id, frame)) {
      FailAttempt(run, fmt::format("node {} is not connected", s.node), s.node_id);
      return Status::Ok();
    }
  }
  return Status::Ok();
}

void RunManager::Kill(const Active& run, const std::string& why) {
  if (!run.placement) return;
  for (const NodeShare& s : run.placement->shares) {
    if (run.finished.count(s.node_id)) continue;
    v1::Envelope frame;
    frame.mutable_kill_run()->set_run_id(static_cast<uint64_t>(run.row.id));
    frame.mutable_kill_run()->set_attempt(static_cast<uint32_t>(run.row.attempt));
    frame.mutable_kill_run()->set_reason(why);
    send_(s.node_id, frame);
  }
}

void RunManager::EndAttempt(Active& run) {
  const uint64_t id = static_cast<uint64_t>(run.row.id);
  const uint32_t attempt = static_cast<uint32_t>(run.row.attempt);
  rendezvous_.CloseGroup(RendezvousStore::GroupOf(id, attempt));
  const SteadyTime now = clock_.Now();
  if (run.placement) {
    for (const NodeShare& s : run.placement->shares) {
      for (auto& [device, hold] : holds_[s.node_id]) {
        if (hold.run_id == id && hold.attempt == attempt && !hold.ended) {
          hold.ended = true;
          hold.ended_at = now;
        }
      }
    }
  }
  run.placement.reset();
  run.started.clear();
  run.finished.clear();
  run.metrics_addresses.clear();
  run.orphan = false;
}

void RunManager::FailAttempt(Active& run, const std::string& why, uint64_t node_id) {
  Kill(run, why);
  const int64_t now_ms = clock_.WallUnixMs();
  const int64_t attempt = run.row.attempt;
  const bool retry = attempt < run.row.max_attempts;
  run.last_failure = fmt::format("attempt {} failed: {}", attempt, why);
  if (retry) {
    run.row.state = v1::RUN_STATE_PENDING;
    run.row.reason = fmt::format("attempt {} failed ({}); retrying", attempt, why);
    run.waiting_since_unix_ms = now_ms;
  } else {
    run.row.state = v1::RUN_STATE_FAILED;
    run.row.reason = why;
    run.row.finished_at_unix_ms = now_ms;
    Finished(run.row.state);
  }
  db::RunEventRow e{now_ms,
                    node_id ? std::optional<int64_t>(static_cast<int64_t>(node_id)) : std::nullopt,
                    run.row.id, "failed",
                    fmt::format("attempt {}/{}: {}{}", attempt, run.row.max_attempts, why,
                                retry ? "; will retry" : "")};
  if (Status s = db_writes_.Time(
          "attempt_finish",
          [&] { return store_.FinishAttempt(run.row, attempt, "FAILED", why, now_ms, e); });
      !s.ok()) {
    spdlog::error("run {}: cannot record failure: {}", run.row.id, s.message());
  }
  spdlog::warn("run {} attempt {} failed: {}{}", run.row.id, attempt, why,
               retry ? " (will retry)" : "");
  EndAttempt(run);
}

void RunManager::Succeed(Active& run) {
  const int64_t now_ms = clock_.WallUnixMs();
  run.row.state = v1::RUN_STATE_SUCCEEDED;
  run.row.reason.clear();
  run.row.progress = 1;
  run.row.finished_at_unix_ms = now_ms;
  db::RunEventRow e{
      now_ms, std::nullopt, run.row.id, "succeeded",
      fmt::format("attempt {}: {} load points", run.row.attempt, run.row.points_done)};
  Finished(run.row.state);
  if (Status s = db_writes_.Time("attempt_finish",
                                 [&] {
                                   return store_.FinishAttempt(run.row, run.row.attempt,
                                                               "SUCCEEDED", "", now_ms, e);
                                 });
      !s.ok()) {
    spdlog::error("run {}: cannot record success: {}", run.row.id, s.message());
  }
  spdlog::info("run {} succeeded: {} points", run.row.id, run.row.points_done);
  EndAttempt(run);
}

Result<v1::RunInfo> RunManager::Cancel(uint64_t run_id) {
  Active* run = Find(run_id);
  if (!run) {
    BE_ASSIGN_OR_RETURN(v1::RunInfo info, store_.RunInfo(static_cast<int64_t>(run_id)));
    return FailedPrecondition("run {} has already finished ({})", run_id,
                              db::RunStateText(info.state()));
  }
  const int64_t now_ms = clock_.WallUnixMs();
  const bool live = run->placement.has_value();
  if (live) Kill(*run, "cancelled");
  run->row.state = v1::RUN_STATE_CANCELLED;
  run->row.reason = "cancelled by an operator";
  run->row.finished_at_unix_ms = now_ms;
  db::RunEventRow e{now_ms, std::nullopt, run->row.id, "cancelled", "cancelled by an operator"};
  Status saved =
      live ? db_writes_.Time("attempt_finish",
                             [&] {
                               return store_.FinishAttempt(run->row, run->row.attempt, "CANCELLED",
                                                           "cancelled", now_ms, e);
                             })
           : db_writes_.Time("run_update", [&] { return store_.SaveRun(run->row, e); });
  BE_RETURN_IF_ERROR(saved);
  Finished(run->row.state);
  if (live) EndAttempt(*run);
  runs_.erase(run_id);
  return store_.RunInfo(static_cast<int64_t>(run_id));
}

Status RunManager::OnRunEvent(uint64_t node_id, const v1::RunEvent& event) {
  const uint64_t run_id = event.run().run_id();
  const uint32_t attempt = event.run().attempt();
  Active* run = Find(run_id);
  const bool current = run && run->placement && run->row.attempt == attempt;
  const bool on_node =
      current && std::any_of(run->placement->shares.begin(), run->placement->shares.end(),
                             [&](const NodeShare& s) { return s.node_id == node_id; });
  if (!on_node) {
    // A late report of an attempt that has ended (or was never this node's): make sure its
    // workers are gone, and store nothing.
    if (event.what_case() == v1::RunEvent::kStarted || event.what_case() == v1::RunEvent::kPoint) {
      v1::Envelope frame;
      frame.mutable_kill_run()->set_run_id(run_id);
      frame.mutable_kill_run()->set_attempt(attempt);
      frame.mutable_kill_run()->set_reason("not a live run attempt");
      send_(node_id, frame);
    }
    spdlog::debug("node {}: ignoring event for run {} attempt {} (not live there)", node_id, run_id,
                  attempt);
    return Status::Ok();
  }
  switch (event.what_case()) {
    case v1::RunEvent::kStarted: {
      run->started.insert(node_id);
      if (run->started.size() == run->placement->shares.size() &&
          run->row.state != v1::RUN_STATE_RUNNING) {
        run->row.state = v1::RUN_STATE_RUNNING;
        run->orphan = false;
        const double limit_s = PlannedLoadSeconds(run->load.plan) * config_.run_timeout_factor +
                               std::chrono::duration<double>(config_.run_timeout_slack).count();
        run->deadline = clock_.Now() + Millis(static_cast<int64_t>(limit_s * 1000));
        db::RunEventRow e{
            clock_.WallUnixMs(), std::nullopt, run->row.id, "running",
            fmt::format("attempt {}: workers started on every node", run->row.attempt)};
        BE_RETURN_IF_ERROR(
            db_writes_.Time("run_update", [&] { return store_.SaveRun(run->row, e); }));
      }
      return Status::Ok();
    }
    case v1::RunEvent::kPoint: {
      const v1::PointResult& p = event.point();
      db::RunRow next = run->row;
      if (p.planned() > 0) run->planned_points = static_cast<int>(p.planned());
      next.points_done = std::max<int64_t>(next.points_done, p.index() + 1);
      next.progress = std::min(0.99, static_cast<double>(next.points_done) / run->planned_points);
      BE_ASSIGN_OR_RETURN(bool stored, db_writes_.Time("results", [&] {
        return store_.InsertPoint(next, p, run->placement->devices(), clock_.WallUnixMs());
      }));
      if (!stored) return Status::Ok();  // sent again after a reconnect
      run->row = next;
      const v1::PointMetrics& m = p.metrics();
      Note(run->row, node_id, "point",
           fmt::format("{}/{} {} {:g}: {:.2f} req/s, {:.1f} output tok/s, ttft p95 {:.1f} ms, "
                       "tpot p95 {:.2f} ms{}",
                       p.index() + 1, run->planned_points, p.kind(), p.target(), m.requests_per_s(),
                       m.output_tokens_per_s(), m.ttft_ms().p95(), m.tpot_ms().p95(),
                       m.meets_slo() ? "" : " (misses the SLO)"));
      return Status::Ok();
    }
    case v1::RunEvent::kFailed:
      FailAttempt(*run, fmt::format("{}: {}", registry_.NameOf(node_id), event.failed()), node_id);
      if (db::IsTerminal(run->row.state)) runs_.erase(run_id);
      return Status::Ok();
    case v1::RunEvent::kSucceeded:
      run->finished.insert(node_id);
      if (run->finished.size() == run->placement->shares.size()) {
        Succeed(*run);
        runs_.erase(run_id);
      }
      return Status::Ok();
    default:
      return InvalidArgument("run event for run {} carries nothing", run_id);
  }
}

void RunManager::OnHeartbeat(uint64_t node_id, const v1::Heartbeat& hb) {
  std::set<std::pair<uint64_t, uint32_t>> listed;
  std::map<std::pair<uint64_t, uint32_t>, std::string> metrics_addresses;
  for (const v1::RunRef& r : hb.running()) {
    listed.insert({r.run_id(), r.attempt()});
    if (!r.metrics_address().empty()) {
      metrics_addresses[{r.run_id(), r.attempt()}] = r.metrics_address();
    }
  }

  // Devices of ended attempts come back once the node no longer runs them.
  if (auto it = holds_.find(node_id); it != holds_.end()) {
    for (auto h = it->second.begin(); h != it->second.end();) {
      const bool gone = !listed.count({h->second.run_id, h->second.attempt});
      h = h->second.ended && gone ? it->second.erase(h) : std::next(h);
    }
    registry_.SetActiveRuns(node_id, ActiveRunsOn(node_id));
  }

  // Live attempts on this node: confirmed (after a restart) or lost.
  std::vector<uint64_t> lost;
  for (auto& [id, run] : runs_) {
    if (!run.placement || run.finished.count(node_id)) continue;
    bool here = false;
    for (const NodeShare& s : run.placement->shares) here |= s.node_id == node_id;
    if (!here) continue;
    const bool is_listed = listed.count({id, static_cast<uint32_t>(run.row.attempt)}) > 0;
    if (auto m = metrics_addresses.find({id, static_cast<uint32_t>(run.row.attempt)});
        m != metrics_addresses.end()) {
      run.metrics_addresses[node_id] = m->second;
    }
    if (run.orphan && is_listed) {
      run.started.insert(node_id);
      if (run.started.size() == run.placement->shares.size()) {
        run.orphan = false;
        run.row.state = v1::RUN_STATE_RUNNING;
        const double limit_s = PlannedLoadSeconds(run.load.plan) * config_.run_timeout_factor +
                               std::chrono::duration<double>(config_.run_timeout_slack).count();
        run.deadline = clock_.Now() + Millis(static_cast<int64_t>(limit_s * 1000));
        Note(run.row, node_id, "resumed", "every node still runs it after a scheduler restart");
      }
    } else if (!is_listed && (run.orphan || run.started.count(node_id))) {
      lost.push_back(id);
    }
  }
  for (uint64_t id : lost) {
    Active* run = Find(id);
    FailAttempt(*run, fmt::format("node {} no longer runs it", registry_.NameOf(node_id)), node_id);
    if (db::IsTerminal(run->row.state)) runs_.erase(id);
  }

  // Workers of attempts that are not live anywhere: stop them.
  for (const auto& [run_id, attempt] : listed) {
    Active* run = Find(run_id);
    const bool live = run && run->placement && run->row.attempt == attempt;
    bool held = false;
    if (auto it = holds_.find(node_id); it != holds_.end()) {
      for (const auto& [device, hold] : it->second) {
        held |= hold.run_id == run_id && hold.attempt == attempt;
      }
    }
    if (live || held) continue;
    v1::Envelope frame;
    frame.mutable_kill_run()->set_run_id(run_id);
    frame.mutable_kill_run()->set_attempt(attempt);
    frame.mutable_kill_run()->set_reason("not a live run attempt");
    send_(node_id, frame);
  }
}

std::map<v1::RunState, int64_t> RunManager::CountByState() const {
  std::map<v1::RunState, int64_t> out = finished_;
  for (const auto& [id, run] : runs_) ++out[run.row.state];
  return out;
}

RunManager::QueueStats RunManager::Queue() const {
  QueueStats q;
  const int64_t now_ms = clock_.WallUnixMs();
  for (const auto& [id, run] : runs_) {
    if (run.row.state != v1::RUN_STATE_PENDING) continue;
    ++q.depth;
    const int64_t since =
        run.waiting_since_unix_ms > 0 ? run.waiting_since_unix_ms : run.row.created_at_unix_ms;
    q.oldest_age_seconds = std::max(q.oldest_age_seconds, (now_ms - since) / 1000.0);
  }
  return q;
}

std::vector<WorkerTarget> RunManager::WorkerTargets() const {
  std::vector<WorkerTarget> out;
  for (const auto& [id, run] : runs_) {
    if (!run.placement) continue;
    for (const auto& [node_id, address] : run.metrics_addresses) {
      WorkerTarget t;
      t.address = ReachableAddress(address, registry_.PeerAddressOf(node_id));
      t.run_id = id;
      t.attempt = static_cast<uint32_t>(run.row.attempt);
      t.model = run.row.model;
      t.node = registry_.NameOf(node_id);
      out.push_back(std::move(t));
    }
  }
  return out;
}

void RunManager::FireSchedules() {
  const int64_t now_ms = clock_.WallUnixMs();
  for (auto& [id, s] : schedules_) {
    if (!s.row.next_fire_unix_ms || *s.row.next_fire_unix_ms < 0 ||
        now_ms < *s.row.next_fire_unix_ms) {
      continue;
    }
    std::string name;
    std::optional<std::string> schedule;
    db::MatrixRow next = s.row;
    next.fired += 1;
    // Missed firings (the scheduler was down) collapse into this one.
    next.next_fire_unix_ms = s.schedule.Next(now_ms);
    Result<std::vector<db::RunRow>> rows =
        ExpandRuns(s.row.spec_yaml, s.row.name, next.fired, &name, &schedule);
    db::RunEventRow e{now_ms, std::nullopt, std::nullopt, "fired", ""};
    if (!rows.ok()) {
      e.detail = fmt::format("matrix {} '{}': batch {} not created: {}", s.row.id, s.row.name,
                             next.fired, rows.status().message());
      rows = std::vector<db::RunRow>{};
    } else {
      e.detail = fmt::format("matrix {} '{}': batch {} with {} runs", s.row.id, s.row.name,
                             next.fired, rows->size());
    }
    if (Status st =
            db_writes_.Time("schedule_fire", [&] { return store_.InsertBatch(next, &*rows, e); });
        !st.ok()) {
      spdlog::error("matrix {}: cannot fire its schedule: {}", s.row.id, st.message());
      continue;
    }
    spdlog::info("{}", e.detail);
    s.row = next;
    for (db::RunRow& row : *rows) {
      Active a;
      a.row = std::move(row);
      a.load = *bench::DecodeLoadJson(a.row.load_json);
      a.planned_points = std::max(1, bench::PlannedPoints(a.load.plan));
      runs_.emplace(static_cast<uint64_t>(a.row.id), std::move(a));
    }
  }
}

void RunManager::CheckDeadlines() {
  const SteadyTime now = clock_.Now();
  std::map<uint64_t, v1::NodeState> states;
  for (const v1::NodeInfo& n : registry_.List()) states[n.id()] = n.state();

  std::vector<std::pair<uint64_t, std::string>> failures;
  for (auto& [id, run] : runs_) {
    if (!run.placement) continue;
    // After a restart, nodes are DOWN until they reconnect: the orphan deadline decides.
    for (const NodeShare& s : run.orphan ? std::vector<NodeShare>{} : run.placement->shares) {
      if (!run.finished.count(s.node_id) && states[s.node_id] == v1::NODE_STATE_DOWN) {
        failures.emplace_back(id, fmt::format("node {} is DOWN", s.node));
        break;
      }
    }
    if (!failures.empty() && failures.back().first == id) continue;
    if (now < run.deadline) continue;
    if (run.orphan) {
      failures.emplace_back(id,
                            "no node confirmed it was still running after the scheduler "
                            "restarted");
    } else if (run.row.state == v1::RUN_STATE_STARTING) {
      failures.emplace_back(
          id, fmt::format(
                  "workers did not start within {} s",
                  std::chrono::duration_cast<std::chrono::seconds>(config_.start_timeout).count()));
    } else {
      failures.emplace_back(id, "it ran past its time limit");
    }
  }
  for (const auto& [id, why] : failures) {
    Active* run = Find(id);
    FailAttempt(*run, why);
    if (db::IsTerminal(run->row.state)) runs_.erase(id);
  }

  // Holds of ended attempts: released when their node is DOWN or the grace period passed.
  for (auto& [node, devices] : holds_) {
    for (auto h = devices.begin(); h != devices.end();) {
      const bool release = h->second.ended && (states[node] == v1::NODE_STATE_DOWN ||
                                               now - h->second.ended_at > config_.release_grace);
      h = release ? devices.erase(h) : std::next(h);
    }
    registry_.SetActiveRuns(node, ActiveRunsOn(node));
  }
}

void RunManager::Tick() {
  FireSchedules();
  CheckDeadlines();
  PlacePending();
}

}  // namespace breakeven::scheduler

#include "db/run_store.h"

#include <algorithm>
#include <array>
#include <charconv>

namespace breakeven::db {

namespace {

constexpr std::array<std::pair<v1::RunState, std::string_view>, 7> kRunStates = {{
    {v1::RUN_STATE_PENDING, "PENDING"},
    {v1::RUN_STATE_PLACED, "PLACED"},
    {v1::RUN_STATE_STARTING, "STARTING"},
    {v1::RUN_STATE_RUNNING, "RUNNING"},
    {v1::RUN_STATE_SUCCEEDED, "SUCCEEDED"},
    {v1::RUN_STATE_FAILED, "FAILED"},
    {v1::RUN_STATE_CANCELLED, "CANCELLED"},
}};

constexpr std::string_view kRunColumns =
    "r.id, r.matrix_id, m.name, r.batch, r.model, r.weights, r.dtype, r.workload, r.input_tokens, "
    "r.output_tokens, r.prefix_tokens, r.samples, r.tp, r.device_type, r.allow_multi_host, "
    "r.kv_cache_mib, r.load_json, r.load_summary, r.repeat_index, r.state, r.reason, r.attempt, "
    "r.max_attempts, r.created_at_unix_ms, r.started_at_unix_ms, r.finished_at_unix_ms, "
    "r.progress, r.points_done, r.points_planned";

RunRow ReadRun(const Statement& q) {
  RunRow r;
  int c = 0;
  r.id = q.Int64(c++);
  r.matrix_id = q.Int64(c++);
  r.matrix = q.Text(c++);
  r.batch = q.Int64(c++);
  r.model = q.Text(c++);
  r.weights = q.Text(c++);
  r.dtype = q.Text(c++);
  r.workload = q.Text(c++);
  r.input_tokens = q.Int64(c++);
  r.output_tokens = q.Int64(c++);
  r.prefix_tokens = q.Int64(c++);
  r.samples = q.Int64(c++);
  r.tp = q.Int64(c++);
  r.device_type = q.Text(c++);
  r.allow_multi_host = q.Int64(c++) != 0;
  r.kv_cache_mib = q.Int64(c++);
  r.load_json = q.Text(c++);
  r.load_summary = q.Text(c++);
  r.repeat_index = q.Int64(c++);
  r.state = ParseRunState(q.Text(c++));
  r.reason = q.OptionalText(c++).value_or("");
  r.attempt = q.Int64(c++);
  r.max_attempts = q.Int64(c++);
  r.created_at_unix_ms = q.Int64(c++);
  r.started_at_unix_ms = q.OptionalInt64(c++);
  r.finished_at_unix_ms = q.OptionalInt64(c++);
  r.progress = q.Double(c++);
  r.points_done = q.Int64(c++);
  r.points_planned = q.Int64(c++);
  return r;
}

// Steps a query to its end, calling `row` for each result row.
template <typename F>
Status ForEachRow(Statement& q, F&& row) {
  for (;;) {
    Result<bool> more = q.Step();
    if (!more.ok()) {
      q.Reset();
      return more.status();
    }
    if (!*more) break;
    row(q);
  }
  q.Reset();
  return Status::Ok();
}

}  // namespace

std::string RunStateText(v1::RunState state) {
  for (const auto& [s, text] : kRunStates) {
    if (s == state) return std::string(text);
  }
  return "PENDING";
}

v1::RunState ParseRunState(std::string_view text) {
  for (const auto& [s, t] : kRunStates) {
    if (t == text) return s;
  }
  return v1::RUN_STATE_UNSPECIFIED;
}

bool IsTerminal(v1::RunState state) {
  return state == v1::RUN_STATE_SUCCEEDED || state == v1::RUN_STATE_FAILED ||
         state == v1::RUN_STATE_CANCELLED;
}

Result<std::unique_ptr<RunStore>> RunStore::Create(Database& db) {
  std::unique_ptr<RunStore> s(new RunStore(db));
  BE_ASSIGN_OR_RETURN(s->insert_point_, db.Prepare(R"sql(
    INSERT INTO load_points (
      run_id, attempt, point_index, kind, target, measured, requests, failed, input_tokens,
      output_tokens, duration_s, requests_per_s, output_tokens_per_s, total_tokens_per_s,
      goodput_requests_per_s, slo_attainment,
      ttft_p50_ms, ttft_p90_ms, ttft_p95_ms, ttft_p99_ms, ttft_mean_ms, ttft_max_ms,
      tpot_p50_ms, tpot_p90_ms, tpot_p95_ms, tpot_p99_ms, tpot_mean_ms, tpot_max_ms,
      itl_p50_ms, itl_p90_ms, itl_p95_ms, itl_p99_ms, itl_mean_ms, itl_max_ms,
      e2e_p50_ms, e2e_p90_ms, e2e_p95_ms, e2e_p99_ms, e2e_mean_ms, e2e_max_ms,
      mbu, mfu, device_seconds_per_mtok_input, device_seconds_per_mtok_output,
      device_seconds_per_mtok_total, devices, created_at_unix_ms)
    VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,
            ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27,
            ?28, ?29, ?30, ?31, ?32, ?33, ?34, ?35, ?36, ?37, ?38, ?39,
            ?40, ?41, ?42, ?43, ?44, ?45, ?46)
    ON CONFLICT (run_id, attempt, point_index) DO NOTHING)sql"));
  BE_ASSIGN_OR_RETURN(s->insert_request_, db.Prepare(R"sql(
    INSERT INTO requests (load_point_id, request_index, scheduled_ms, sent_ms, first_token_ms,
                          last_token_ms, input_tokens, output_tokens, chunks, ok)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10))sql"));
  BE_ASSIGN_OR_RETURN(s->save_run_, db.Prepare(R"sql(
    UPDATE runs SET state = ?2, reason = ?3, attempt = ?4, started_at_unix_ms = ?5,
                    finished_at_unix_ms = ?6, progress = ?7, points_done = ?8
    WHERE id = ?1)sql"));
  BE_ASSIGN_OR_RETURN(s->insert_event_, db.Prepare(R"sql(
    INSERT INTO events (at_unix_ms, node_id, run_id, kind, detail) VALUES (?1, ?2, ?3, ?4, ?5))sql"));
  return s;
}

Status RunStore::InsertEvent(const RunEventRow& e) {
  insert_event_.Bind(1, e.at_unix_ms)
      .Bind(2, e.node_id)
      .Bind(3, e.run_id)
      .Bind(4, e.kind)
      .Bind(5, e.detail);
  return insert_event_.Run();
}

Status RunStore::AddEvent(const RunEventRow& event) { return InsertEvent(event); }

Status RunStore::UpdateRun(const RunRow& r) {
  save_run_.Bind(1, r.id)
      .Bind(2, RunStateText(r.state))
      .Bind(3, r.reason.empty() ? std::optional<std::string>() : r.reason)
      .Bind(4, r.attempt)
      .Bind(5, r.started_at_unix_ms)
      .Bind(6, r.finished_at_unix_ms)
      .Bind(7, r.progress)
      .Bind(8, r.points_done);
  return save_run_.Run();
}

Status RunStore::InsertRuns(std::vector<RunRow>* runs) {
  BE_ASSIGN_OR_RETURN(Statement q, db_.Prepare(R"sql(
    INSERT INTO runs (matrix_id, batch, model, weights, dtype, workload, input_tokens,
                      output_tokens, prefix_tokens, samples, tp, device_type, allow_multi_host,
                      kv_cache_mib, load_json, load_summary, repeat_index, state, reason,
                      max_attempts, created_at_unix_ms, points_planned)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
            ?19, ?20, ?21, ?22))sql"));
  for (RunRow& r : *runs) {
    q.Bind(1, r.matrix_id)
        .Bind(2, r.batch)
        .Bind(3, r.model)
        .Bind(4, r.weights)
        .Bind(5, r.dtype)
        .Bind(6, r.workload)
        .Bind(7, r.input_tokens)
        .Bind(8, r.output_tokens)
        .Bind(9, r.prefix_tokens)
        .Bind(10, r.samples)
        .Bind(11, r.tp)
        .Bind(12, r.device_type)
        .Bind(13, int64_t{r.allow_multi_host})
        .Bind(14, r.kv_cache_mib)
        .Bind(15, r.load_json)
        .Bind(16, r.load_summary)
        .Bind(17, r.repeat_index)
        .Bind(18, RunStateText(r.state))
        .Bind(19, r.reason.empty() ? std::optional<std::string>() : r.reason)
        .Bind(20, r.max_attempts)
        .Bind(21, r.created_at_unix_ms)
        .Bind(22, r.points_planned);
    BE_RETURN_IF_ERROR(q.Run());
    r.id = db_.LastInsertRowId();
  }
  return Status::Ok();
}

Status RunStore::InsertMatrix(MatrixRow* m, std::vector<RunRow>* runs, const RunEventRow& event) {
  Transaction tx(db_);
  BE_RETURN_IF_ERROR(tx.Begin());
  BE_ASSIGN_OR_RETURN(Statement q, db_.Prepare(R"sql(
    INSERT INTO matrices (name, spec_yaml, schedule, next_fire_unix_ms, fired,
                          submitted_at_unix_ms)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6))sql"));
  q.Bind(1, m->name)
      .Bind(2, m->spec_yaml)
      .Bind(3, m->schedule)
      .Bind(4, m->next_fire_unix_ms)
      .Bind(5, m->fired)
      .Bind(6, m->submitted_at_unix_ms);
  BE_RETURN_IF_ERROR(q.Run());
  m->id = db_.LastInsertRowId();
  for (RunRow& r : *runs) {
    r.matrix_id = m->id;
    r.matrix = m->name;
  }
  BE_RETURN_IF_ERROR(InsertRuns(runs));
  RunEventRow e = event;
  e.detail = fmt::format("matrix {} '{}': {}", m->id, m->name, event.detail);
  BE_RETURN_IF_ERROR(InsertEvent(e));
  return tx.Commit();
}

Status RunStore::InsertBatch(const MatrixRow& m, std::vector<RunRow>* runs,
                             const RunEventRow& event) {
  Transaction tx(db_);
  BE_RETURN_IF_ERROR(tx.Begin());
  BE_ASSIGN_OR_RETURN(Statement q,
                      db_.Prepare("UPDATE matrices SET fired = ?2, next_fire_unix_ms = ?3 "
                                  "WHERE id = ?1"));
  q.Bind(1, m.id).Bind(2, m.fired).Bind(3, m.next_fire_unix_ms);
  BE_RETURN_IF_ERROR(q.Run());
  for (RunRow& r : *runs) {
    r.matrix_id = m.id;
    r.matrix = m.name;
  }
  BE_RETURN_IF_ERROR(InsertRuns(runs));
  BE_RETURN_IF_ERROR(InsertEvent(event));
  return tx.Commit();
}

Result<std::vector<MatrixRow>> RunStore::LoadScheduledMatrices() {
  BE_ASSIGN_OR_RETURN(Statement q, db_.Prepare(R"sql(
    SELECT id, name, spec_yaml, schedule, next_fire_unix_ms, fired, submitted_at_unix_ms
    FROM matrices WHERE schedule IS NOT NULL AND enabled = 1 ORDER BY id)sql"));
  std::vector<MatrixRow> out;
  BE_RETURN_IF_ERROR(ForEachRow(q, [&](const Statement& s) {
    MatrixRow m;
    m.id = s.Int64(0);
    m.name = s.Text(1);
    m.spec_yaml = s.Text(2);
    m.schedule = s.OptionalText(3);
    m.next_fire_unix_ms = s.OptionalInt64(4);
    m.fired = s.Int64(5);
    m.submitted_at_unix_ms = s.Int64(6);
    out.push_back(std::move(m));
  }));
  return out;
}

Result<std::optional<MatrixRow>> RunStore::FindMatrix(std::string_view name_or_id) {
  int64_t id = 0;
  auto [end, ec] = std::from_chars(name_or_id.data(), name_or_id.data() + name_or_id.size(), id);
  const bool numeric = ec == std::errc() && end == name_or_id.data() + name_or_id.size();
  // A name may be submitted many times: the newest matrix of that name.
  BE_ASSIGN_OR_RETURN(Statement q,
                      db_.Prepare(numeric ? "SELECT id, name FROM matrices WHERE id = ?1"
                                          : "SELECT id, name FROM matrices WHERE name = ?1 "
                                            "ORDER BY id DESC LIMIT 1"));
  if (numeric) {
    q.Bind(1, id);
  } else {
    q.Bind(1, name_or_id);
  }
  std::optional<MatrixRow> found;
  BE_RETURN_IF_ERROR(ForEachRow(q, [&](const Statement& s) {
    MatrixRow m;
    m.id = s.Int64(0);
    m.name = s.Text(1);
    found = std::move(m);
  }));
  return found;
}

Result<std::vector<RunRow>> RunStore::LoadActiveRuns() {
  BE_ASSIGN_OR_RETURN(
      Statement q,
      db_.Prepare(fmt::format("SELECT {} FROM runs r JOIN matrices m ON m.id = r.matrix_id "
                              "WHERE r.state NOT IN ('SUCCEEDED', 'FAILED', 'CANCELLED') "
                              "ORDER BY r.id",
                              kRunColumns)));
  std::vector<RunRow> out;
  BE_RETURN_IF_ERROR(ForEachRow(q, [&](const Statement& s) { out.push_back(ReadRun(s)); }));
  return out;
}

Result<std::optional<RunRow>> RunStore::GetRun(int64_t id) {
  BE_ASSIGN_OR_RETURN(
      Statement q,
      db_.Prepare(
          fmt::format("SELECT {} FROM runs r JOIN matrices m ON m.id = r.matrix_id WHERE r.id = ?1",
                      kRunColumns)));
  q.Bind(1, id);
  std::optional<RunRow> out;
  BE_RETURN_IF_ERROR(ForEachRow(q, [&](const Statement& s) { out = ReadRun(s); }));
  return out;
}

Status RunStore::SaveRun(const RunRow& r, const std::optional<RunEventRow>& event) {
  Transaction tx(db_);
  BE_RETURN_IF_ERROR(tx.Begin());
  BE_RETURN_IF_ERROR(UpdateRun(r));
  if (event) BE_RETURN_IF_ERROR(InsertEvent(*event));
  return tx.Commit();
}

Status RunStore::StartAttempt(const RunRow& run, const AttemptRow& a, const RunEventRow& event) {
  Transaction tx(db_);
  BE_RETURN_IF_ERROR(tx.Begin());
  BE_ASSIGN_OR_RETURN(Statement q, db_.Prepare(R"sql(
    INSERT INTO run_attempts (run_id, attempt, placement_json, state, started_at_unix_ms,
                              software_version, backend, nodes, devices, device_names)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10))sql"));
  q.Bind(1, a.run_id)
      .Bind(2, a.attempt)
      .Bind(3, a.placement_json)
      .Bind(4, a.state)
      .Bind(5, a.started_at_unix_ms)
      .Bind(6, a.software_version)
      .Bind(7, a.backend)
      .Bind(8, a.nodes)
      .Bind(9, a.devices)
      .Bind(10, a.device_names);
  BE_RETURN_IF_ERROR(q.Run());
  BE_RETURN_IF_ERROR(UpdateRun(run));
  BE_RETURN_IF_ERROR(InsertEvent(event));
  return tx.Commit();
}

Status RunStore::FinishAttempt(const RunRow& run, int64_t attempt, std::string_view state,
                               std::string_view error, int64_t at_unix_ms,
                               const RunEventRow& event) {
  Transaction tx(db_);
  BE_RETURN_IF_ERROR(tx.Begin());
  BE_ASSIGN_OR_RETURN(Statement q, db_.Prepare(R"sql(
    UPDATE run_attempts SET state = ?3, error = ?4, finished_at_unix_ms = ?5
    WHERE run_id = ?1 AND attempt = ?2)sql"));
  q.Bind(1, run.id)
      .Bind(2, attempt)
      .Bind(3, state)
      .Bind(4, error.empty() ? std::optional<std::string>() : std::string(error))
      .Bind(5, at_unix_ms);
  BE_RETURN_IF_ERROR(q.Run());
  BE_RETURN_IF_ERROR(UpdateRun(run));
  BE_RETURN_IF_ERROR(InsertEvent(event));
  return tx.Commit();
}

Result<std::optional<AttemptRow>> RunStore::GetAttempt(int64_t run_id, int64_t attempt) {
  BE_ASSIGN_OR_RETURN(Statement q, db_.Prepare(R"sql(
    SELECT placement_json, state, error, started_at_unix_ms, finished_at_unix_ms,
           software_version, backend, nodes, devices, device_names
    FROM run_attempts WHERE run_id = ?1 AND attempt = ?2)sql"));
  q.Bind(1, run_id).Bind(2, attempt);
  std::optional<AttemptRow> out;
  BE_RETURN_IF_ERROR(ForEachRow(q, [&](const Statement& s) {
    AttemptRow a;
    a.run_id = run_id;
    a.attempt = attempt;
    a.placement_json = s.Text(0);
    a.state = s.Text(1);
    a.error = s.OptionalText(2).value_or("");
    a.started_at_unix_ms = s.Int64(3);
    a.finished_at_unix_ms = s.OptionalInt64(4);
    a.software_version = s.OptionalText(5).value_or("");
    a.backend = s.Text(6);
    a.nodes = s.Text(7);
    a.devices = s.Int64(8);
    a.device_names = s.Text(9);
    out = std::move(a);
  }));
  return out;
}

Result<bool> RunStore::InsertPoint(const RunRow& run, const v1::PointResult& p, int64_t devices,
                                   int64_t at_unix_ms) {
  const v1::PointMetrics& m = p.metrics();
  const v1::RequestColumns& c = p.requests();
  const int n = c.arrival_ms_size();
  if (c.sent_ms_size() != n || c.first_token_ms_size() != n || c.last_token_ms_size() != n ||
      c.input_tokens_size() != n || c.output_tokens_size() != n || c.chunks_size() != n ||
      c.ok_size() != n) {
    return InvalidArgument("run {} point {}: request columns have different lengths", run.id,
                           p.index());
  }
  static const std::vector<std::string> kKinds = {"sync", "concurrency", "rate", "throughput"};
  if (std::find(kKinds.begin(), kKinds.end(), p.kind()) == kKinds.end()) {
    return InvalidArgument("run {} point {}: unknown kind '{}'", run.id, p.index(), p.kind());
  }

  Transaction tx(db_);
  BE_RETURN_IF_ERROR(tx.Begin());
  // Device-seconds per million tokens, price-free (docs/cost.md).
  auto per_mtok = [&](int64_t tokens) -> std::optional<double> {
    if (tokens <= 0 || m.duration_s() <= 0) return std::nullopt;
    return static_cast<double>(devices) * m.duration_s() / static_cast<double>(tokens) * 1e6;
  };
  Statement& q = insert_point_;
  int i = 0;
  auto bind = [&](auto value) { q.Bind(++i, value); };  // in the INSERT's column order
  bind(run.id);
  bind(run.attempt);
  bind(static_cast<int64_t>(p.index()));
  bind(p.kind());
  bind(p.target());
  bind(m.requests());
  bind(m.failed());
  bind(m.input_tokens());
  bind(m.output_tokens());
  bind(m.duration_s());
  bind(m.requests_per_s());
  bind(m.output_tokens_per_s());
  bind(m.total_tokens_per_s());
  bind(m.goodput_requests_per_s());
  bind(m.slo_attainment());
  for (const v1::LatencySummary* s : {&m.ttft_ms(), &m.tpot_ms(), &m.itl_ms(), &m.e2e_ms()}) {
    // A metric with no samples (TPOT of one-token requests) is unknown, not zero.
    auto v = [&](double x) { return s->count() == 0 ? std::optional<double>() : x; };
    for (double x : {s->p50(), s->p90(), s->p95(), s->p99(), s->mean(), s->max()}) bind(v(x));
  }
  auto positive = [](double x) { return x > 0 ? std::optional<double>(x) : std::nullopt; };
  bind(positive(m.mbu()));
  bind(positive(m.mfu()));
  bind(per_mtok(m.input_tokens()));
  bind(per_mtok(m.output_tokens()));
  bind(per_mtok(m.input_tokens() + m.output_tokens()));
  bind(devices);
  bind(at_unix_ms);
  BE_RETURN_IF_ERROR(q.Run());
  if (db_.Changes() == 0) return false;  // stored before: tx rolls back (nothing changed)
  const int64_t point_id = db_.LastInsertRowId();

  Statement& r = insert_request_;
  for (int k = 0; k < n; ++k) {
    auto time = [](double ms) { return ms < 0 ? std::optional<double>() : ms; };
    r.Bind(1, point_id)
        .Bind(2, int64_t{k})
        .Bind(3, c.arrival_ms(k))
        .Bind(4, c.sent_ms(k))
        .Bind(5, time(c.first_token_ms(k)))
        .Bind(6, time(c.last_token_ms(k)))
        .Bind(7, static_cast<int64_t>(c.input_tokens(k)))
        .Bind(8, static_cast<int64_t>(c.output_tokens(k)))
        .Bind(9, static_cast<int64_t>(c.chunks(k)))
        .Bind(10, int64_t{c.ok(k)});
    BE_RETURN_IF_ERROR(r.Run());
  }
  BE_RETURN_IF_ERROR(UpdateRun(run));
  BE_RETURN_IF_ERROR(tx.Commit());
  return true;
}

Result<std::vector<v1::RunInfo>> RunStore::QueryRunInfos(const std::string& where,
                                                         const std::vector<int64_t>& params,
                                                         int limit) {
  BE_ASSIGN_OR_RETURN(Statement q,
                      db_.Prepare(fmt::format(
                          "SELECT {}, a.nodes FROM runs r JOIN matrices m ON m.id = r.matrix_id "
                          "LEFT JOIN run_attempts a ON a.run_id = r.id AND a.attempt = r.attempt "
                          "{} ORDER BY r.id DESC LIMIT {}",
                          kRunColumns, where, limit > 0 ? limit : -1)));
  for (size_t k = 0; k < params.size(); ++k) q.Bind(static_cast<int>(k + 1), params[k]);
  std::vector<v1::RunInfo> out;
  BE_RETURN_IF_ERROR(ForEachRow(q, [&](const Statement& s) {
    RunRow r = ReadRun(s);
    v1::RunInfo info;
    info.set_id(static_cast<uint64_t>(r.id));
    info.set_matrix_id(static_cast<uint64_t>(r.matrix_id));
    info.set_matrix(r.matrix);
    info.set_batch(static_cast<uint32_t>(r.batch));
    info.set_model(r.model);
    info.set_weights(r.weights);
    info.set_workload(r.workload);
    info.set_tp(static_cast<uint32_t>(r.tp));
    info.set_device_type(r.device_type);
    info.set_state(r.state);
    info.set_reason(r.reason);
    info.set_attempt(static_cast<uint32_t>(r.attempt));
    info.set_max_attempts(static_cast<uint32_t>(r.max_attempts));
    info.set_progress(r.progress);
    info.set_created_at_unix_ms(r.created_at_unix_ms);
    info.set_started_at_unix_ms(r.started_at_unix_ms.value_or(0));
    info.set_finished_at_unix_ms(r.finished_at_unix_ms.value_or(0));
    info.set_load(r.load_summary);
    info.set_points_done(static_cast<uint32_t>(r.points_done));
    info.set_points_planned(static_cast<uint32_t>(r.points_planned));
    const int nodes_column = 29;
    if (!s.IsNull(nodes_column)) {
      std::string nodes = s.Text(nodes_column);
      size_t start = 0;
      while (start < nodes.size()) {
        size_t comma = nodes.find(',', start);
        if (comma == std::string::npos) comma = nodes.size();
        info.add_nodes(nodes.substr(start, comma - start));
        start = comma + 1;
      }
    }
    out.push_back(std::move(info));
  }));
  return out;
}

Result<std::vector<v1::RunInfo>> RunStore::ListRuns(int64_t matrix_id, bool active_only,
                                                    int limit) {
  std::string where;
  std::vector<int64_t> params;
  auto add = [&](const std::string& cond) {
    where += where.empty() ? "WHERE " + cond : " AND " + cond;
  };
  if (matrix_id != 0) {
    add("r.matrix_id = ?1");
    params.push_back(matrix_id);
  }
  if (active_only) add("r.state NOT IN ('SUCCEEDED', 'FAILED', 'CANCELLED')");
  return QueryRunInfos(where, params, limit);
}

Result<v1::RunInfo> RunStore::RunInfo(int64_t id) {
  BE_ASSIGN_OR_RETURN(auto infos, QueryRunInfos("WHERE r.id = ?1", {id}, 1));
  if (infos.empty()) return NotFound("no run {}", id);
  return infos.front();
}

Result<std::vector<v1::Event>> RunStore::RunEvents(int64_t run_id, int limit) {
  BE_ASSIGN_OR_RETURN(Statement q, db_.Prepare(R"sql(
    SELECT e.id, e.at_unix_ms, COALESCE(n.name, ''), e.kind, e.detail
    FROM events e LEFT JOIN nodes n ON n.id = e.node_id
    WHERE e.run_id = ?1 ORDER BY e.id DESC LIMIT ?2)sql"));
  q.Bind(1, run_id).Bind(2, static_cast<int64_t>(limit > 0 ? limit : -1));
  std::vector<v1::Event> out;
  BE_RETURN_IF_ERROR(ForEachRow(q, [&](const Statement& s) {
    v1::Event e;
    e.set_id(static_cast<uint64_t>(s.Int64(0)));
    e.set_at_unix_ms(s.Int64(1));
    e.set_node(s.Text(2));
    e.set_kind(s.Text(3));
    e.set_detail(s.Text(4));
    out.push_back(std::move(e));
  }));
  return out;
}

Result<v1::Table> RunStore::RunPoints(int64_t run_id) {
  BE_ASSIGN_OR_RETURN(Statement q, db_.Prepare(R"sql(
    SELECT attempt, point_index, kind, target, requests, failed, requests_per_s,
           output_tokens_per_s, ttft_p50_ms, ttft_p95_ms, tpot_p50_ms, tpot_p95_ms, itl_p95_ms,
           e2e_p95_ms, goodput_requests_per_s, mbu, device_seconds_per_mtok_total
    FROM load_points WHERE run_id = ?1 ORDER BY attempt, point_index)sql"));
  q.Bind(1, run_id);
  v1::Table t;
  for (const char* c :
       {"attempt", "point", "kind", "target", "requests", "failed", "requests_per_s",
        "output_tokens_per_s", "ttft_p50_ms", "ttft_p95_ms", "tpot_p50_ms", "tpot_p95_ms",
        "itl_p95_ms", "e2e_p95_ms", "goodput_requests_per_s", "mbu", "device_s_per_mtok"}) {
    t.add_columns(c);
  }
  BE_RETURN_IF_ERROR(ForEachRow(q, [&](const Statement& s) {
    v1::Row* row = t.add_rows();
    for (int c = 0; c < t.columns_size(); ++c) {
      v1::Cell* cell = row->add_cells();
      if (s.IsNull(c)) continue;
      if (c == 2) {
        cell->set_text(s.Text(c));
      } else if (c == 0 || c == 1 || c == 4 || c == 5) {
        cell->set_integer(s.Int64(c));
      } else {
        cell->set_number(s.Double(c));
      }
    }
  }));
  return t;
}

}  // namespace breakeven::db

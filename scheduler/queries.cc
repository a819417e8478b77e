// The query files hold all of the economics (so the CLI and an analyst in the sqlite3 shell get
// the same numbers); this file checks arguments, binds them by name, turns rows into a v1::Table,
// and explains an empty answer or a missing price in words.
#include "scheduler/queries.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <variant>
#include <vector>

#include "bench/load_plan.h"
#include "db/embedded.h"
#include "db/price_store.h"

namespace breakeven::scheduler {

namespace {

// ---- running an embedded query file ----

// A bound value; std::monostate binds NULL.
using Value = std::variant<std::monostate, int64_t, double, std::string>;
using Bindings = std::map<std::string, Value>;  // ":model" -> value

struct StatementDeleter {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using RawStatement = std::unique_ptr<sqlite3_stmt, StatementDeleter>;

void BindValue(sqlite3_stmt* stmt, int index, const Value& value) {
  if (const auto* i = std::get_if<int64_t>(&value)) {
    sqlite3_bind_int64(stmt, index, *i);
  } else if (const auto* d = std::get_if<double>(&value)) {
    sqlite3_bind_double(stmt, index, *d);
  } else if (const auto* s = std::get_if<std::string>(&value)) {
    sqlite3_bind_text(stmt, index, s->data(), static_cast<int>(s->size()), SQLITE_TRANSIENT);
  } else {
    sqlite3_bind_null(stmt, index);
  }
}

v1::Cell ReadCell(sqlite3_stmt* stmt, int column) {
  v1::Cell cell;
  switch (sqlite3_column_type(stmt, column)) {
    case SQLITE_INTEGER:
      cell.set_integer(sqlite3_column_int64(stmt, column));
      break;
    case SQLITE_FLOAT:
      cell.set_number(sqlite3_column_double(stmt, column));
      break;
    case SQLITE_TEXT:
    case SQLITE_BLOB:
      cell.set_text(reinterpret_cast<const char*>(sqlite3_column_text(stmt, column)),
                    static_cast<size_t>(sqlite3_column_bytes(stmt, column)));
      break;
    default:  // SQLITE_NULL: no value
      break;
  }
  return cell;
}

// Runs db/queries/<file> as the sqlite3 shell would: parameters the SQL names and `bindings`
// lacks are NULL. The statement is the Database wrapper's lower level (the wrapper has no column
// names or types, which a generic table needs).
Result<v1::Table> RunQueryFile(db::Database& db, const std::string& file,
                               const Bindings& bindings) {
  const db::EmbeddedFile* query = db::FindEmbedded(db::QueryFiles(), file);
  if (query == nullptr) return Internal("query file {} is missing from this build", file);
  sqlite3_stmt* raw = nullptr;
  const char* tail = nullptr;
  int rc = sqlite3_prepare_v2(db.raw(), query->text.data(), static_cast<int>(query->text.size()),
                              &raw, &tail);
  RawStatement stmt(raw);
  if (rc != SQLITE_OK || stmt == nullptr) {
    return Internal("query {}: {}", file, sqlite3_errmsg(db.raw()));
  }
  std::string_view rest(tail, query->text.data() + query->text.size() - tail);
  if (rest.find_first_not_of(" \t\r\n") != std::string_view::npos) {
    return Internal("query {} holds more than one statement", file);
  }

  std::set<std::string> named;
  for (int i = 1; i <= sqlite3_bind_parameter_count(stmt.get()); ++i) {
    const char* name = sqlite3_bind_parameter_name(stmt.get(), i);
    if (name == nullptr) return Internal("query {}: parameter {} has no name", file, i);
    named.insert(name);
    auto it = bindings.find(name);
    BindValue(stmt.get(), i, it == bindings.end() ? Value() : it->second);
  }
  for (const auto& [name, value] : bindings) {
    if (!named.contains(name)) return Internal("query {} has no parameter {}", file, name);
  }

  v1::Table table;
  const int columns = sqlite3_column_count(stmt.get());
  for (int c = 0; c < columns; ++c) table.add_columns(sqlite3_column_name(stmt.get(), c));
  for (;;) {
    rc = sqlite3_step(stmt.get());
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return Internal("query {}: {}", file, sqlite3_errmsg(db.raw()));
    v1::Row* row = table.add_rows();
    for (int c = 0; c < columns; ++c) *row->add_cells() = ReadCell(stmt.get(), c);
  }
  return table;
}

// The first column of a small look-up (ids and names for messages), as text.
Result<std::vector<std::string>> Column(db::Database& db, std::string_view sql,
                                        const std::vector<std::string>& params = {}) {
  BE_ASSIGN_OR_RETURN(db::Statement q, db.Prepare(sql));
  for (size_t i = 0; i < params.size(); ++i) q.Bind(static_cast<int>(i) + 1, params[i]);
  std::vector<std::string> out;
  for (;;) {
    BE_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out.push_back(q.Text(0));
  }
  return out;
}

std::string JoinOr(const std::vector<std::string>& items, std::string_view none) {
  if (items.empty()) return std::string(none);
  std::string out;
  for (const std::string& s : items) {
    if (!out.empty()) out += ", ";
    out += s;
  }
  return out;
}

int ColumnIndex(const v1::Table& table, std::string_view name) {
  for (int i = 0; i < table.columns_size(); ++i) {
    if (table.columns(i) == name) return i;
  }
  return -1;
}

// ---- arguments ----

std::string Flag(std::string_view arg) {
  std::string flag = "--" + std::string(arg);
  std::replace(flag.begin(), flag.end(), '_', '-');
  return flag;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

class Args {
 public:
  Args(std::string kind, const std::map<std::string, std::string>& raw)
      : kind_(std::move(kind)), raw_(raw) {}

  // An argument outside `known` is an error naming it and the ones `kind` takes.
  Status Check(const std::vector<std::string>& known) const {
    for (const auto& [name, value] : raw_) {
      if (std::find(known.begin(), known.end(), name) != known.end()) continue;
      std::vector<std::string> flags;
      for (const std::string& k : known) flags.push_back(Flag(k));
      return InvalidArgument("{} does not take {}; it takes {}", kind_, Flag(name),
                             JoinOr(flags, "no arguments"));
    }
    return Status::Ok();
  }

  // Trimmed; nullopt when absent or empty.
  std::optional<std::string> Get(const std::string& name) const {
    auto it = raw_.find(name);
    if (it == raw_.end() || Trim(it->second).empty()) return std::nullopt;
    return std::string(Trim(it->second));
  }

  Result<std::string> Required(const std::string& name, std::string_view example) const {
    std::optional<std::string> v = Get(name);
    if (!v) {
      return InvalidArgument("{} needs {} (e.g. {} {})", kind_, Flag(name), Flag(name), example);
    }
    return *v;
  }

  Result<std::optional<int64_t>> Integer(const std::string& name, int64_t min) const {
    std::optional<std::string> v = Get(name);
    if (!v) return std::optional<int64_t>();
    int64_t n = 0;
    auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
    if (ec != std::errc() || end != v->data() + v->size() || n < min) {
      return InvalidArgument("{}: '{}' is not a whole number >= {}", Flag(name), *v, min);
    }
    return std::optional<int64_t>(n);
  }

  // A finite number in (above, at_most].
  Result<std::optional<double>> Number(const std::string& name, double above, double at_most,
                                       std::string_view range) const {
    std::optional<std::string> v = Get(name);
    if (!v) return std::optional<double>();
    double x = 0;
    auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), x);
    if (ec != std::errc() || end != v->data() + v->size() || !std::isfinite(x)) {
      return InvalidArgument("{}: '{}' is not a number", Flag(name), *v);
    }
    if (!(x > above && x <= at_most)) {
      return InvalidArgument("{}: {} is outside {}", Flag(name), *v, range);
    }
    return std::optional<double>(x);
  }

 private:
  std::string kind_;
  const std::map<std::string, std::string>& raw_;
};

Value Text(const std::optional<std::string>& s) { return s ? Value(*s) : Value(); }
template <typename T>
Value Maybe(const std::optional<T>& v) {
  return v ? Value(*v) : Value();
}

// The API price named by `flag`'s value, or an InvalidArgument naming the flag and near matches.
Result<db::ApiPriceRow> ApiPrice(db::Database& db, std::string_view flag,
                                 const std::string& provider_slash_model) {
  Result<db::ApiPriceRow> found = db::FindApiPrice(db, provider_slash_model);
  if (found.ok()) return found;
  const Status& s = found.status();
  if (s.code() == StatusCode::kNotFound || s.code() == StatusCode::kInvalidArgument) {
    return InvalidArgument("{}: {}", flag, s.message());
  }
  return s;
}

std::string ApiNote(const db::ApiPriceRow& api) {
  return fmt::format("API {}/{}: ${} per Mtok input, ${} per Mtok output ({}, as of {})",
                     api.provider, api.model, api.input_usd_per_mtok, api.output_usd_per_mtok,
                     api.source, api.as_of);
}

// One note per device type whose usd_per_device_hour is null, in FindDevicePrice's words.
Status AddPriceNotes(db::Database& db, const std::optional<std::string>& provider,
                     v1::Table& table) {
  const int device = ColumnIndex(table, "device_type");
  const int price = ColumnIndex(table, "usd_per_device_hour");
  if (device < 0 || price < 0) return Internal("query table lacks device_type or its price");
  std::set<std::string> unpriced;
  for (const v1::Row& row : table.rows()) {
    if (row.cells(price).value_case() == v1::Cell::VALUE_NOT_SET) {
      unpriced.insert(row.cells(device).text());
    }
  }
  for (const std::string& d : unpriced) {
    Result<db::GpuPrice> found = db::FindDevicePrice(db, d, provider.value_or(""));
    if (found.ok()) {
      table.add_notes(fmt::format("no price for device type '{}' (its $ columns are empty)", d));
    } else if (found.status().code() == StatusCode::kNotFound ||
               found.status().code() == StatusCode::kInvalidArgument) {
      table.add_notes(found.status().message() + " (its $ columns are empty)");
    } else {
      return found.status();
    }
  }
  return Status::Ok();
}

constexpr std::string_view kModelsWithResults = R"sql(
    SELECT DISTINCT model FROM runs r
    WHERE EXISTS (SELECT 1 FROM load_points lp WHERE lp.run_id = r.id)
    ORDER BY model)sql";

// NotFound unless `model` has load points; the message lists the models that have.
Status RequireModelResults(db::Database& db, const std::string& model) {
  BE_ASSIGN_OR_RETURN(std::vector<std::string> models, Column(db, kModelsWithResults));
  if (std::find(models.begin(), models.end(), model) != models.end()) return Status::Ok();
  return NotFound("no load points for model '{}'; models with results: {}", model,
                  JoinOr(models, "none yet (no run has recorded a load point)"));
}

// "workloads 512/512, 128/1024; device types cpu; tp 1, 2" for a model's load points.
Result<std::string> MeasuredFor(db::Database& db, const std::string& model) {
  auto distinct = [&](std::string_view column) {
    return Column(db,
                  fmt::format(R"sql(
        SELECT DISTINCT {0} FROM runs r
        WHERE r.model = ?1 AND EXISTS (SELECT 1 FROM load_points lp WHERE lp.run_id = r.id)
        ORDER BY {0})sql",
                              column),
                  {model});
  };
  BE_ASSIGN_OR_RETURN(std::vector<std::string> workloads, distinct("workload"));
  BE_ASSIGN_OR_RETURN(std::vector<std::string> devices, distinct("device_type"));
  BE_ASSIGN_OR_RETURN(std::vector<std::string> tps, distinct("tp"));
  return fmt::format("workloads {}; device types {}; tp {}", JoinOr(workloads, "none"),
                     JoinOr(devices, "none"), JoinOr(tps, "none"));
}

// ---- the kinds ----

Result<v1::Table> Results(db::Database& db, const Args& args) {
  BE_RETURN_IF_ERROR(args.Check({"matrix", "run", "model", "provider"}));
  std::optional<std::string> matrix = args.Get("matrix");
  BE_ASSIGN_OR_RETURN(std::optional<int64_t> run, args.Integer("run", 1));
  std::optional<std::string> model = args.Get("model");
  std::optional<std::string> provider = args.Get("provider");

  BE_ASSIGN_OR_RETURN(v1::Table table, RunQueryFile(db, "results.sql",
                                                    {{":matrix", Text(matrix)},
                                                     {":run", Maybe(run)},
                                                     {":model", Text(model)},
                                                     {":provider", Text(provider)}}));
  if (table.rows_size() > 0) {
    BE_RETURN_IF_ERROR(AddPriceNotes(db, provider, table));
    return table;
  }

  // Nothing matched: say which filter found nothing.
  if (matrix) {
    BE_ASSIGN_OR_RETURN(
        std::vector<std::string> ids,
        Column(db, "SELECT id FROM matrices WHERE name = ?1 OR id = ?1", {*matrix}));
    if (ids.empty()) {
      BE_ASSIGN_OR_RETURN(std::vector<std::string> names,
                          Column(db, "SELECT id || ' ' || name FROM matrices ORDER BY id"));
      return NotFound("--matrix: no matrix named or numbered '{}'; matrices: {}", *matrix,
                      JoinOr(names, "none"));
    }
  }
  if (run) {
    BE_ASSIGN_OR_RETURN(std::vector<std::string> state,
                        Column(db, "SELECT state FROM runs WHERE id = ?1", {std::to_string(*run)}));
    if (state.empty()) return NotFound("--run: there is no run {}", *run);
    BE_ASSIGN_OR_RETURN(
        std::vector<std::string> points,
        Column(db, "SELECT 1 FROM load_points WHERE run_id = ?1 LIMIT 1", {std::to_string(*run)}));
    if (points.empty()) {
      return NotFound("run {} has no load points yet (it is {})", *run, state.front());
    }
  }
  if (model) BE_RETURN_IF_ERROR(RequireModelResults(db, *model));
  BE_ASSIGN_OR_RETURN(std::vector<std::string> models, Column(db, kModelsWithResults));
  if (models.empty()) return NotFound("no load points yet: no run has recorded one");
  return NotFound("no load points match{}{}{}; models with results: {}",
                  matrix ? fmt::format(" matrix '{}'", *matrix) : "",
                  run ? fmt::format(" run {}", *run) : "",
                  model ? fmt::format(" model '{}'", *model) : "", JoinOr(models, "none"));
}

Result<v1::Table> Compare(db::Database& db, const Args& args) {
  BE_RETURN_IF_ERROR(
      args.Check({"model", "api", "provider", "utilization", "workload", "device", "tp"}));
  BE_ASSIGN_OR_RETURN(std::string model, args.Required("model", "tiny-15m"));
  BE_ASSIGN_OR_RETURN(std::string api, args.Required("api", "OpenAI/gpt-4o-mini"));
  BE_ASSIGN_OR_RETURN(std::optional<double> utilization,
                      args.Number("utilization", 0, 1, "(0, 1]: the share of paid hours in use"));
  BE_ASSIGN_OR_RETURN(std::optional<int64_t> tp, args.Integer("tp", 1));
  std::optional<std::string> provider = args.Get("provider");
  std::optional<std::string> workload = args.Get("workload");
  std::optional<std::string> device = args.Get("device");

  BE_ASSIGN_OR_RETURN(db::ApiPriceRow api_price, ApiPrice(db, "--api", api));
  BE_RETURN_IF_ERROR(RequireModelResults(db, model));
  BE_ASSIGN_OR_RETURN(v1::Table table, RunQueryFile(db, "compare.sql",
                                                    {{":model", model},
                                                     {":api", api},
                                                     {":provider", Text(provider)},
                                                     {":utilization", Maybe(utilization)},
                                                     {":workload", Text(workload)},
                                                     {":device", Text(device)},
                                                     {":tp", Maybe(tp)}}));
  if (table.rows_size() == 0) {
    BE_ASSIGN_OR_RETURN(std::string measured, MeasuredFor(db, model));
    return NotFound("no load points for model '{}'{}{}{}; measured for it: {}", model,
                    workload ? fmt::format(" with workload '{}'", *workload) : "",
                    device ? fmt::format(" on device '{}'", *device) : "",
                    tp ? fmt::format(" at tp {}", *tp) : "", measured);
  }
  table.add_notes(ApiNote(api_price));
  BE_RETURN_IF_ERROR(AddPriceNotes(db, provider, table));
  return table;
}

Result<v1::Table> Plan(db::Database& db, const Args& args) {
  BE_RETURN_IF_ERROR(args.Check({"model", "workload", "rate", "slo", "provider", "compare_to"}));
  BE_ASSIGN_OR_RETURN(std::string model, args.Required("model", "tiny-15m"));
  BE_ASSIGN_OR_RETURN(std::string workload, args.Required("workload", "512/512"));
  BE_RETURN_IF_ERROR(args.Required("rate", "20").status());
  BE_ASSIGN_OR_RETURN(std::optional<double> rate,
                      args.Number("rate", 0, std::numeric_limits<double>::max(),
                                  "(0, inf): requests per second to serve"));
  std::optional<std::string> provider = args.Get("provider");
  std::optional<std::string> compare_to = args.Get("compare_to");

  Value slo_json;
  std::string slo_text = "none (a configuration's capacity is its highest measured requests/s)";
  if (std::optional<std::string> text = args.Get("slo")) {
    Result<bench::Slo> slo = bench::ParseSlo(*text);
    if (!slo.ok()) return InvalidArgument("--slo: {}", slo.status().message());
    nlohmann::json limits = nlohmann::json::object();
    for (const bench::SloTerm& t : slo->terms) limits[t.Name() + "_ms"] = t.limit_ms;
    slo_json = limits.dump();
    slo_text = slo->ToString();
  }
  std::optional<db::ApiPriceRow> api_price;
  if (compare_to) {
    BE_ASSIGN_OR_RETURN(api_price, ApiPrice(db, "--compare-to", *compare_to));
  }

  BE_RETURN_IF_ERROR(RequireModelResults(db, model));
  BE_ASSIGN_OR_RETURN(v1::Table table, RunQueryFile(db, "plan.sql",
                                                    {{":model", model},
                                                     {":workload", workload},
                                                     {":rate", *rate},
                                                     {":slo", slo_json},
                                                     {":provider", Text(provider)},
                                                     {":api", Text(compare_to)}}));
  if (table.rows_size() == 0) {
    BE_ASSIGN_OR_RETURN(std::string measured, MeasuredFor(db, model));
    return NotFound(
        "--workload: model '{}' has no load points for workload '{}'; measured for "
        "it: {}",
        model, workload, measured);
  }
  table.add_notes(fmt::format("SLO: {}", slo_text));
  const int feasible = ColumnIndex(table, "feasible");
  const int device = ColumnIndex(table, "device_type");
  const int tp = ColumnIndex(table, "tp");
  std::vector<std::string> infeasible;
  for (const v1::Row& row : table.rows()) {
    if (row.cells(feasible).integer() == 0) {
      infeasible.push_back(
          fmt::format("{} tp {}", row.cells(device).text(), row.cells(tp).integer()));
    }
  }
  if (!infeasible.empty()) {
    table.add_notes(
        fmt::format("no load point meets the SLO on: {} (listed last)", JoinOr(infeasible, "")));
  }
  if (api_price) table.add_notes(ApiNote(*api_price));
  BE_RETURN_IF_ERROR(AddPriceNotes(db, provider, table));
  return table;
}

Result<v1::Table> Prices(db::Database& db, const Args& args) {
  BE_RETURN_IF_ERROR(args.Check({"table"}));
  std::optional<std::string> which = args.Get("table");
  std::string lowered = which.value_or("");
  std::transform(lowered.begin(), lowered.end(), lowered.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  std::string file = "prices.sql";
  Bindings bindings;
  if (lowered == "gpu" || lowered == "api" || lowered == "settings") {
    bindings[":table"] = lowered;
  } else if (lowered == "specs") {
    file = "gpu_specs.sql";
  } else if (which) {
    return InvalidArgument("--table: '{}' is not one of gpu, api, specs, settings", *which);
  }
  BE_ASSIGN_OR_RETURN(v1::Table table, RunQueryFile(db, file, bindings));
  if (table.rows_size() == 0) {
    table.add_notes(
        fmt::format("the {} catalog is empty (add rows with `breakeven prices "
                    "import FILE.csv`)",
                    which ? lowered : "price"));
  }
  return table;
}

}  // namespace

Result<v1::Table> RunQuery(db::Database& db, const std::string& kind,
                           const std::map<std::string, std::string>& args) {
  Args parsed(kind, args);
  if (kind == "results") return Results(db, parsed);
  if (kind == "compare") return Compare(db, parsed);
  if (kind == "plan") return Plan(db, parsed);
  if (kind == "prices") return Prices(db, parsed);
  return InvalidArgument("query kind '{}' is not one of results, compare, plan, prices", kind);
}

}  // namespace breakeven::scheduler

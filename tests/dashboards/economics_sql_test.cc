// The economics dashboard's SQL against a database the real system wrote: a scheduler and a
// calibrated CPU node run a small benchmark matrix, then every variable and panel query runs on
// the scheduler's SQLite file the way the Grafana SQLite plugin would run it (variables
// interpolated by Grafana's rules, each query one statement). Every panel must show data.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <cmath>
#include <optional>
#include <regex>
#include <thread>

#include "db/embedded.h"
#include "db/sqlite.h"
#include "tests/dashboards/cluster_cleanup.h"
#include "tests/dashboards/dashboard_files.h"
#include "tests/support/cluster.h"

namespace breakeven::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

// One query's answer: column names and every cell (NULL as nullopt).
struct SqlRows {
  std::vector<std::string> columns;
  std::vector<std::vector<std::optional<std::string>>> rows;

  int Column(const std::string& name) const {
    for (size_t i = 0; i < columns.size(); ++i) {
      if (columns[i] == name) return static_cast<int>(i);
    }
    return -1;
  }
};

// Runs `sql` as the plugin does: one statement (anything after it would be ignored there, so it
// is an error here), every row read.
Result<SqlRows> RunSql(sqlite3* db, const std::string& sql,
                       const std::map<std::string, std::optional<std::string>>& params = {}) {
  sqlite3_stmt* stmt = nullptr;
  const char* tail = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, &tail) != SQLITE_OK) {
    return InvalidArgument("{}", sqlite3_errmsg(db));
  }
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> guard(stmt, sqlite3_finalize);
  if (stmt == nullptr) return InvalidArgument("no statement");
  for (const char* p = tail; *p; ++p) {
    if (!std::isspace(static_cast<unsigned char>(*p))) {
      return InvalidArgument("more than one statement: '{}'", std::string(p).substr(0, 60));
    }
  }
  for (const auto& [name, value] : params) {
    int i = sqlite3_bind_parameter_index(stmt, name.c_str());
    if (i == 0) continue;
    char* end = nullptr;
    const double number = value ? std::strtod(value->c_str(), &end) : 0;
    if (value && !value->empty() && *end == '\0') {  // numbers bound as numbers, as the CLI does
      sqlite3_bind_double(stmt, i, number);
    } else if (value) {
      sqlite3_bind_text(stmt, i, value->c_str(), -1, SQLITE_TRANSIENT);
    } else {
      sqlite3_bind_null(stmt, i);
    }
  }
  SqlRows out;
  for (int c = 0; c < sqlite3_column_count(stmt); ++c)
    out.columns.push_back(sqlite3_column_name(stmt, c));
  for (;;) {
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return InvalidArgument("{}", sqlite3_errmsg(db));
    std::vector<std::optional<std::string>> row;
    for (int c = 0; c < sqlite3_column_count(stmt); ++c) {
      if (sqlite3_column_type(stmt, c) == SQLITE_NULL) {
        row.push_back(std::nullopt);
      } else {
        row.push_back(reinterpret_cast<const char*>(sqlite3_column_text(stmt, c)));
      }
    }
    out.rows.push_back(std::move(row));
  }
  return out;
}

// Unix milliseconds of Grafana's relative time "now" or "now-30d".
int64_t RelativeTimeMs(const std::string& text) {
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  std::smatch m;
  static const std::regex re(R"(^now(?:-(\d+)([smhdwy]))?$)");
  EXPECT_TRUE(std::regex_match(text, m, re)) << "time range '" << text << "'";
  if (!m[1].matched) return now;
  const std::map<std::string, int64_t> unit_ms = {{"s", 1000},      {"m", 60000},
                                                  {"h", 3600000},   {"d", 86400000},
                                                  {"w", 604800000}, {"y", 31536000000}};
  return now - std::stoll(m[1].str()) * unit_ms.at(m[2].str());
}

class EconomicsDashboard : public ::testing::Test {
 protected:
  // The database: built once for the suite by the real processes.
  static void SetUpTestSuite() {
    cluster_ = std::make_unique<LocalCluster>();
    cluster_->StartScheduler(LocalCluster::FastLiveness());
    // Calibrated, so the load points carry MBU and MFU.
    cluster_->StartNode("a", {"--calibrate", "on"});
    if (!cluster_->WaitForStates({{"a", "UP"}}, 90s)) return;
    const std::string matrix = cluster_->dir() + "/economics.yaml";
    WriteFile(matrix, R"(name: economics
models: [tiny-15m]
workloads: ["16/8"]
tensor_parallel: [1, 2]
kv_cache_mib: 32
load: {pattern: sweep, sweep_points: 1, warmup_s: 0.2, duration_s: 1, max_requests: 40,
       max_concurrency: 4}
slo: {ttft_p95: 2s}
)");
    CommandResult r = cluster_->Cli({"submit", matrix});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    const auto deadline = std::chrono::steady_clock::now() + 150s;
    for (;;) {
      auto db = db::Database::Open(cluster_->db_path(), {.read_only = true});
      ASSERT_TRUE(db.ok()) << db.status().message();
      Result<SqlRows> left = RunSql((*db)->raw(),
                                    "SELECT id, state FROM runs WHERE state NOT IN ('SUCCEEDED', "
                                    "'FAILED', 'CANCELLED')");
      ASSERT_TRUE(left.ok()) << left.status().message();
      if (left->rows.empty()) break;
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the matrix did not finish";
      std::this_thread::sleep_for(250ms);
    }
    auto db = db::Database::Open(cluster_->db_path(), {.read_only = true});
    Result<SqlRows> failed =
        RunSql((*db)->raw(), "SELECT id, reason FROM runs WHERE state <> 'SUCCEEDED'");
    ASSERT_TRUE(failed.ok());
    ASSERT_TRUE(failed->rows.empty())
        << "run " << *failed->rows[0][0] << " did not succeed: " << failed->rows[0][1].value_or("");
    ready_ = true;
  }
  static void TearDownTestSuite() {
    if (cluster_) CancelRunsAndStopWorkers(*cluster_);
    cluster_.reset();
  }

  void SetUp() override {
    ASSERT_TRUE(ready_) << "the demo database could not be built (see above)";
    auto db = db::Database::Open(cluster_->db_path(), {.read_only = true});
    ASSERT_TRUE(db.ok()) << db.status().message();
    db_ = std::move(*db);
    dashboard_ = LoadDashboard("economics.json").json;
  }

  // Each variable as Grafana resolves it on opening the dashboard: its query runs (after the
  // variables before it), and the saved choice is kept when the answer holds it (All: every
  // value), else the first value is taken.
  Variables ResolveVariables() {
    Variables vars = {
        {"__from", Single(std::to_string(RelativeTimeMs(dashboard_["time"]["from"])))},
        {"__to", Single(std::to_string(RelativeTimeMs(dashboard_["time"]["to"])))}};
    for (const json& v : dashboard_["templating"]["list"]) {
      const std::string name = v["name"];
      const json current = v.value("current", json::object()).value("value", json());
      std::vector<std::string> options;
      if (v["type"] == "custom") {
        std::string list = v["query"];
        for (size_t start = 0; start <= list.size();) {
          size_t comma = std::min(list.find(',', start), list.size());
          options.push_back(list.substr(start, comma - start));
          start = comma + 1;
        }
      } else {
        EXPECT_EQ(v["type"], "query") << name;
        Result<std::string> sql = Interpolate(VariableQueryText(v), vars, QueryLanguage::kSql);
        EXPECT_TRUE(sql.ok()) << name << ": " << sql.status().message();
        if (!sql.ok()) continue;
        Result<SqlRows> rows = RunSql(db_->raw(), *sql);
        EXPECT_TRUE(rows.ok()) << "variable " << name << ": " << rows.status().message();
        if (!rows.ok()) continue;
        // The plugin turns a variable query's answer into options only when it has one column.
        EXPECT_EQ(rows->columns.size(), 1u) << "variable " << name;
        for (const auto& row : rows->rows) {
          if (row[0]) options.push_back(*row[0]);
        }
      }
      EXPECT_FALSE(options.empty()) << "variable " << name << " has no value in the database";
      if (options.empty()) continue;
      VariableValue value;
      value.multi = v.value("multi", false) || v.value("includeAll", false);
      const bool all = current.is_array() && !current.empty() && current[0] == "$__all";
      if (all && v.value("includeAll", false)) {
        value.values = options;
      } else {
        std::string chosen = current.is_array() && !current.empty() ? current[0].get<std::string>()
                             : current.is_string()                  ? current.get<std::string>()
                                                                    : "";
        if (std::find(options.begin(), options.end(), chosen) == options.end()) {
          chosen = options[0];
        }
        value.values = {chosen};
      }
      vars[name] = value;
    }
    return vars;
  }

  static inline std::unique_ptr<LocalCluster> cluster_;
  static inline bool ready_ = false;
  std::unique_ptr<db::Database> db_;
  json dashboard_;
};

// The fixture builds its database with real processes once per test program, and ctest runs
// each test in a program of its own: so one test for all that reads the dashboard as it opens.
TEST_F(EconomicsDashboard, OpensOnTheDatabasesResults) {
  // Every variable takes its values from the database (or keeps its saved choice).
  const Variables vars = ResolveVariables();
  ASSERT_EQ(vars.count("model"), 1u);
  EXPECT_EQ(vars.at("model").values, std::vector<std::string>{"tiny-15m"});
  EXPECT_EQ(vars.at("matrix").values, std::vector<std::string>{"economics"});
  EXPECT_EQ(vars.at("device").values, std::vector<std::string>{"cpu"});
  EXPECT_EQ(vars.at("api").values, std::vector<std::string>{"OpenAI/gpt-4o-mini"})
      << "the saved choice is in the seeded price catalog";
  EXPECT_EQ(vars.at("provider").values, std::vector<std::string>{"cheapest"});

  // Every panel shows data.
  int checked = 0;
  for (const PanelQuery& q : Queries(dashboard_)) {
    SCOPED_TRACE(q.where());
    ASSERT_EQ(q.datasource_uid, kSqliteUid);
    Result<std::string> sql = Interpolate(q.text, vars, QueryLanguage::kSql);
    ASSERT_TRUE(sql.ok()) << sql.status().message();
    Result<SqlRows> rows = RunSql(db_->raw(), *sql);
    ASSERT_TRUE(rows.ok()) << rows.status().message() << "\n" << *sql;
    EXPECT_GT(rows->rows.size(), 0u) << "no rows:\n" << *sql;
    // A column that is NULL in every row would be an empty bar, curve or cell.
    for (size_t c = 0; c < rows->columns.size(); ++c) {
      if (rows->columns[c] == "reason") continue;  // NULL for runs that succeeded
      bool any = false;
      for (const auto& row : rows->rows) any |= row[c].has_value();
      EXPECT_TRUE(any || rows->rows.empty()) << "column " << rows->columns[c] << " is always NULL";
    }
    ++checked;
  }
  EXPECT_GE(checked, 10);

  // A time series comes in time order, with the time column its target names (the plugin
  // refuses to turn unsorted long rows into series).
  int series = 0;
  for (const json& p : Panels(dashboard_)) {
    if (!p.contains("targets")) continue;
    for (const json& t : p["targets"]) {
      if (t.value("queryType", "") != "time series") continue;
      ++series;
      Result<std::string> sql =
          Interpolate(t["rawQueryText"].get<std::string>(), vars, QueryLanguage::kSql);
      ASSERT_TRUE(sql.ok());
      Result<SqlRows> rows = RunSql(db_->raw(), *sql);
      ASSERT_TRUE(rows.ok()) << rows.status().message();
      const int time = rows->Column(t["timeColumns"][0]);
      ASSERT_GE(time, 0) << p["title"] << ": no column " << t["timeColumns"][0];
      double last = 0;
      for (const auto& row : rows->rows) {
        ASSERT_TRUE(row[time]);
        const double at = std::stod(*row[time]);
        EXPECT_GE(at, last) << p["title"];
        EXPECT_GT(at, 1.6e9) << p["title"] << ": time in Unix seconds";
        last = at;
      }
    }
  }
  EXPECT_GE(series, 2);
}

// The dashboard's cost table is compare.sql with the dashboard's choices: for every
// configuration, the same load point, $/Mtok and break-even as `breakeven compare`.
TEST_F(EconomicsDashboard, CostTableAgreesWithCompareSql) {
  Variables vars = ResolveVariables();
  vars["utilization"] = Single("0.5");
  std::optional<PanelQuery> table;
  for (const PanelQuery& q : Queries(dashboard_)) {
    if (q.text.find("breakeven_mtok_per_month") != std::string::npos) table = q;
  }
  ASSERT_TRUE(table) << "no panel selects breakeven_mtok_per_month";
  Result<std::string> sql = Interpolate(table->text, vars, QueryLanguage::kSql);
  ASSERT_TRUE(sql.ok());
  Result<SqlRows> mine = RunSql(db_->raw(), *sql);
  ASSERT_TRUE(mine.ok()) << mine.status().message();

  const db::EmbeddedFile* compare = db::FindEmbedded(db::QueryFiles(), "compare.sql");
  ASSERT_NE(compare, nullptr);
  Result<SqlRows> theirs = RunSql(db_->raw(), compare->text,
                                  {{":model", "tiny-15m"},
                                   {":api", vars["api"].values[0]},
                                   {":utilization", "0.5"},
                                   {":provider", std::nullopt}});
  ASSERT_TRUE(theirs.ok()) << theirs.status().message();
  ASSERT_EQ(mine->rows.size(), theirs->rows.size());
  ASSERT_EQ(mine->rows.size(), 2u) << "tp 1 and tp 2";

  auto key = [](const SqlRows& t, size_t r) {
    std::string k;
    for (const char* c : {"workload", "dtype", "device_type", "tp"})
      k += *t.rows[r][t.Column(c)] + "|";
    return k;
  };
  for (size_t i = 0; i < mine->rows.size(); ++i) {
    size_t j = 0;
    while (j < theirs->rows.size() && key(*theirs, j) != key(*mine, i)) ++j;
    ASSERT_LT(j, theirs->rows.size()) << "compare.sql has no row " << key(*mine, i);
    for (const char* c :
         {"run_id", "point_index", "total_tokens_per_s", "usd_per_device_hour", "self_usd_per_mtok",
          "api_usd_per_mtok", "self_over_api", "breakeven_utilization", "breakeven_mtok_per_month",
          "capacity_mtok_per_month"}) {
      SCOPED_TRACE(std::string(c) + " of " + key(*mine, i));
      ASSERT_GE(mine->Column(c), 0);
      const auto& a = mine->rows[i][mine->Column(c)];
      const auto& b = theirs->rows[j][theirs->Column(c)];
      ASSERT_TRUE(a && b);
      EXPECT_NEAR(std::stod(*a), std::stod(*b), 1e-9 * std::max(1.0, std::abs(std::stod(*b))));
    }
  }
}

}  // namespace
}  // namespace breakeven::testing

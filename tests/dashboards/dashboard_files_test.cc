// The dashboards as files: valid Grafana JSON, unique panel ids, datasources that the
// provisioning defines, PromQL that names only catalogued metrics and parses, SQL in the shape
// the SQLite plugin runs. No Grafana and no Prometheus needed (promtool is used when present).
#include "tests/dashboards/dashboard_files.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <map>
#include <regex>
#include <set>

#include "db/embedded.h"
#include "tests/dashboards/metric_catalog.h"
#include "tests/support/process.h"

namespace breakeven::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string SourcePath(const std::string& relative) {
  return std::string(BREAKEVEN_SOURCE_DIR) + "/" + relative;
}

// uid -> type of every provisioned datasource.
std::map<std::string, std::string> ProvisionedDatasources() {
  std::map<std::string, std::string> out;
  YAML::Node root =
      YAML::LoadFile(SourcePath("dashboards/provisioning/datasources/breakeven.yaml"));
  for (const YAML::Node& ds : root["datasources"]) {
    out[ds["uid"].as<std::string>()] = ds["type"].as<std::string>();
  }
  return out;
}

bool IsPrometheusDashboard(const json& d) {
  for (const PanelQuery& q : Queries(d)) {
    if (q.datasource_uid == kPrometheusUid) return true;
  }
  return false;
}

// A value for every variable, as a list where the variable takes one: enough to see that every
// reference resolves and is formatted the way its datasource needs.
Variables PlaceholderVariables(const json& dashboard) {
  Variables v = {{"__from", Single("1700000000000")}, {"__to", Single("1700003600000")},
                 {"__interval", Single("15s")},       {"__rate_interval", Single("1m")},
                 {"__range", Single("1h")},           {"__interval_ms", Single("15000")}};
  for (const json& var : dashboard["templating"]["list"]) {
    const bool list = var.value("multi", false) || var.value("includeAll", false);
    v[var["name"]] = VariableValue{{"placeholder"}, list, {}};
  }
  return v;
}

TEST(DashboardFiles, ThreeDashboardsWithTheirOwnUids) {
  std::vector<DashboardFile> files = LoadDashboards();
  std::set<std::string> names, uids;
  for (const DashboardFile& f : files) {
    SCOPED_TRACE(f.name);
    names.insert(f.name);
    ASSERT_TRUE(f.json.is_object());
    EXPECT_TRUE(uids.insert(f.json.value("uid", "")).second) << "uid repeated or missing";
    EXPECT_FALSE(f.json.value("title", "").empty());
    // Grafana 9.4 writes 37, 10.x 38-39; older versions migrate what they can read.
    EXPECT_GE(f.json.value("schemaVersion", 0), 36);
    EXPECT_LE(f.json.value("schemaVersion", 0), 39);
    EXPECT_EQ(f.json.value("id", json()), json()) << "a provisioned dashboard has no id";
    EXPECT_GE(Panels(f.json).size(), 5u);
    for (const json& p : Panels(f.json)) {
      EXPECT_TRUE(p.contains("gridPos") && p["gridPos"].contains("w")) << p.value("title", "");
      EXPECT_FALSE(p.value("type", "").empty());
    }
  }
  EXPECT_EQ(names,
            (std::set<std::string>{"cluster-overview.json", "economics.json", "live-runs.json"}));
}

TEST(DashboardFiles, PanelIdsAreUniqueWithinEachDashboard) {
  for (const DashboardFile& f : LoadDashboards()) {
    std::set<int> ids;
    for (const json& p : Panels(f.json)) {
      ASSERT_TRUE(p.contains("id") && p["id"].is_number_integer())
          << f.name << ": panel without id";
      EXPECT_TRUE(ids.insert(p["id"].get<int>()).second)
          << f.name << ": panel id " << p["id"] << " used twice";
    }
  }
}

TEST(DashboardFiles, ProvisioningDefinesBothDatasourcesAndTheDashboardFolder) {
  std::map<std::string, std::string> ds = ProvisionedDatasources();
  EXPECT_EQ(ds[std::string(kPrometheusUid)], "prometheus");
  EXPECT_EQ(ds[std::string(kSqliteUid)], "frser-sqlite-datasource");
  YAML::Node root =
      YAML::LoadFile(SourcePath("dashboards/provisioning/datasources/breakeven.yaml"));
  for (const YAML::Node& d : root["datasources"]) {
    if (d["uid"].as<std::string>() != kSqliteUid) continue;
    EXPECT_TRUE(d["jsonData"]["path"].as<std::string>().ends_with(".db"))
        << "the SQLite datasource must point at the scheduler's database file";
  }
  YAML::Node dashboards =
      YAML::LoadFile(SourcePath("dashboards/provisioning/dashboards/breakeven.yaml"));
  ASSERT_EQ(dashboards["providers"].size(), 1u);
  EXPECT_EQ(dashboards["providers"][0]["type"].as<std::string>(), "file");
  EXPECT_FALSE(dashboards["providers"][0]["options"]["path"].as<std::string>().empty());
}

TEST(DashboardFiles, EveryDatasourceReferenceIsProvisioned) {
  const std::map<std::string, std::string> provisioned = ProvisionedDatasources();
  auto check = [&](const std::string& where, const json& ref) {
    const std::string uid = DatasourceUid(ref);
    auto it = provisioned.find(uid);
    if (it == provisioned.end()) {
      ADD_FAILURE() << where << ": datasource '" << uid << "' is not provisioned";
    } else if (ref.is_object() && ref.contains("type")) {
      EXPECT_EQ(ref["type"], it->second) << where << ": type of " << uid;
    }
  };
  for (const DashboardFile& f : LoadDashboards()) {
    for (const json& p : Panels(f.json)) {
      const std::string where = f.name + " panel " + std::to_string(p.value("id", 0));
      if (p.value("type", "") == "row") continue;
      ASSERT_TRUE(p.contains("datasource")) << where << " has no datasource";
      check(where, p["datasource"]);
      ASSERT_TRUE(p.contains("targets") && !p["targets"].empty()) << where << " has no query";
      for (const json& t : p["targets"]) check(where + " " + t.value("refId", ""), t["datasource"]);
    }
    for (const json& v : f.json["templating"]["list"]) {
      if (v.value("type", "") == "query")
        check(f.name + " variable " + v.value("name", ""), v["datasource"]);
    }
    for (const PanelQuery& q : Queries(f.json)) {
      EXPECT_FALSE(q.text.empty()) << f.name << " " << q.where() << ": no query text";
      if (q.datasource_uid == kSqliteUid) continue;
      EXPECT_EQ(q.datasource_uid, kPrometheusUid) << f.name << " " << q.where();
    }
  }
}

TEST(DashboardFiles, EveryVariableReferenceResolves) {
  for (const DashboardFile& f : LoadDashboards()) {
    const Variables vars = PlaceholderVariables(f.json);
    for (const PanelQuery& q : Queries(f.json)) {
      const QueryLanguage lang =
          q.datasource_uid == kSqliteUid ? QueryLanguage::kSql : QueryLanguage::kPromQl;
      Result<std::string> text = Interpolate(q.text, vars, lang);
      EXPECT_TRUE(text.ok()) << f.name << " " << q.where() << ": " << text.status().message();
    }
    for (const json& v : f.json["templating"]["list"]) {
      if (v.value("type", "") != "query") continue;
      const QueryLanguage lang = DatasourceUid(v["datasource"]) == kSqliteUid
                                     ? QueryLanguage::kSql
                                     : QueryLanguage::kPromQl;
      Result<std::string> text = Interpolate(VariableQueryText(v), vars, lang);
      EXPECT_TRUE(text.ok()) << f.name << " variable " << v["name"] << ": "
                             << text.status().message();
    }
  }
}

TEST(DashboardLint, FindsWhatWouldLeaveAPanelEmpty) {
  auto clean = [](const std::string& expr) {
    for (const std::string& p : LintPromQl(expr)) ADD_FAILURE() << expr << ": " << p;
  };
  clean("sum by (state) (breakeven_scheduler_nodes)");
  clean("sum(breakeven_scheduler_nodes) by (state)");
  clean(
      "histogram_quantile(0.99, sum by (le, operation) (rate("
      "breakeven_scheduler_db_write_duration_seconds_bucket[$__rate_interval])))");
  clean(
      "breakeven_worker_kv_blocks{state=\"used\", run_id=~\"$run_id\"} / ignoring (state) "
      "sum without (state) (breakeven_worker_kv_blocks)");

  auto has = [](const std::vector<std::string>& problems, const std::string& part) {
    for (const std::string& p : problems) {
      if (p.find(part) != std::string::npos) return true;
    }
    ADD_FAILURE() << "no problem mentions '" << part << "'";
    return false;
  };
  has(LintPromQl("sum(rate(breakeven_worker_tokens_total[1m]))"), "not in the metric catalog");
  has(LintPromQl("sum(rate(breakeven_worker_generated_tokens_total[1m])"), "never closed");
  has(LintPromQl("breakeven_scheduler_nodes{state=\"UP\")"), "unbalanced");
  has(LintPromQl("breakeven_scheduler_nodes{phase=\"UP\"}"), "no label 'phase'");
  has(LintPromQl("sum by (operation) (breakeven_scheduler_nodes)"), "grouping label 'operation'");
  has(LintPromQl("histogram_quantile(0.9, sum(rate(breakeven_worker_ttft_seconds_bucket[1m])))"),
      "without `le`");
  has(LintPromQl("histogram_quantile(0.9, sum by (le) (rate(breakeven_worker_ttft_seconds[1m])))"),
      "no _bucket");
  has(LintPromQl("rates(breakeven_scheduler_frames_total[1m])"), "unknown function rates");
  has(LintPromQl("breakeven_scheduler_nodes{state=\"UP}"), "unterminated string");
}

// The catalog the lint checks against is the one docs/observability.md documents: a metric added
// to (or renamed in) the daemons and their documentation shows up here.
TEST(DashboardFiles, MetricCatalogIsTheDocumentedOne) {
  const std::string doc = ReadFile(SourcePath("docs/observability.md"));
  std::set<std::string> documented;
  // A whole name: "breakeven_node_" (a prefix in prose) is none.
  static const std::regex name_re("breakeven_[a-z0-9_]*[a-z0-9](?![a-z0-9_*])");
  for (auto it = std::sregex_iterator(doc.begin(), doc.end(), name_re);
       it != std::sregex_iterator(); ++it) {
    const CatalogMetric* m = FindCatalogMetric(it->str());
    documented.insert(m ? m->name : it->str());
  }
  std::set<std::string> catalogued;
  for (const CatalogMetric& m : MetricCatalog()) catalogued.insert(m.name);
  EXPECT_EQ(documented, catalogued);
}

TEST(DashboardFiles, EveryPromQlExpressionNamesCataloguedMetrics) {
  int checked = 0;
  for (const DashboardFile& f : LoadDashboards()) {
    for (const PanelQuery& q : Queries(f.json)) {
      if (q.datasource_uid != kPrometheusUid) continue;
      ++checked;
      for (const std::string& problem : LintPromQl(q.text)) {
        ADD_FAILURE() << f.name << " " << q.where() << ": " << problem << "\n  " << q.text;
      }
    }
    for (const json& v : f.json["templating"]["list"]) {
      if (v.value("type", "") != "query" || DatasourceUid(v["datasource"]) != kPrometheusUid) {
        continue;
      }
      std::optional<LabelValuesQuery> lv = ParseLabelValues(VariableQueryText(v));
      ASSERT_TRUE(lv) << f.name << " variable " << v["name"] << ": not label_values(...)";
      for (const std::string& problem : LintPromQl(lv->selector)) {
        ADD_FAILURE() << f.name << " variable " << v["name"] << ": " << problem;
      }
      EXPECT_TRUE(LintPromQl("sum by (" + lv->label + ") (" + lv->selector + ")").empty())
          << f.name << " variable " << v["name"] << ": the metric has no label " << lv->label;
    }
  }
  EXPECT_GE(checked, 30) << "the two Prometheus dashboards hold about 40 expressions";
}

// promtool parses PromQL with Prometheus' own parser: every expression, variables substituted,
// as a recording rule.
TEST(DashboardFiles, PromtoolParsesEveryExpression) {
  const std::string promtool = FindProgram("promtool");
  if (promtool.empty())
    GTEST_SKIP() << "promtool is not installed (Debian: apt-get install prometheus)";
  ScopedTempDir dir("dashboards");
  std::string rules = "groups:\n  - name: dashboards\n    rules:\n";
  int n = 0;
  for (const DashboardFile& f : LoadDashboards()) {
    if (!IsPrometheusDashboard(f.json)) continue;
    const Variables vars = PlaceholderVariables(f.json);
    for (const PanelQuery& q : Queries(f.json)) {
      Result<std::string> expr = Interpolate(q.text, vars, QueryLanguage::kPromQl);
      ASSERT_TRUE(expr.ok()) << expr.status().message();
      rules += fmt::format("      - record: dashboard:query_{}\n        expr: {}\n", n++,
                           json(*expr).dump());  // a JSON string is a YAML string
    }
  }
  ASSERT_GT(n, 0);
  WriteFile(dir.path() + "/rules.yml", rules);
  CommandResult r = RunCommand({promtool, "check", "rules", dir.path() + "/rules.yml"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

TEST(DashboardFiles, SqlQueriesAreInTheSqlitePluginsShape) {
  int checked = 0;
  for (const DashboardFile& f : LoadDashboards()) {
    for (const json& p : Panels(f.json)) {
      if (!p.contains("targets")) continue;
      for (const json& t : p["targets"]) {
        if (DatasourceUid(t["datasource"]) != kSqliteUid) continue;
        ++checked;
        const std::string where = f.name + " panel " + std::to_string(p.value("id", 0));
        ASSERT_TRUE(t.contains("rawQueryText") && t["rawQueryText"].is_string()) << where;
        // The plugin's frontend rewrites queryText from rawQueryText; the backend runs queryText.
        EXPECT_EQ(t.value("queryText", ""), t["rawQueryText"]) << where;
        const std::string type = t.value("queryType", "");
        EXPECT_TRUE(type == "table" || type == "time series") << where << ": " << type;
        ASSERT_TRUE(t.contains("timeColumns") && t["timeColumns"].is_array()) << where;
        if (type == "time series") {
          EXPECT_FALSE(t["timeColumns"].empty()) << where << ": a time series needs a time column";
        }
      }
    }
  }
  EXPECT_GE(checked, 8);
}

// The economics dashboard prices devices as results.sql, compare.sql and plan.sql do: the same
// block of SQL, so a change to the rule reaches the dashboard too.
TEST(DashboardFiles, EconomicsPricesDevicesWithTheQueriesBlock) {
  auto block = [](const std::string& text) {
    size_t begin = text.find("-- ---- device prices: begin");
    size_t end = text.find("-- ---- device prices: end ----");
    if (begin == std::string::npos || end == std::string::npos) return std::string();
    std::string b = text.substr(begin, end - begin);
    while (!b.empty() && (b.back() == '\n' || b.back() == ',')) b.pop_back();
    return b;
  };
  const db::EmbeddedFile* results = db::FindEmbedded(db::QueryFiles(), "results.sql");
  ASSERT_NE(results, nullptr);
  const std::string expected = block(results->text);
  ASSERT_GT(expected.size(), 1000u);
  int priced = 0;
  for (const PanelQuery& q : Queries(LoadDashboard("economics.json").json)) {
    if (q.text.find("device_prices") == std::string::npos) continue;
    ++priced;
    EXPECT_EQ(block(q.text), expected) << q.where() << " prices devices its own way";
  }
  EXPECT_GE(priced, 3);
}

}  // namespace
}  // namespace breakeven::testing

// The Grafana dashboards of dashboards/ as the tests see them: their queries, Grafana's variable
// interpolation (the part these dashboards use) and a PromQL lint against the metric catalog.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace breakeven::testing {

inline constexpr std::string_view kPrometheusUid = "breakeven-prometheus";
inline constexpr std::string_view kSqliteUid = "breakeven-sqlite";

struct DashboardFile {
  std::string path;  // absolute
  std::string name;  // file name, e.g. "economics.json"
  nlohmann::json json;
};

// Every dashboards/*.json of the source tree, parsed; a file that is not JSON fails the test.
std::vector<DashboardFile> LoadDashboards();
// The dashboard with this file name; fails the test when there is none.
DashboardFile LoadDashboard(const std::string& name);

// Every panel, including those nested in collapsed rows.
std::vector<nlohmann::json> Panels(const nlohmann::json& dashboard);

// One query of a panel: PromQL (`expr`) or SQL (`rawQueryText`).
struct PanelQuery {
  int panel_id = 0;
  std::string panel_title;
  std::string ref_id;
  std::string datasource_uid;  // the target's, else the panel's
  std::string text;
  std::string where() const;  // "panel 7 'Queue depth' query A", for messages
};
std::vector<PanelQuery> Queries(const nlohmann::json& dashboard);

// The value a dashboard variable has when a query runs.
struct VariableValue {
  std::vector<std::string> values;
  bool multi = false;                    // multi-value or include-All: Grafana formats it as a list
  std::optional<std::string> all_value;  // set when "All" is chosen and the variable has one
};
using Variables = std::map<std::string, VariableValue>;

// Built-in variables, always single-valued: __from, __to (Unix ms), __rate_interval, ...
inline VariableValue Single(std::string value) { return {{std::move(value)}, false, {}}; }

enum class QueryLanguage { kSql, kPromQl };

// Grafana's interpolation of $name, ${name} and ${name:format} (formats: sqlstring, regex, raw,
// csv). A list-valued variable without a format becomes what the datasource makes of it: a
// PromQL regex alternation "(a|b)" (or the All value), and for SQL an error, since the SQLite
// plugin would receive Grafana's glob "{a,b}". An unknown variable or format is an error.
Result<std::string> Interpolate(std::string_view text, const Variables& variables,
                                QueryLanguage language);

// Problems of a PromQL expression as written in a dashboard ($variables allowed in strings and
// range brackets): unbalanced brackets or quotes, a series not in the metric catalog, a label
// the metric does not have, an unknown function, histogram_quantile without `le`. Empty: fine.
std::vector<std::string> LintPromQl(std::string_view expr);

// label_values(SELECTOR, LABEL) of a Prometheus variable, split; nullopt for other forms.
struct LabelValuesQuery {
  std::string selector;
  std::string label;
};
std::optional<LabelValuesQuery> ParseLabelValues(std::string_view query);

// The text of a variable's query (string, or {"query": ...}).
std::string VariableQueryText(const nlohmann::json& variable);

// The datasource uid a JSON `datasource` field names ("" when none).
std::string DatasourceUid(const nlohmann::json& datasource);

// The executable `name` found on $PATH, or "" (promtool, prometheus).
std::string FindProgram(const std::string& name);

}  // namespace breakeven::testing

#include "tests/dashboards/dashboard_files.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <regex>
#include <set>

#include "tests/dashboards/metric_catalog.h"
#include "tests/support/process.h"

namespace breakeven::testing {

namespace fs = std::filesystem;
using nlohmann::json;

std::vector<DashboardFile> LoadDashboards() {
  std::vector<DashboardFile> out;
  const fs::path dir = fs::path(BREAKEVEN_SOURCE_DIR) / "dashboards";
  std::vector<fs::path> files;
  for (const fs::directory_entry& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().extension() == ".json") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  for (const fs::path& p : files) {
    DashboardFile f{p.string(), p.filename().string(), json()};
    try {
      f.json = json::parse(ReadFile(f.path));
    } catch (const json::exception& e) {
      ADD_FAILURE() << f.path << " is not valid JSON: " << e.what();
      continue;
    }
    out.push_back(std::move(f));
  }
  return out;
}

DashboardFile LoadDashboard(const std::string& name) {
  for (DashboardFile& f : LoadDashboards()) {
    if (f.name == name) return f;
  }
  ADD_FAILURE() << "no dashboards/" << name;
  return {};
}

std::vector<json> Panels(const json& dashboard) {
  std::vector<json> out;
  if (!dashboard.contains("panels")) return out;
  for (const json& p : dashboard["panels"]) {
    out.push_back(p);
    if (p.contains("panels")) {
      for (const json& nested : p["panels"]) out.push_back(nested);
    }
  }
  return out;
}

std::string PanelQuery::where() const {
  return fmt::format("panel {} '{}' query {}", panel_id, panel_title, ref_id);
}

std::string DatasourceUid(const json& datasource) {
  if (datasource.is_string()) return datasource.get<std::string>();
  if (datasource.is_object() && datasource.contains("uid")) return datasource["uid"];
  return "";
}

std::string FindProgram(const std::string& name) {
  const char* path = std::getenv("PATH");
  const std::string dirs = path ? path : "/usr/bin:/bin";
  for (size_t start = 0; start <= dirs.size();) {
    const size_t end = std::min(dirs.find(':', start), dirs.size());
    const fs::path candidate = fs::path(dirs.substr(start, end - start)) / name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
    start = end + 1;
  }
  return "";
}

std::vector<PanelQuery> Queries(const json& dashboard) {
  std::vector<PanelQuery> out;
  for (const json& p : Panels(dashboard)) {
    if (!p.contains("targets")) continue;
    for (const json& t : p["targets"]) {
      PanelQuery q;
      q.panel_id = p.value("id", 0);
      q.panel_title = p.value("title", "");
      q.ref_id = t.value("refId", "");
      q.datasource_uid = DatasourceUid(t.value("datasource", json()));
      if (q.datasource_uid.empty()) q.datasource_uid = DatasourceUid(p.value("datasource", json()));
      if (t.contains("expr")) {
        q.text = t["expr"];
      } else if (t.contains("rawQueryText")) {
        q.text = t["rawQueryText"];
      }
      out.push_back(std::move(q));
    }
  }
  return out;
}

std::string VariableQueryText(const json& variable) {
  if (!variable.contains("query")) return "";
  const json& q = variable["query"];
  if (q.is_string()) return q;
  if (q.is_object() && q.contains("query") && q["query"].is_string()) return q["query"];
  return "";
}

namespace {

bool IsWordChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// Grafana's prometheusSpecialRegexEscape: a regex metacharacter gets a backslash, itself escaped
// for the PromQL string the value lands in.
std::string PromRegexEscape(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (std::string_view("\\^$*+?.()|[]{}").find(c) != std::string_view::npos) out += "\\\\";
    out += c;
  }
  return out;
}

std::string Join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out += sep;
    out += parts[i];
  }
  return out;
}

// Values as Grafana puts them into a PromQL regex matcher: one escaped value, or "(a|b)".
std::string RegexAlternation(const std::vector<std::string>& values) {
  std::vector<std::string> escaped;
  for (const std::string& s : values) escaped.push_back(PromRegexEscape(s));
  if (escaped.size() == 1) return escaped[0];
  std::string out = "(";
  out += Join(escaped, "|");
  out += ")";
  return out;
}

Result<std::string> Format(const std::string& name, const VariableValue& v,
                           const std::string& format, QueryLanguage language) {
  if (format == "sqlstring") {
    std::vector<std::string> quoted;
    for (const std::string& s : v.values) {
      std::string q = "'";
      for (char c : s) q += c == '\'' ? std::string("''") : std::string(1, c);
      quoted.push_back(q + "'");
    }
    if (quoted.empty()) return InvalidArgument("${}:sqlstring has no value", name);
    return Join(quoted, ",");
  }
  if (format == "regex") return RegexAlternation(v.values);
  if (format == "raw" || format == "csv") return Join(v.values, ",");
  if (!format.empty()) return InvalidArgument("${}:{}: format not handled here", name, format);
  if (v.values.empty() && !v.all_value) return InvalidArgument("${} has no value", name);
  if (!v.multi) return v.values[0];
  if (language == QueryLanguage::kSql) {
    return InvalidArgument(
        "${} holds a list: in SQL write ${{{}:sqlstring}} (Grafana would send a glob {{a,b}})",
        name, name);
  }
  if (v.all_value) return *v.all_value;
  return RegexAlternation(v.values);
}

}  // namespace

Result<std::string> Interpolate(std::string_view text, const Variables& variables,
                                QueryLanguage language) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] != '$') {
      out += text[i++];
      continue;
    }
    std::string name, format;
    size_t next;
    if (i + 1 < text.size() && text[i + 1] == '{') {
      size_t close = text.find('}', i);
      if (close == std::string_view::npos) return InvalidArgument("unclosed ${{ at {}", i);
      std::string inner(text.substr(i + 2, close - i - 2));
      size_t colon = inner.find(':');
      name = inner.substr(0, colon);
      if (colon != std::string::npos) format = inner.substr(colon + 1);
      next = close + 1;
    } else {
      size_t j = i + 1;
      while (j < text.size() && IsWordChar(text[j])) ++j;
      if (j == i + 1) {  // "$/Mtok": not a variable
        out += text[i++];
        continue;
      }
      name = std::string(text.substr(i + 1, j - i - 1));
      next = j;
    }
    auto it = variables.find(name);
    if (it == variables.end()) return InvalidArgument("unknown variable ${} at offset {}", name, i);
    BE_ASSIGN_OR_RETURN(std::string value, Format(name, it->second, format, language));
    out += value;
    i = next;
  }
  return out;
}

// ---- PromQL lint ---------------------------------------------------------------------------

namespace {

struct Token {
  enum Kind { kIdent, kNumber, kString, kVariable, kPunct } kind;
  std::string text;
};

const std::set<std::string>& PromFunctions() {
  static const std::set<std::string> names = {
      // aggregation operators
      "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk",
      "topk", "quantile",
      // functions
      "abs", "absent", "absent_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min",
      "day_of_month", "day_of_week", "days_in_month", "delta", "deriv", "exp", "floor",
      "histogram_quantile", "holt_winters", "hour", "idelta", "increase", "irate", "label_join",
      "label_replace", "ln", "log2", "log10", "minute", "month", "predict_linear", "rate", "resets",
      "round", "scalar", "sgn", "sort", "sort_desc", "sqrt", "time", "timestamp", "vector", "year",
      "avg_over_time", "min_over_time", "max_over_time", "sum_over_time", "count_over_time",
      "quantile_over_time", "stddev_over_time", "stdvar_over_time", "last_over_time",
      "present_over_time"};
  return names;
}

bool Tokenize(std::string_view s, std::vector<Token>* out, std::vector<std::string>* problems) {
  size_t i = 0;
  auto is_ident_start = [](char c) {
    return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':';
  };
  auto is_ident = [&](char c) {
    return is_ident_start(c) || std::isdigit(static_cast<unsigned char>(c));
  };
  while (i < s.size()) {
    const char c = s[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
    } else if (c == '"' || c == '\'' || c == '`') {
      size_t j = i + 1;
      while (j < s.size() && s[j] != c) j += (s[j] == '\\' && c != '`') ? 2 : 1;
      if (j >= s.size()) {
        problems->push_back(fmt::format("unterminated string from offset {}", i));
        return false;
      }
      out->push_back({Token::kString, std::string(s.substr(i + 1, j - i - 1))});
      i = j + 1;
    } else if (c == '$') {
      size_t j = i + 1;
      if (j < s.size() && s[j] == '{') {
        j = s.find('}', j);
        if (j == std::string_view::npos) {
          problems->push_back(fmt::format("unclosed ${{ at offset {}", i));
          return false;
        }
        ++j;
      } else {
        while (j < s.size() && IsWordChar(s[j])) ++j;
      }
      out->push_back({Token::kVariable, std::string(s.substr(i, j - i))});
      i = j;
    } else if (std::isdigit(static_cast<unsigned char>(c)) ||
               (c == '.' && i + 1 < s.size() &&
                std::isdigit(static_cast<unsigned char>(s[i + 1])))) {
      size_t j = i;
      while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '.')) ++j;
      out->push_back({Token::kNumber, std::string(s.substr(i, j - i))});
      i = j;
    } else if (is_ident_start(c)) {
      size_t j = i;
      while (j < s.size() && is_ident(s[j])) ++j;
      out->push_back({Token::kIdent, std::string(s.substr(i, j - i))});
      i = j;
    } else {
      out->push_back({Token::kPunct, std::string(1, c)});
      ++i;
    }
  }
  return true;
}

bool Is(const std::vector<Token>& t, size_t i, std::string_view punct) {
  return i < t.size() && t[i].kind == Token::kPunct && t[i].text == punct;
}

}  // namespace

std::vector<std::string> LintPromQl(std::string_view expr) {
  std::vector<std::string> problems;
  std::vector<Token> t;
  if (!Tokenize(expr, &t, &problems)) return problems;

  // Brackets balance and nest.
  std::string stack;
  for (const Token& k : t) {
    if (k.kind != Token::kPunct) continue;
    const char c = k.text[0];
    if (c == '(' || c == '{' || c == '[') {
      stack += c;
    } else if (c == ')' || c == '}' || c == ']') {
      const char open = c == ')' ? '(' : c == '}' ? '{' : '[';
      if (stack.empty() || stack.back() != open) {
        problems.push_back(fmt::format("unbalanced '{}'", c));
        return problems;
      }
      stack.pop_back();
    }
  }
  if (!stack.empty()) {
    problems.push_back(fmt::format("'{}' is never closed", stack.back()));
    return problems;
  }

  static const std::set<std::string> kGrouping = {"by",       "without",    "on",
                                                  "ignoring", "group_left", "group_right"};
  static const std::set<std::string> kKeywords = {"and", "or", "unless", "bool", "offset"};
  std::set<std::string> labels_available = TargetLabels();
  std::vector<std::string> grouping_labels;
  bool has_bucket = false, has_quantile = false;
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i].kind == Token::kPunct && t[i].text == "[") {
      // A range or subquery: durations and variables only.
      for (++i; i < t.size() && !Is(t, i, "]"); ++i) {
        if (t[i].kind != Token::kNumber && t[i].kind != Token::kVariable && !Is(t, i, ":")) {
          problems.push_back(fmt::format("'{}' inside a range [...]", t[i].text));
        }
      }
      continue;
    }
    if (t[i].kind == Token::kPunct && t[i].text == "{") {
      problems.push_back("a selector {...} without a metric name");
      while (i < t.size() && !Is(t, i, "}")) ++i;
      continue;
    }
    if (t[i].kind != Token::kIdent) continue;
    const std::string& word = t[i].text;
    if (kGrouping.count(word)) {
      if (!Is(t, i + 1, "(")) continue;  // group_left without labels
      for (i += 2; i < t.size() && !Is(t, i, ")"); ++i) {
        if (t[i].kind == Token::kIdent) grouping_labels.push_back(t[i].text);
      }
      continue;
    }
    if (kKeywords.count(word)) continue;
    // A function call, or an aggregation with its grouping first: `sum by (le) (...)`.
    if (Is(t, i + 1, "(") ||
        (PromFunctions().count(word) && i + 1 < t.size() && kGrouping.count(t[i + 1].text))) {
      if (!PromFunctions().count(word)) problems.push_back("unknown function " + word);
      has_quantile |= word == "histogram_quantile";
      continue;
    }
    const CatalogMetric* metric = FindCatalogMetric(word);
    if (metric == nullptr) {
      problems.push_back("'" + word + "' is not in the metric catalog");
      continue;
    }
    const bool bucket = word.ends_with("_bucket") && metric->type == MetricType::kHistogram;
    has_bucket |= bucket;
    labels_available.insert(metric->labels.begin(), metric->labels.end());
    if (bucket) labels_available.insert("le");
    if (!Is(t, i + 1, "{")) continue;
    // Matchers: label op "value", ...
    for (i += 2; i < t.size() && !Is(t, i, "}"); ++i) {
      if (t[i].kind != Token::kIdent) continue;
      const std::string& label = t[i].text;
      if (!metric->labels.count(label) && !TargetLabels().count(label) && label != "__name__" &&
          !(bucket && label == "le")) {
        problems.push_back(fmt::format("{} has no label '{}'", metric->name, label));
      }
      // Skip the operator and the value.
      while (i + 1 < t.size() && t[i + 1].kind == Token::kPunct && !Is(t, i + 1, "}") &&
             !Is(t, i + 1, ","))
        ++i;
      if (i + 1 < t.size() && t[i + 1].kind == Token::kString) {
        ++i;
      } else {
        problems.push_back(fmt::format("label '{}' has no quoted value", label));
      }
    }
  }
  for (const std::string& l : grouping_labels) {
    if (!labels_available.count(l)) {
      problems.push_back(fmt::format("grouping label '{}' is on none of the series", l));
    }
  }
  if (has_quantile) {
    if (!has_bucket) problems.push_back("histogram_quantile over no _bucket series");
    if (std::find(grouping_labels.begin(), grouping_labels.end(), "le") == grouping_labels.end()) {
      problems.push_back("histogram_quantile without `le` in its grouping");
    }
  }
  return problems;
}

std::optional<LabelValuesQuery> ParseLabelValues(std::string_view query) {
  static const std::regex re(R"(^\s*label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$)");
  std::smatch m;
  std::string q(query);
  if (!std::regex_match(q, m, re)) return std::nullopt;
  return LabelValuesQuery{m[1].str(), m[2].str()};
}

}  // namespace breakeven::testing

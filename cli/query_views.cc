#include "cli/query_views.h"

#include <fmt/format.h>

#include <cmath>
#include <map>

#include "cli/number_format.h"
#include "cli/table.h"

namespace breakeven::cli {

namespace {

const v1::Cell& CellAt(const v1::Row& row, int column) {
  static const v1::Cell kNull;
  return column < row.cells_size() ? row.cells(column) : kNull;
}

// A column is numeric when it holds at least one number and no text.
bool IsNumericColumn(const v1::Table& t, int column) {
  bool any = false;
  for (const auto& row : t.rows()) {
    switch (CellAt(row, column).value_case()) {
      case v1::Cell::kText:
        return false;
      case v1::Cell::kNumber:
      case v1::Cell::kInteger:
        any = true;
        break;
      case v1::Cell::VALUE_NOT_SET:
        break;
    }
  }
  return any;
}

std::string Join(const google::protobuf::RepeatedPtrField<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

const std::vector<std::string>& DefaultResultColumns() {
  static const std::vector<std::string> kColumns = {"run_id",
                                                    "model",
                                                    "workload",
                                                    "tp",
                                                    "device_type",
                                                    "kind",
                                                    "target",
                                                    "requests_per_s",
                                                    "output_tokens_per_s",
                                                    "ttft_p95_ms",
                                                    "tpot_p95_ms",
                                                    "itl_p95_ms",
                                                    "e2e_p95_ms",
                                                    "goodput_requests_per_s",
                                                    "mbu",
                                                    "usd_per_mtok"};
  return kColumns;
}

const std::vector<std::string>& DefaultCompareColumns() {
  static const std::vector<std::string> kColumns = {"workload",
                                                    "device_type",
                                                    "tp",
                                                    "total_tokens_per_s",
                                                    "usd_per_hour",
                                                    "self_usd_per_mtok_input",
                                                    "self_usd_per_mtok_output",
                                                    "self_usd_per_mtok",
                                                    "api_usd_per_mtok",
                                                    "self_over_api",
                                                    "breakeven_utilization",
                                                    "breakeven_mtok_per_month",
                                                    "capacity_mtok_per_month"};
  return kColumns;
}

const std::vector<std::string>& DefaultPlanColumns() {
  static const std::vector<std::string> kColumns = {
      "rank",          "feasible", "device_type",  "tp",           "max_rate_per_replica",
      "replicas",      "devices",  "usd_per_hour", "usd_per_mtok", "api_usd_per_hour",
      "api_over_self", "headroom", "note"};
  return kColumns;
}

const std::vector<std::string>& DefaultPointColumns() {
  static const std::vector<std::string> kColumns = [] {
    std::vector<std::string> columns;
    for (const auto& c : DefaultResultColumns()) {
      if (c != "run_id" && c != "model" && c != "workload" && c != "tp" && c != "device_type") {
        columns.push_back(c);
      }
    }
    return columns;
  }();
  return kColumns;
}

std::vector<std::string> ParseColumnList(std::string_view list) {
  std::vector<std::string> names;
  size_t start = 0;
  while (start <= list.size()) {
    size_t end = list.find(',', start);
    if (end == std::string_view::npos) end = list.size();
    std::string_view name = list.substr(start, end - start);
    while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
    while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
    if (!name.empty()) names.emplace_back(name);
    start = end + 1;
  }
  return names;
}

std::vector<int> AllColumns(const v1::Table& t) {
  std::vector<int> all(t.columns_size());
  for (int i = 0; i < t.columns_size(); ++i) all[i] = i;
  return all;
}

Result<std::vector<int>> SelectColumns(const v1::Table& t,
                                       const std::vector<std::string>& requested,
                                       const std::vector<std::string>& defaults) {
  std::map<std::string, int, std::less<>> index;
  for (int i = 0; i < t.columns_size(); ++i) index.emplace(t.columns(i), i);
  std::vector<int> chosen;
  if (!requested.empty()) {
    for (const auto& name : requested) {
      auto it = index.find(name);
      if (it == index.end()) {
        return InvalidArgument("--columns: no column '{}'; the table has: {}", name,
                               Join(t.columns()));
      }
      chosen.push_back(it->second);
    }
    return chosen;
  }
  for (int i = 0; i < t.columns_size(); ++i) {
    for (const auto& name : defaults) {
      if (t.columns(i) == name) chosen.push_back(i);
    }
  }
  if (chosen.empty()) return AllColumns(t);
  return chosen;
}

std::string HeaderLabel(std::string_view column) {
  if (column == "device_type") return "DEVICE";
  if (column == "run_id") return "RUN";
  static const std::map<std::string_view, std::string_view> kShort = {
      {"requests", "REQ"}, {"tokens", "TOK"}, {"output", "OUT"}, {"input", "IN"}, {"usd", "$"}};
  std::string label;
  bool after_per = true;  // no separator before the first word, nor after "/"
  size_t start = 0;
  while (start <= column.size()) {
    size_t end = column.find('_', start);
    if (end == std::string_view::npos) end = column.size();
    std::string_view word = column.substr(start, end - start);
    start = end + 1;
    if (word == "per") {
      label += '/';
      after_per = true;
      continue;
    }
    if (!after_per) label += '_';
    after_per = false;
    auto it = kShort.find(word);
    std::string_view shown = it == kShort.end() ? word : it->second;
    for (char c : shown) label += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return label;
}

std::string QueryTableText(const v1::Table& t, const std::vector<int>& columns) {
  std::vector<std::string> header;
  for (int c : columns) header.push_back(HeaderLabel(t.columns(c)));
  Table out(std::move(header));
  for (size_t i = 0; i < columns.size(); ++i) {
    if (IsNumericColumn(t, columns[i])) out.AlignRight(i);
  }
  for (const auto& row : t.rows()) {
    std::vector<std::string> cells;
    for (int c : columns) cells.push_back(FormatCell(CellAt(row, c), t.columns(c)));
    out.AddRow(std::move(cells));
  }
  return out.Render();
}

nlohmann::ordered_json QueryTableJson(const v1::Table& t, const std::vector<int>& columns) {
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  for (const auto& row : t.rows()) {
    nlohmann::ordered_json obj = nlohmann::ordered_json::object();
    for (int c : columns) {
      const v1::Cell& cell = CellAt(row, c);
      nlohmann::ordered_json& value = obj[t.columns(c)];
      switch (cell.value_case()) {
        case v1::Cell::kNumber:
          if (std::isfinite(cell.number())) value = cell.number();
          break;
        case v1::Cell::kInteger:
          value = cell.integer();
          break;
        case v1::Cell::kText:
          value = cell.text();
          break;
        case v1::Cell::VALUE_NOT_SET:
          break;
      }
    }
    rows.push_back(std::move(obj));
  }
  return rows;
}

std::string CsvField(std::string_view text) {
  if (text.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(text);
  std::string quoted = "\"";
  for (char c : text) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  quoted += '"';
  return quoted;
}

std::string QueryTableCsv(const v1::Table& t, const std::vector<int>& columns) {
  std::string out;
  auto end_line = [&] { out += "\r\n"; };
  for (size_t i = 0; i < columns.size(); ++i) {
    if (i > 0) out += ',';
    out += CsvField(t.columns(columns[i]));
  }
  end_line();
  for (const auto& row : t.rows()) {
    for (size_t i = 0; i < columns.size(); ++i) {
      if (i > 0) out += ',';
      const v1::Cell& cell = CellAt(row, columns[i]);
      switch (cell.value_case()) {
        case v1::Cell::kNumber:
          out += fmt::format("{}", cell.number());  // shortest text that reads back exactly
          break;
        case v1::Cell::kInteger:
          out += std::to_string(cell.integer());
          break;
        case v1::Cell::kText:
          out += CsvField(cell.text());
          break;
        case v1::Cell::VALUE_NOT_SET:
          break;
      }
    }
    end_line();
  }
  return out;
}

std::string NotesText(const v1::Table& t) {
  std::string out;
  for (const auto& note : t.notes()) out += fmt::format("note: {}\n", note);
  return out;
}

}  // namespace breakeven::cli

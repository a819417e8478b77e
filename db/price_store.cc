#include "db/price_store.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>
#include <utility>

#include "db/embedded.h"

namespace breakeven::db {

namespace {

// ---- text helpers ----

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool IsAlnum(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string ToLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = Lower(c);
  return out;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

bool ContainsIgnoreCase(std::string_view haystack, std::string_view needle) {
  return ToLower(haystack).find(ToLower(needle)) != std::string::npos;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

std::string Join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += sep;
    out += parts[i];
  }
  return out;
}

// Appends `s` unless it is already there (keeps first-seen order).
void AddUnique(std::vector<std::string>& list, const std::string& s) {
  if (std::find(list.begin(), list.end(), s) == list.end()) list.push_back(s);
}

// A number that parses completely ("3.95", "1e3"), is finite and not negative.
std::optional<double> ParseNonNegative(std::string_view text) {
  double v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  if (!std::isfinite(v) || v < 0) return std::nullopt;
  return v;
}

// ---- CSV ----

struct CsvRecord {
  std::vector<std::string> fields;
  int line = 0;  // where the record starts (1-based)
};

// RFC 4180. Records end at CRLF or LF (a lone CR at the very end counts too); the last record
// needs no line break. A line with no characters at all holds no record (a record with one empty
// field is written ""). Quoted fields may hold commas, line breaks (kept as written) and "" for a
// quote. A quote inside an unquoted field is kept as a character; text between a closing quote
// and the next comma or line break is an error. A UTF-8 byte order mark at the start is skipped.
Result<std::vector<CsvRecord>> ParseCsvRecords(std::string_view text, std::string_view source) {
  std::vector<CsvRecord> records;
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
  const size_t n = text.size();
  size_t i = 0;
  int line = 1;
  auto line_end_at = [&](size_t k) {
    return text[k] == '\n' || (text[k] == '\r' && (k + 1 == n || text[k + 1] == '\n'));
  };
  auto skip_line_end = [&] {
    if (i < n && text[i] == '\r') ++i;
    if (i < n && text[i] == '\n') ++i;
    ++line;
  };
  while (i < n) {
    if (line_end_at(i)) {  // an empty line
      skip_line_end();
      continue;
    }
    CsvRecord record;
    record.line = line;
    for (;;) {
      std::string field;
      if (i < n && text[i] == '"') {
        const int opened_at = line;
        ++i;
        for (;;) {
          if (i >= n) {
            return InvalidArgument("{}:{}: quoted field is not closed (a \" is missing)", source,
                                   opened_at);
          }
          char c = text[i];
          if (c == '"') {
            if (i + 1 < n && text[i + 1] == '"') {
              field += '"';
              i += 2;
              continue;
            }
            ++i;
            break;
          }
          if (c == '\n') ++line;
          field += c;
          ++i;
        }
        if (i < n && text[i] != ',' && !line_end_at(i)) {
          return InvalidArgument(
              "{}:{}: unexpected text after a closing quote (a quote inside a quoted field is "
              "written \"\")",
              source, line);
        }
      } else {
        while (i < n && text[i] != ',' && !line_end_at(i)) field += text[i++];
      }
      record.fields.push_back(std::move(field));
      if (i < n && text[i] == ',') {
        ++i;
        continue;
      }
      break;
    }
    if (i < n) skip_line_end();
    records.push_back(std::move(record));
  }
  return records;
}

// ---- the three tables ----

enum class ColumnKind { kText, kNumber };

struct ColumnSpec {
  const char* name;
  ColumnKind kind;
  bool in_header;       // the header must name it
  bool value_required;  // every row must give a value (else the value may be empty: NULL)
};

struct TableSpec {
  PriceTable table;
  const char* description;  // "gpu prices", as in messages
  const char* sql_name;
  const char* seed_file;
  std::vector<ColumnSpec> columns;  // in the order of the upsert's parameters ?1, ?2, ...
  const char* upsert;
};

const std::vector<TableSpec>& Tables() {
  static const std::vector<TableSpec> tables = {
      {PriceTable::kGpuPrices,
       "gpu prices",
       "gpu_prices",
       "gpu_prices.csv",
       {{"provider", ColumnKind::kText, true, true},
        {"gpu", ColumnKind::kText, true, true},
        {"usd_per_gpu_hour", ColumnKind::kNumber, true, true},
        {"source", ColumnKind::kText, true, true},
        {"as_of", ColumnKind::kText, true, true}},
       R"sql(
      INSERT INTO gpu_prices (provider, gpu, usd_per_gpu_hour, source, as_of)
      VALUES (?1, ?2, ?3, ?4, ?5)
      ON CONFLICT (provider, gpu) DO UPDATE SET
        usd_per_gpu_hour = excluded.usd_per_gpu_hour, source = excluded.source,
        as_of = excluded.as_of)sql"},
      {PriceTable::kApiPrices,
       "api prices",
       "api_prices",
       "api_prices.csv",
       {{"provider", ColumnKind::kText, true, true},
        {"model", ColumnKind::kText, true, true},
        {"input_usd_per_mtok", ColumnKind::kNumber, true, true},
        {"output_usd_per_mtok", ColumnKind::kNumber, true, true},
        {"cached_input_usd_per_mtok", ColumnKind::kNumber, false, false},
        {"source", ColumnKind::kText, true, true},
        {"as_of", ColumnKind::kText, true, true}},
       R"sql(
      INSERT INTO api_prices (provider, model, input_usd_per_mtok, output_usd_per_mtok,
                              cached_input_usd_per_mtok, source, as_of)
      VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
      ON CONFLICT (provider, model) DO UPDATE SET
        input_usd_per_mtok = excluded.input_usd_per_mtok,
        output_usd_per_mtok = excluded.output_usd_per_mtok,
        cached_input_usd_per_mtok = excluded.cached_input_usd_per_mtok,
        source = excluded.source, as_of = excluded.as_of)sql"},
      {PriceTable::kGpuSpecs,
       "gpu specs",
       "gpu_specs",
       "gpu_specs.csv",
       {{"gpu", ColumnKind::kText, true, true},
        {"mem_gib", ColumnKind::kNumber, true, false},
        {"hbm_tb_s", ColumnKind::kNumber, true, false},
        {"bf16_dense_tflops", ColumnKind::kNumber, true, false},
        {"fp8_dense_tflops", ColumnKind::kNumber, true, false},
        {"nvlink_gb_s", ColumnKind::kNumber, true, false},
        {"tdp_w", ColumnKind::kNumber, true, false},
        {"source", ColumnKind::kText, true, true}},
       R"sql(
      INSERT INTO gpu_specs (gpu, mem_gib, hbm_tb_s, bf16_dense_tflops, fp8_dense_tflops,
                             nvlink_gb_s, tdp_w, source)
      VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
      ON CONFLICT (gpu) DO UPDATE SET
        mem_gib = excluded.mem_gib, hbm_tb_s = excluded.hbm_tb_s,
        bf16_dense_tflops = excluded.bf16_dense_tflops,
        fp8_dense_tflops = excluded.fp8_dense_tflops, nvlink_gb_s = excluded.nvlink_gb_s,
        tdp_w = excluded.tdp_w, source = excluded.source)sql"},
  };
  return tables;
}

// "provider, gpu, usd_per_gpu_hour, source, as_of"; optional columns in brackets.
std::string ExpectedColumns(const TableSpec& t) {
  std::vector<std::string> names;
  for (const ColumnSpec& c : t.columns) {
    names.push_back(c.in_header ? std::string(c.name) : fmt::format("[{}]", c.name));
  }
  return Join(names, ", ");
}

std::string AllExpectedHeaders() {
  std::vector<std::string> parts;
  for (const TableSpec& t : Tables()) {
    parts.push_back(fmt::format("{}: {}", t.description, ExpectedColumns(t)));
  }
  return Join(parts, "; ");
}

// One validated cell: text or a number, either possibly absent (NULL).
struct Cell {
  std::optional<std::string> text;
  std::optional<double> number;
};

struct ParsedFile {
  const TableSpec* table = nullptr;
  std::vector<std::vector<Cell>> rows;  // cells in table->columns order
  std::vector<int> lines;               // the line each row starts on
};

// Identifies the table by the header and validates every row; writes nothing.
Result<ParsedFile> ParseAndValidate(std::string_view csv_text, std::string_view source) {
  BE_ASSIGN_OR_RETURN(std::vector<CsvRecord> records, ParseCsvRecords(csv_text, source));
  if (records.empty()) {
    return InvalidArgument("{}: empty file; expected a header row ({})", source,
                           AllExpectedHeaders());
  }
  const CsvRecord& header_record = records.front();
  const int header_line = header_record.line;
  std::vector<std::string> header;
  for (size_t i = 0; i < header_record.fields.size(); ++i) {
    std::string name = ToLower(Trim(header_record.fields[i]));
    if (name.empty()) {
      return InvalidArgument("{}:{}: header column {} has no name", source, header_line, i + 1);
    }
    if (std::find(header.begin(), header.end(), name) != header.end()) {
      return InvalidArgument("{}:{}: header names column '{}' twice", source, header_line, name);
    }
    header.push_back(std::move(name));
  }

  // The table whose columns the header shares most; a tie or no overlap cannot be resolved.
  const TableSpec* best = nullptr;
  int best_score = 0;
  bool tie = false;
  for (const TableSpec& t : Tables()) {
    int score = 0;
    for (const ColumnSpec& c : t.columns) {
      if (std::find(header.begin(), header.end(), c.name) != header.end()) ++score;
    }
    if (score > best_score) {
      best = &t;
      best_score = score;
      tie = false;
    } else if (score == best_score && score > 0) {
      tie = true;
    }
  }
  if (best == nullptr || tie) {
    return InvalidArgument("{}:{}: the header ({}) does not identify a price table; expected {}",
                           source, header_line, Join(header, ","), AllExpectedHeaders());
  }
  const TableSpec& table = *best;

  // Where each of the table's columns is in the file (-1: absent).
  std::vector<int> position(table.columns.size(), -1);
  for (size_t i = 0; i < header.size(); ++i) {
    auto it = std::find_if(table.columns.begin(), table.columns.end(),
                           [&](const ColumnSpec& c) { return header[i] == c.name; });
    if (it == table.columns.end()) {
      return InvalidArgument("{}:{}: unknown column '{}' for {}; expected columns: {}", source,
                             header_line, header[i], table.description, ExpectedColumns(table));
    }
    position[it - table.columns.begin()] = static_cast<int>(i);
  }
  for (size_t c = 0; c < table.columns.size(); ++c) {
    if (position[c] < 0 && table.columns[c].in_header) {
      return InvalidArgument("{}:{}: missing column '{}' for {}; expected columns: {}", source,
                             header_line, table.columns[c].name, table.description,
                             ExpectedColumns(table));
    }
  }

  ParsedFile parsed;
  parsed.table = &table;
  for (size_t r = 1; r < records.size(); ++r) {
    const CsvRecord& record = records[r];
    if (record.fields.size() != header.size()) {
      return InvalidArgument("{}:{}: {} fields, expected {} as in the header", source, record.line,
                             record.fields.size(), header.size());
    }
    std::vector<Cell> cells(table.columns.size());
    for (size_t c = 0; c < table.columns.size(); ++c) {
      const ColumnSpec& spec = table.columns[c];
      if (position[c] < 0) continue;  // an optional column the file does not have: NULL
      std::string_view value = Trim(record.fields[position[c]]);
      if (value.empty()) {
        if (spec.value_required) {
          return InvalidArgument("{}:{}: column '{}' is empty", source, record.line, spec.name);
        }
        continue;
      }
      if (spec.kind == ColumnKind::kText) {
        cells[c].text = std::string(value);
        continue;
      }
      cells[c].number = ParseNonNegative(value);
      if (!cells[c].number) {
        return InvalidArgument("{}:{}: column '{}': '{}' is not a non-negative number", source,
                               record.line, spec.name, value);
      }
    }
    parsed.rows.push_back(std::move(cells));
    parsed.lines.push_back(record.line);
  }
  return parsed;
}

// Writes validated rows in one transaction: all of them or none. A row whose key an earlier row
// (in the table or in this file) has is an update of that row.
Result<ImportResult> Write(Database& db, const ParsedFile& parsed, std::string_view source) {
  const TableSpec& table = *parsed.table;
  Transaction tx(db);
  BE_RETURN_IF_ERROR(tx.Begin().WithContext(source));
  BE_ASSIGN_OR_RETURN(Statement upsert, db.Prepare(table.upsert));
  for (size_t r = 0; r < parsed.rows.size(); ++r) {
    const std::vector<Cell>& cells = parsed.rows[r];
    for (size_t c = 0; c < cells.size(); ++c) {
      int index = static_cast<int>(c) + 1;
      if (table.columns[c].kind == ColumnKind::kText) {
        upsert.Bind(index, cells[c].text);
      } else {
        upsert.Bind(index, cells[c].number);
      }
    }
    BE_RETURN_IF_ERROR(upsert.Run().WithContext(fmt::format("{}:{}", source, parsed.lines[r])));
  }
  BE_RETURN_IF_ERROR(tx.Commit().WithContext(source));
  return ImportResult{table.table, static_cast<int64_t>(parsed.rows.size())};
}

Result<bool> TableIsEmpty(Database& db, const TableSpec& table) {
  // The table name is one of three constants, never input.
  BE_ASSIGN_OR_RETURN(Statement q,
                      db.Prepare(fmt::format("SELECT EXISTS (SELECT 1 FROM {})", table.sql_name)));
  BE_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return Internal("counting rows of {} returned nothing", table.sql_name);
  return q.Int64(0) == 0;
}

// ---- device matching ----

// Lower case; blanks, '-' and '_' runs become one space; a leading "nvidia " is dropped, so
// "NVIDIA H100 80GB HBM3" becomes "h100 80gb hbm3" and "H100-SXM" becomes "h100 sxm".
std::string NormalizeGpuName(std::string_view name) {
  std::string out;
  for (char c : Trim(name)) {
    if (IsSpace(c) || c == '-' || c == '_') {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else {
      out += Lower(c);
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  constexpr std::string_view kVendor = "nvidia ";
  if (out.size() > kVendor.size() && out.starts_with(kVendor)) out.erase(0, kVendor.size());
  return out;
}

// `shorter` starts `longer` and ends at a word boundary: "h100" starts "h100 sxm" but not
// "h1000", and "l4" does not start "l40s".
bool IsWordPrefix(std::string_view shorter, std::string_view longer) {
  if (shorter.empty() || !longer.starts_with(shorter)) return false;
  return longer.size() == shorter.size() || !IsAlnum(longer[shorter.size()]) ||
         !IsAlnum(shorter.back());
}

bool GpuMatches(std::string_view device, std::string_view price_gpu) {
  std::string a = NormalizeGpuName(device);
  std::string b = NormalizeGpuName(price_gpu);
  return IsWordPrefix(a, b) || IsWordPrefix(b, a);
}

// The filter names the provider, or its first words: "RunPod" selects "RunPod Secure" and
// "RunPod Community" (the catalog's providers often carry a plan or region after the name).
bool ProviderMatches(std::string_view filter, std::string_view provider) {
  std::string f = ToLower(Trim(filter));
  std::string p = ToLower(Trim(provider));
  return IsWordPrefix(f, p);
}

}  // namespace

Result<std::vector<std::vector<std::string>>> ParseCsv(std::string_view text,
                                                       std::string_view source) {
  BE_ASSIGN_OR_RETURN(std::vector<CsvRecord> records, ParseCsvRecords(text, source));
  std::vector<std::vector<std::string>> out;
  out.reserve(records.size());
  for (CsvRecord& r : records) out.push_back(std::move(r.fields));
  return out;
}

Result<ImportResult> ImportPricesCsv(Database& db, std::string_view csv_text,
                                     std::string_view source) {
  BE_ASSIGN_OR_RETURN(ParsedFile parsed, ParseAndValidate(csv_text, source));
  return Write(db, parsed, source);
}

// Returns the number of rows written from the seed files (a seed file that repeats a key counts
// both rows; the later one wins).
Result<int64_t> SeedPrices(Database& db) {
  int64_t inserted = 0;
  for (const TableSpec& table : Tables()) {
    BE_ASSIGN_OR_RETURN(bool empty, TableIsEmpty(db, table));
    if (!empty) continue;
    const std::vector<EmbeddedFile>& files = SeedFiles();
    auto file = std::find_if(files.begin(), files.end(),
                             [&](const EmbeddedFile& f) { return f.name == table.seed_file; });
    if (file == files.end()) {
      return Internal("the built-in seed file {} is missing from this build", table.seed_file);
    }
    std::string source = fmt::format("built-in seed/{}", file->name);
    BE_ASSIGN_OR_RETURN(ParsedFile parsed, ParseAndValidate(file->text, source));
    if (parsed.table->table != table.table) {
      return Internal("{}: the header is that of {}, not {}", source, parsed.table->description,
                      table.description);
    }
    BE_ASSIGN_OR_RETURN(ImportResult result, Write(db, parsed, source));
    inserted += result.rows;
  }
  return inserted;
}

Result<std::vector<GpuPrice>> ListGpuPrices(Database& db) {
  BE_ASSIGN_OR_RETURN(Statement q, db.Prepare(R"sql(
      SELECT provider, gpu, usd_per_gpu_hour, source, as_of FROM gpu_prices
      ORDER BY provider COLLATE NOCASE, provider, gpu COLLATE NOCASE, gpu)sql"));
  std::vector<GpuPrice> out;
  for (;;) {
    BE_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out.push_back({q.Text(0), q.Text(1), q.Double(2), q.Text(3), q.Text(4)});
  }
  return out;
}

Result<std::vector<ApiPriceRow>> ListApiPrices(Database& db) {
  BE_ASSIGN_OR_RETURN(Statement q, db.Prepare(R"sql(
      SELECT provider, model, input_usd_per_mtok, output_usd_per_mtok, cached_input_usd_per_mtok,
             source, as_of
      FROM api_prices
      ORDER BY provider COLLATE NOCASE, provider, model COLLATE NOCASE, model)sql"));
  std::vector<ApiPriceRow> out;
  for (;;) {
    BE_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    ApiPriceRow p;
    p.provider = q.Text(0);
    p.model = q.Text(1);
    p.input_usd_per_mtok = q.Double(2);
    p.output_usd_per_mtok = q.Double(3);
    if (!q.IsNull(4)) p.cached_input_usd_per_mtok = q.Double(4);
    p.source = q.Text(5);
    p.as_of = q.Text(6);
    out.push_back(std::move(p));
  }
  return out;
}

Result<ApiPriceRow> FindApiPrice(Database& db, std::string_view provider_slash_model) {
  std::string_view query = Trim(provider_slash_model);
  size_t slash = query.find('/');
  std::string_view provider = slash == std::string_view::npos ? "" : Trim(query.substr(0, slash));
  std::string_view model = slash == std::string_view::npos ? "" : Trim(query.substr(slash + 1));
  if (provider.empty() || model.empty()) {
    return InvalidArgument("API model '{}': expected PROVIDER/MODEL, e.g. OpenAI/gpt-4o-mini",
                           query);
  }
  BE_ASSIGN_OR_RETURN(std::vector<ApiPriceRow> rows, ListApiPrices(db));

  // Keys are unique as written, so several rows can differ only in case: prefer the exact one.
  const ApiPriceRow* found = nullptr;
  for (const ApiPriceRow& r : rows) {
    if (!EqualsIgnoreCase(r.provider, provider) || !EqualsIgnoreCase(r.model, model)) continue;
    if (found == nullptr || (r.provider == provider && r.model == model)) found = &r;
  }
  if (found != nullptr) return *found;

  // Near matches, best first: same provider and a model containing the text (or contained in
  // it), then such a model from another provider, then the same provider's other models.
  std::vector<std::pair<int, const ApiPriceRow*>> near;
  for (const ApiPriceRow& r : rows) {
    bool same_provider = EqualsIgnoreCase(r.provider, provider);
    bool similar_model = ContainsIgnoreCase(r.model, model) || ContainsIgnoreCase(model, r.model);
    int score = (same_provider && similar_model) ? 3 : similar_model ? 2 : same_provider ? 1 : 0;
    if (score > 0) near.emplace_back(score, &r);
  }
  std::stable_sort(near.begin(), near.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<std::string> names;
  for (size_t i = 0; i < near.size() && i < 5; ++i) {
    names.push_back(fmt::format("{}/{}", near[i].second->provider, near[i].second->model));
  }
  if (!names.empty()) {
    return NotFound("no API price for '{}/{}'; near matches: {}", provider, model,
                    Join(names, ", "));
  }
  std::vector<std::string> providers;
  for (const ApiPriceRow& r : rows) AddUnique(providers, r.provider);
  if (providers.empty()) {
    return NotFound("no API price for '{}/{}': the catalog has no API prices", provider, model);
  }
  return NotFound("no API price for '{}/{}' and no near match; providers with API prices: {}",
                  provider, model, Join(providers, ", "));
}

// The device type "cpu" ignores `provider`: its price is the operator's own setting.
Result<GpuPrice> FindDevicePrice(Database& db, std::string_view device_type,
                                 std::string_view provider) {
  std::string_view device = Trim(device_type);
  if (device.empty()) return InvalidArgument("no price for an empty device type");
  if (EqualsIgnoreCase(device, "cpu")) {
    constexpr const char* kKey = "cpu_usd_per_hour";
    Result<std::string> value = GetSetting(db, kKey);
    if (!value.ok()) {
      if (value.status().code() != StatusCode::kNotFound) return value.status();
      return NotFound("no price for device type 'cpu': setting {} is not set", kKey);
    }
    std::optional<double> usd = ParseNonNegative(Trim(*value));
    if (!usd) {
      return InvalidArgument("setting {} is '{}', not a non-negative number of dollars per hour",
                             kKey, *value);
    }
    return GpuPrice{"self", "cpu", *usd, "settings", ""};
  }

  BE_ASSIGN_OR_RETURN(std::vector<GpuPrice> prices, ListGpuPrices(db));
  const bool filtered = !Trim(provider).empty();
  const GpuPrice* cheapest = nullptr;
  std::vector<std::string> pricing_this;  // providers that price the device (any filter)
  std::vector<std::string> all_providers;
  for (const GpuPrice& p : prices) {
    AddUnique(all_providers, p.provider);
    if (!GpuMatches(device, p.gpu)) continue;
    AddUnique(pricing_this, p.provider);
    if (filtered && !ProviderMatches(provider, p.provider)) continue;
    if (cheapest == nullptr || p.usd_per_gpu_hour < cheapest->usd_per_gpu_hour) cheapest = &p;
  }
  if (cheapest != nullptr) return *cheapest;

  std::string from =
      filtered ? fmt::format("provider '{}'", Trim(provider)) : std::string("any provider");
  if (all_providers.empty()) {
    return NotFound(
        "no GPU price for device type '{}' from {}: the catalog has no GPU prices (import some "
        "with `breakeven prices import FILE.csv`)",
        device, from);
  }
  if (!pricing_this.empty()) {
    return NotFound("no GPU price for device type '{}' from {}; providers that price it: {}",
                    device, from, Join(pricing_this, ", "));
  }
  return NotFound("no GPU price for device type '{}' from {}; providers with GPU prices: {}",
                  device, from, Join(all_providers, ", "));
}

Result<std::string> GetSetting(Database& db, std::string_view key) {
  BE_ASSIGN_OR_RETURN(Statement q, db.Prepare("SELECT value FROM settings WHERE key = ?1"));
  q.Bind(1, key);
  BE_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return NotFound("setting '{}' is not set", key);
  return q.Text(0);
}

Status SetSetting(Database& db, std::string_view key, std::string_view value) {
  if (Trim(key).empty()) return InvalidArgument("a setting needs a name");
  BE_ASSIGN_OR_RETURN(Statement q, db.Prepare(R"sql(
      INSERT INTO settings (key, value) VALUES (?1, ?2)
      ON CONFLICT (key) DO UPDATE SET value = excluded.value)sql"));
  q.Bind(1, key).Bind(2, value);
  return q.Run();
}

}  // namespace breakeven::db

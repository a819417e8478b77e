// The scheduler's query tables (v1::Table: results, prices, compare, plan, a run's points) as a
// person or a script wants them: a fixed-width text table, a JSON array of objects, or CSV.
// Pure functions, tested without a network.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "proto/breakeven.pb.h"

namespace breakeven::cli {

// The columns `breakeven results` shows by default: one load point per line on a 160-column
// terminal. Names the table lacks are skipped.
const std::vector<std::string>& DefaultResultColumns();
// The text table's columns for `compare` and `plan` without --columns or --wide.
const std::vector<std::string>& DefaultCompareColumns();
const std::vector<std::string>& DefaultPlanColumns();
// The same for one run's points (`breakeven run show`), less what the run's fields already say.
const std::vector<std::string>& DefaultPointColumns();

// "run, model ,tp" -> {"run", "model", "tp"}; empty names are dropped.
std::vector<std::string> ParseColumnList(std::string_view list);

// Which columns to show, as indices into t.columns():
//   `requested` not empty: those, in that order; a name the table lacks is an error that names
//     it and lists the table's columns;
//   else `defaults` not empty: those the table has, in the table's order (every column when it
//     has none of them);
//   else every column.
Result<std::vector<int>> SelectColumns(const v1::Table& t,
                                       const std::vector<std::string>& requested,
                                       const std::vector<std::string>& defaults);
std::vector<int> AllColumns(const v1::Table& t);

// The header a text table shows for a column: capitals, with the long words of metric names
// shortened so a row of them fits a terminal ("output_tokens_per_s" -> "OUT_TOK/S",
// "usd_per_mtok" -> "$/MTOK", "ttft_p95_ms" -> "TTFT_P95_MS"). JSON and CSV keep the names.
std::string HeaderLabel(std::string_view column);

// Text: numbers formatted by FormatNumber and right-aligned, null as "-". Notes are not included.
std::string QueryTableText(const v1::Table& t, const std::vector<int>& columns);
// JSON: one object per row, keyed by column name; numbers as numbers (NaN and infinities, which
// JSON lacks, as null), unset cells as null.
nlohmann::ordered_json QueryTableJson(const v1::Table& t, const std::vector<int>& columns);
// CSV (RFC 4180): a header row of column names, CRLF line ends, fields quoted when they hold a
// comma, a quote or a line break; numbers in full precision; unset cells empty.
std::string QueryTableCsv(const v1::Table& t, const std::vector<int>& columns);
std::string CsvField(std::string_view text);

// The table's notes, one "note: ..." line each; empty when there are none.
std::string NotesText(const v1::Table& t);

}  // namespace breakeven::cli

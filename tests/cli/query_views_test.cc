// Query tables (results, prices, compare, plan) as text, JSON and CSV, and which columns show.
#include "cli/query_views.h"

#include <gtest/gtest.h>

#include <limits>

namespace breakeven::cli {
namespace {

v1::Cell Num(double v) {
  v1::Cell c;
  c.set_number(v);
  return c;
}
v1::Cell Int(int64_t v) {
  v1::Cell c;
  c.set_integer(v);
  return c;
}
v1::Cell Text(std::string v) {
  v1::Cell c;
  c.set_text(std::move(v));
  return c;
}
v1::Cell Null() { return v1::Cell(); }

void AddRow(v1::Table& t, std::vector<v1::Cell> cells) {
  auto* row = t.add_rows();
  for (auto& c : cells) *row->add_cells() = std::move(c);
}

// A results table as the scheduler might send it: more columns than a terminal holds.
v1::Table Results() {
  v1::Table t;
  for (const char* c : {"run_id",
                        "point",
                        "model",
                        "workload",
                        "tp",
                        "device_type",
                        "kind",
                        "target",
                        "requests",
                        "requests_per_s",
                        "output_tokens_per_s",
                        "ttft_p50_ms",
                        "ttft_p95_ms",
                        "tpot_p95_ms",
                        "itl_p95_ms",
                        "e2e_p95_ms",
                        "goodput_requests_per_s",
                        "slo_attainment",
                        "mbu",
                        "mfu",
                        "usd_per_mtok"}) {
    t.add_columns(c);
  }
  AddRow(t, {Int(12),      Int(0),       Text("tiny-15m"),    Text("128/1024"),
             Int(2),       Text("cpu"),  Text("concurrency"), Num(16),
             Int(200),     Num(3.21987), Num(1234.5678),      Num(80.04),
             Num(123.456), Num(41.7),    Num(40.2),           Num(4567.8),
             Num(3.1),     Num(0.9655),  Num(0.4231),         Num(0.012),
             Num(0.41239)});
  AddRow(t, {Int(13),  Int(1),      Text("tiny-15m"), Text("shared-prefix"),
             Int(1),   Text("cpu"), Text("rate"),     Num(2.5),
             Int(100), Num(2.49),   Num(310.1),       Null(),
             Null(),   Null(),      Null(),           Null(),
             Null(),   Null(),      Null(),           Null(),
             Null()});
  t.add_notes("no price for device cpu at provider Modal; usd_per_mtok uses cpu_usd_per_hour");
  return t;
}

std::vector<std::string> Names(const v1::Table& t, const std::vector<int>& columns) {
  std::vector<std::string> names;
  for (int c : columns) names.push_back(t.columns(c));
  return names;
}

TEST(SelectColumns, DefaultIsTheCompactSubsetTheTableHasInItsOrder) {
  v1::Table t = Results();
  auto columns = SelectColumns(t, {}, DefaultResultColumns());
  ASSERT_TRUE(columns.ok()) << columns.status().message();
  EXPECT_EQ(Names(t, *columns),
            (std::vector<std::string>{"run_id", "model", "workload", "tp", "device_type", "kind",
                                      "target", "requests_per_s", "output_tokens_per_s",
                                      "ttft_p95_ms", "tpot_p95_ms", "itl_p95_ms", "e2e_p95_ms",
                                      "goodput_requests_per_s", "mbu", "usd_per_mtok"}));
}

TEST(SelectColumns, APointsTableLeavesOutWhatTheRunSays) {
  v1::Table t = Results();
  auto columns = SelectColumns(t, {}, DefaultPointColumns());
  ASSERT_TRUE(columns.ok());
  std::vector<std::string> names = Names(t, *columns);
  EXPECT_EQ(names.front(), "kind");
  EXPECT_EQ(names.size(), DefaultResultColumns().size() - 5);
}

TEST(SelectColumns, DefaultSkipsNamesTheTableLacks) {
  v1::Table t;
  for (const char* c : {"kind", "target", "extra", "ttft_p95_ms"}) t.add_columns(c);
  auto columns = SelectColumns(t, {}, DefaultResultColumns());
  ASSERT_TRUE(columns.ok());
  EXPECT_EQ(Names(t, *columns), (std::vector<std::string>{"kind", "target", "ttft_p95_ms"}));
}

TEST(SelectColumns, EveryColumnWhenNoDefaultMatchesOrNoneAreGiven) {
  v1::Table t;
  for (const char* c : {"gpu", "usd_per_gpu_hour"}) t.add_columns(c);
  EXPECT_EQ(SelectColumns(t, {}, DefaultResultColumns())->size(), 2u);
  EXPECT_EQ(SelectColumns(Results(), {}, {})->size(), 21u);
}

TEST(SelectColumns, ExplicitColumnsInTheGivenOrder) {
  v1::Table t = Results();
  auto columns = SelectColumns(t, {"usd_per_mtok", "run_id", "mfu"}, DefaultResultColumns());
  ASSERT_TRUE(columns.ok());
  EXPECT_EQ(Names(t, *columns), (std::vector<std::string>{"usd_per_mtok", "run_id", "mfu"}));
}

TEST(SelectColumns, AnUnknownColumnIsAnErrorNamingIt) {
  auto columns = SelectColumns(Results(), {"run_id", "ttft_p99"}, {});
  ASSERT_FALSE(columns.ok());
  EXPECT_EQ(columns.status().code(), StatusCode::kInvalidArgument);
  std::string message = columns.status().message();
  EXPECT_NE(message.find("'ttft_p99'"), std::string::npos) << message;
  EXPECT_NE(message.find("ttft_p95_ms"), std::string::npos) << "lists the columns: " << message;
}

TEST(ParseColumnList, SplitsOnCommasAndTrims) {
  EXPECT_EQ(ParseColumnList("run, model ,tp"), (std::vector<std::string>{"run", "model", "tp"}));
  EXPECT_EQ(ParseColumnList("run,,"), (std::vector<std::string>{"run"}));
  EXPECT_TRUE(ParseColumnList("").empty());
}

TEST(HeaderLabel, ShortensMetricNames) {
  EXPECT_EQ(HeaderLabel("run_id"), "RUN");
  EXPECT_EQ(HeaderLabel("device_type"), "DEVICE");
  EXPECT_EQ(HeaderLabel("requests_per_s"), "REQ/S");
  EXPECT_EQ(HeaderLabel("output_tokens_per_s"), "OUT_TOK/S");
  EXPECT_EQ(HeaderLabel("goodput_requests_per_s"), "GOODPUT_REQ/S");
  EXPECT_EQ(HeaderLabel("ttft_p95_ms"), "TTFT_P95_MS");
  EXPECT_EQ(HeaderLabel("usd_per_mtok"), "$/MTOK");
  EXPECT_EQ(HeaderLabel("api_usd_per_hour"), "API_$/HOUR");
}

TEST(QueryTableText, DefaultResultsFitA160ColumnTerminal) {
  v1::Table t = Results();
  std::string text = QueryTableText(t, *SelectColumns(t, {}, DefaultResultColumns()));
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    EXPECT_LE(end - start, 160u) << text.substr(start, end - start);
    start = end + 1;
  }
}

TEST(QueryTableText, FormatsNumbersRightAlignedAndNullsAsDashes) {
  v1::Table t = Results();
  auto columns =
      *SelectColumns(t, {"run_id", "workload", "target", "ttft_p95_ms", "usd_per_mtok"}, {});
  EXPECT_EQ(QueryTableText(t, columns),
            "RUN  WORKLOAD       TARGET  TTFT_P95_MS  $/MTOK\n"
            " 12  128/1024           16          123  0.4124\n"
            " 13  shared-prefix    2.50            -       -\n");
}

TEST(QueryTableText, MissingCellsAreNull) {
  v1::Table t;
  t.add_columns("a");
  t.add_columns("b");
  AddRow(t, {Text("x")});  // shorter than the header
  EXPECT_EQ(QueryTableText(t, AllColumns(t)), "A  B\nx  -\n");
}

TEST(QueryTableJson, OneObjectPerRowWithTypedValuesAndNulls) {
  v1::Table t = Results();
  auto j = QueryTableJson(t, AllColumns(t));
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[0].size(), 21u) << "every column";
  EXPECT_EQ(j[0]["run_id"], 12);
  EXPECT_TRUE(j[0]["run_id"].is_number_integer());
  EXPECT_EQ(j[0]["model"], "tiny-15m");
  EXPECT_DOUBLE_EQ(j[0]["requests_per_s"].get<double>(), 3.21987) << "full precision";
  EXPECT_TRUE(j[1]["ttft_p95_ms"].is_null());
  EXPECT_TRUE(j[1]["usd_per_mtok"].is_null());
  EXPECT_EQ(j[0].begin().key(), "run_id") << "columns keep the table's order";
}

TEST(QueryTableJson, NonFiniteNumbersBecomeNull) {
  v1::Table t;
  t.add_columns("x");
  AddRow(t, {Num(std::numeric_limits<double>::infinity())});
  EXPECT_TRUE(QueryTableJson(t, AllColumns(t))[0]["x"].is_null());
}

TEST(CsvField, QuotesCommasQuotesAndLineBreaks) {
  EXPECT_EQ(CsvField("plain"), "plain");
  EXPECT_EQ(CsvField("a,b"), "\"a,b\"");
  EXPECT_EQ(CsvField("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(CsvField("two\nlines"), "\"two\nlines\"");
  EXPECT_EQ(CsvField("cr\r"), "\"cr\r\"");
  EXPECT_EQ(CsvField(""), "");
}

TEST(QueryTableCsv, HeaderRowsCrlfFullPrecisionAndEmptyNulls) {
  v1::Table t;
  for (const char* c : {"provider", "gpu", "usd_per_gpu_hour", "hours", "source"}) {
    t.add_columns(c);
  }
  AddRow(t, {Text("Modal"), Text("H100"), Num(3.95), Int(730), Text("modal.com, \"pricing\"")});
  AddRow(t, {Text("Lambda"), Text("A10"), Num(0.1234567891), Null(), Text("line one\nline two")});
  EXPECT_EQ(QueryTableCsv(t, AllColumns(t)),
            "provider,gpu,usd_per_gpu_hour,hours,source\r\n"
            "Modal,H100,3.95,730,\"modal.com, \"\"pricing\"\"\"\r\n"
            "Lambda,A10,0.1234567891,,\"line one\nline two\"\r\n");
}

TEST(QueryTableCsv, OnlyTheChosenColumns) {
  v1::Table t = Results();
  EXPECT_EQ(QueryTableCsv(t, *SelectColumns(t, {"run_id", "mbu"}, {})),
            "run_id,mbu\r\n12,0.4231\r\n13,\r\n");
}

TEST(NotesText, OneLinePerNote) {
  v1::Table t = Results();
  t.add_notes("second");
  EXPECT_EQ(NotesText(t),
            "note: no price for device cpu at provider Modal; usd_per_mtok uses "
            "cpu_usd_per_hour\nnote: second\n");
  EXPECT_EQ(NotesText(v1::Table()), "");
}

}  // namespace
}  // namespace breakeven::cli

// The price catalog: CSV parsing, validated all-or-nothing imports, seeding, and the look-ups the
// cost reports use.
#include "db/price_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "db/embedded.h"
#include "db/migrate.h"

namespace breakeven::db {
namespace {

using Rows = std::vector<std::vector<std::string>>;

// Whether `text` contains `part`; the failure message shows both.
::testing::AssertionResult Has(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) {
    return ::testing::AssertionSuccess() << "'" << text << "' contains '" << part << "'";
  }
  return ::testing::AssertionFailure() << "'" << text << "' does not contain '" << part << "'";
}

class PriceStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = Database::Open(":memory:");
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(db).value();
    auto migrated = Migrate(*db_);
    ASSERT_TRUE(migrated.ok()) << migrated.status().ToString();
  }

  int64_t Count(const std::string& table) {
    auto q = db_->Prepare("SELECT count(*) FROM " + table);
    EXPECT_TRUE(q.ok()) << q.status().ToString();
    auto row = q->Step();
    EXPECT_TRUE(row.ok() && *row);
    return q->Int64(0);
  }

  // Imports and expects success.
  ImportResult Import(std::string_view csv, std::string_view source = "test.csv") {
    Result<ImportResult> r = ImportPricesCsv(*db_, csv, source);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : ImportResult{PriceTable::kGpuSpecs, -1};
  }

  // Imports and returns the error (failing the test when the import succeeds).
  Status ImportError(std::string_view csv, std::string_view source = "bad.csv") {
    Result<ImportResult> r = ImportPricesCsv(*db_, csv, source);
    EXPECT_FALSE(r.ok()) << "import succeeded";
    return r.status();
  }

  std::unique_ptr<Database> db_;
};

// ---- ParseCsv ----

TEST(ParseCsvTest, PlainFieldsWithAndWithoutFinalNewline) {
  Rows want = {{"a", "b", "c"}, {"1", "2", "3"}};
  auto lf = ParseCsv("a,b,c\n1,2,3\n", "x.csv");
  ASSERT_TRUE(lf.ok()) << lf.status().ToString();
  EXPECT_EQ(*lf, want);
  auto no_final = ParseCsv("a,b,c\n1,2,3", "x.csv");
  ASSERT_TRUE(no_final.ok());
  EXPECT_EQ(*no_final, want);
  auto crlf = ParseCsv("a,b,c\r\n1,2,3\r\n", "x.csv");
  ASSERT_TRUE(crlf.ok());
  EXPECT_EQ(*crlf, want);  // no '\r' left on the last field
}

TEST(ParseCsvTest, QuotedFields) {
  auto r = ParseCsv(
      "name,note\n"
      "\"Lambda, 8x\",\"say \"\"hi\"\"\"\n"
      "\"two\nlines\",\"\"\n",
      "x.csv");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  Rows want = {{"name", "note"}, {"Lambda, 8x", "say \"hi\""}, {"two\nlines", ""}};
  EXPECT_EQ(*r, want);
}

TEST(ParseCsvTest, EmptyFieldsAndLines) {
  auto r = ParseCsv("a,,c,\n\n,\n", "x.csv");
  ASSERT_TRUE(r.ok());
  // A trailing comma ends with an empty field; an empty line holds no record.
  Rows want = {{"a", "", "c", ""}, {"", ""}};
  EXPECT_EQ(*r, want);
  auto empty = ParseCsv("", "x.csv");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(ParseCsvTest, ByteOrderMarkIsSkipped) {
  auto r = ParseCsv("\xEF\xBB\xBFgpu,source\nL4,x\n", "x.csv");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0][0], "gpu");
}

TEST(ParseCsvTest, QuoteInsideUnquotedFieldIsKept) {
  auto r = ParseCsv("a 12\" b,c\n", "x.csv");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0][0], "a 12\" b");
}

TEST(ParseCsvTest, UnterminatedQuoteNamesWhereItOpened) {
  // The quote opens on line 3 and is never closed.
  auto r = ParseCsv("a,b\n1,2\n3,\"open\n4,5\n", "prices.csv");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Has(r.status().message(), "prices.csv:3"));
  EXPECT_TRUE(Has(r.status().message(), "not closed"));
}

TEST(ParseCsvTest, TextAfterClosingQuoteIsAnError) {
  auto r = ParseCsv("a,b\n\"x\"y,2\n", "prices.csv");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(Has(r.status().message(), "prices.csv:2"));
}

// ---- imports ----

TEST_F(PriceStoreTest, ImportsGpuPricesInAnyColumnOrder) {
  ImportResult r = Import(
      "gpu,provider,as_of,source,usd_per_gpu_hour\n"
      "H100 SXM,Zeta,2026-01,zeta.example/pricing,2.50\n"
      "\"A100 80GB\",Alpha,2026-02,\"alpha, page 2\",1.75\r\n");
  EXPECT_EQ(r.table, PriceTable::kGpuPrices);
  EXPECT_EQ(r.rows, 2);
  auto list = ListGpuPrices(*db_);
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->size(), 2u);
  // Ordered by provider: Alpha before Zeta.
  EXPECT_EQ((*list)[0].provider, "Alpha");
  EXPECT_EQ((*list)[0].gpu, "A100 80GB");
  EXPECT_DOUBLE_EQ((*list)[0].usd_per_gpu_hour, 1.75);
  EXPECT_EQ((*list)[0].source, "alpha, page 2");
  EXPECT_EQ((*list)[0].as_of, "2026-02");
  EXPECT_EQ((*list)[1].provider, "Zeta");
  EXPECT_DOUBLE_EQ((*list)[1].usd_per_gpu_hour, 2.50);
}

TEST_F(PriceStoreTest, ImportsApiPricesWithAndWithoutCachedColumn) {
  ImportResult r = Import(
      "provider,model,input_usd_per_mtok,output_usd_per_mtok,source,as_of\n"
      "Acme,b-model,1,2,acme.example,2026-03\n"
      "Acme,a-model,0.5,1.5,acme.example,2026-03\n");
  EXPECT_EQ(r.table, PriceTable::kApiPrices);
  EXPECT_EQ(r.rows, 2);
  Import(
      "provider,model,input_usd_per_mtok,output_usd_per_mtok,cached_input_usd_per_mtok,source,"
      "as_of\n"
      "Beta,c-model,3,15,0.3,beta.example,2026-04\n"
      "Beta,d-model,3,15,,beta.example,2026-04\n");
  auto list = ListApiPrices(*db_);
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->size(), 4u);
  // Ordered by provider, then model.
  EXPECT_EQ((*list)[0].model, "a-model");
  EXPECT_DOUBLE_EQ((*list)[0].input_usd_per_mtok, 0.5);
  EXPECT_DOUBLE_EQ((*list)[0].output_usd_per_mtok, 1.5);
  EXPECT_FALSE((*list)[0].cached_input_usd_per_mtok.has_value());
  EXPECT_EQ((*list)[1].model, "b-model");
  EXPECT_EQ((*list)[2].model, "c-model");
  ASSERT_TRUE((*list)[2].cached_input_usd_per_mtok.has_value());
  EXPECT_DOUBLE_EQ(*(*list)[2].cached_input_usd_per_mtok, 0.3);
  EXPECT_FALSE((*list)[3].cached_input_usd_per_mtok.has_value());  // empty value: NULL
}

TEST_F(PriceStoreTest, ImportsGpuSpecsWithEmptyNumbersAsNull) {
  ImportResult r = Import(
      "gpu,mem_gib,hbm_tb_s,bf16_dense_tflops,fp8_dense_tflops,nvlink_gb_s,tdp_w,source\n"
      "A100 80GB,80,2.039,312,,600,400,datasheet\n");
  EXPECT_EQ(r.table, PriceTable::kGpuSpecs);
  EXPECT_EQ(r.rows, 1);
  auto q = db_->Prepare(
      "SELECT mem_gib, hbm_tb_s, fp8_dense_tflops IS NULL, tdp_w, source FROM gpu_specs "
      "WHERE gpu = 'A100 80GB'");
  ASSERT_TRUE(q.ok());
  ASSERT_TRUE(*q->Step());
  EXPECT_DOUBLE_EQ(q->Double(0), 80);
  EXPECT_DOUBLE_EQ(q->Double(1), 2.039);
  EXPECT_EQ(q->Int64(2), 1);
  EXPECT_DOUBLE_EQ(q->Double(3), 400);
  EXPECT_EQ(q->Text(4), "datasheet");
}

TEST_F(PriceStoreTest, ImportReplacesRowsWithTheSameKey) {
  Import(
      "provider,gpu,usd_per_gpu_hour,source,as_of\n"
      "Alpha,H100,3.00,old,2025-01\n"
      "Alpha,L4,0.80,old,2025-01\n");
  ASSERT_EQ(Count("gpu_prices"), 2);
  ImportResult r = Import(
      "provider,gpu,usd_per_gpu_hour,source,as_of\n"
      "Alpha,H100,2.25,new,2026-01\n"
      "Beta,H100,2.75,new,2026-01\n");
  EXPECT_EQ(r.rows, 2);
  EXPECT_EQ(Count("gpu_prices"), 3);  // Alpha/H100 replaced, Beta/H100 added
  auto price = FindDevicePrice(*db_, "H100", "Alpha");
  ASSERT_TRUE(price.ok()) << price.status().ToString();
  EXPECT_DOUBLE_EQ(price->usd_per_gpu_hour, 2.25);
  EXPECT_EQ(price->source, "new");
  EXPECT_EQ(price->as_of, "2026-01");

  // API rows: a file without the cached column replaces the cached price too.
  Import(
      "provider,model,input_usd_per_mtok,output_usd_per_mtok,cached_input_usd_per_mtok,source,"
      "as_of\n"
      "Acme,m,1,2,0.1,s,2025\n");
  Import(
      "provider,model,input_usd_per_mtok,output_usd_per_mtok,source,as_of\n"
      "Acme,m,4,8,s2,2026\n");
  EXPECT_EQ(Count("api_prices"), 1);
  auto api = FindApiPrice(*db_, "Acme/m");
  ASSERT_TRUE(api.ok());
  EXPECT_DOUBLE_EQ(api->input_usd_per_mtok, 4);
  EXPECT_DOUBLE_EQ(api->output_usd_per_mtok, 8);
  EXPECT_FALSE(api->cached_input_usd_per_mtok.has_value());
}

TEST_F(PriceStoreTest, BadRowInTheMiddleChangesNothing) {
  Import(
      "provider,gpu,usd_per_gpu_hour,source,as_of\n"
      "Alpha,H100,3.00,old,2025-01\n");
  ASSERT_EQ(Count("gpu_prices"), 1);
  // Line 2 would update Alpha/H100, line 3 would add a row, line 4 is bad.
  Status s = ImportError(
      "provider,gpu,usd_per_gpu_hour,source,as_of\n"
      "Alpha,H100,1.00,new,2026-01\n"
      "Beta,L4,0.50,new,2026-01\n"
      "Gamma,A10,abc,new,2026-01\n"
      "Delta,B200,6.00,new,2026-01\n",
      "update.csv");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Has(s.message(), "update.csv:4"));
  EXPECT_TRUE(Has(s.message(), "usd_per_gpu_hour"));
  EXPECT_TRUE(Has(s.message(), "abc"));
  EXPECT_EQ(Count("gpu_prices"), 1);
  auto price = FindDevicePrice(*db_, "H100", "Alpha");
  ASSERT_TRUE(price.ok());
  EXPECT_DOUBLE_EQ(price->usd_per_gpu_hour, 3.00);  // not updated
  EXPECT_EQ(price->source, "old");
}

TEST_F(PriceStoreTest, DatabaseErrorMidImportRollsBackEarlierRows) {
  Import(
      "provider,gpu,usd_per_gpu_hour,source,as_of\n"
      "Alpha,H100,3.00,old,2025-01\n");
  // Rows that pass validation but fail in the database: the rows written before it must go too.
  ASSERT_TRUE(db_->ExecScript(R"sql(
      CREATE TRIGGER no_b200 BEFORE INSERT ON gpu_prices WHEN NEW.gpu = 'B200'
      BEGIN SELECT RAISE(ABORT, 'B200 refused'); END)sql")
                  .ok());
  Status s = ImportError(
      "provider,gpu,usd_per_gpu_hour,source,as_of\n"
      "Alpha,H100,1.00,new,2026-01\n"
      "Beta,L4,0.50,new,2026-01\n"
      "Gamma,B200,6.00,new,2026-01\n",
      "mid.csv");
  EXPECT_TRUE(Has(s.message(), "mid.csv:4"));
  EXPECT_TRUE(Has(s.message(), "B200 refused"));
  EXPECT_EQ(Count("gpu_prices"), 1);
  auto price = FindDevicePrice(*db_, "H100", "Alpha");
  ASSERT_TRUE(price.ok());
  EXPECT_DOUBLE_EQ(price->usd_per_gpu_hour, 3.00);
  // The connection is usable afterwards (no transaction left open).
  Import("provider,gpu,usd_per_gpu_hour,source,as_of\nBeta,L4,0.50,new,2026-01\n");
  EXPECT_EQ(Count("gpu_prices"), 2);
}

TEST_F(PriceStoreTest, RejectsBadValuesNamingLineAndColumn) {
  const std::string header = "provider,model,input_usd_per_mtok,output_usd_per_mtok,source,as_of\n";
  Status negative = ImportError(header + "A,m,1,-2,s,d\n");
  EXPECT_TRUE(Has(negative.message(), "bad.csv:2"));
  EXPECT_TRUE(Has(negative.message(), "output_usd_per_mtok"));

  Status partial_number = ImportError(header + "A,m,1,2,s,d\nA,n,1.5x,2,s,d\n");
  EXPECT_TRUE(Has(partial_number.message(), "bad.csv:3"));
  EXPECT_TRUE(Has(partial_number.message(), "input_usd_per_mtok"));

  Status not_finite = ImportError(header + "A,m,inf,2,s,d\n");
  EXPECT_TRUE(Has(not_finite.message(), "input_usd_per_mtok"));

  Status empty_text = ImportError(header + "A, ,1,2,s,d\n");
  EXPECT_TRUE(Has(empty_text.message(), "bad.csv:2"));
  EXPECT_TRUE(Has(empty_text.message(), "'model' is empty"));

  Status empty_number = ImportError(header + "A,m,,2,s,d\n");
  EXPECT_TRUE(Has(empty_number.message(), "'input_usd_per_mtok' is empty"));

  Status short_row = ImportError(header + "A,m,1,2,s,d\nA,n,1,2,s\n");
  EXPECT_TRUE(Has(short_row.message(), "bad.csv:3"));
  EXPECT_TRUE(Has(short_row.message(), "5 fields, expected 6"));

  EXPECT_EQ(Count("api_prices"), 0);
}

TEST_F(PriceStoreTest, ErrorLinesCountLinesInsideQuotedFields) {
  // The record on line 2 spans lines 2-3, so the bad record starts on line 4.
  Status s = ImportError(
      "provider,gpu,usd_per_gpu_hour,source,as_of\n"
      "Alpha,H100,3.00,\"two\nlines\",2026\n"
      "Beta,H100,x,s,2026\n");
  EXPECT_TRUE(Has(s.message(), "bad.csv:4"));
}

TEST_F(PriceStoreTest, HeaderErrorsNameTheColumn) {
  Status unknown = ImportError("provider,gpu,usd_per_hour,source,as_of\nA,H100,1,s,d\n");
  EXPECT_TRUE(Has(unknown.message(), "unknown column 'usd_per_hour'"));
  EXPECT_TRUE(Has(unknown.message(), "provider, gpu, usd_per_gpu_hour, source, as_of"));

  Status missing = ImportError("provider,gpu,usd_per_gpu_hour,source\nA,H100,1,s\n");
  EXPECT_TRUE(Has(missing.message(), "missing column 'as_of'"));
  EXPECT_TRUE(Has(missing.message(), "gpu prices"));

  Status missing_spec =
      ImportError("gpu,mem_gib,hbm_tb_s,bf16_dense_tflops,nvlink_gb_s,tdp_w,source\n");
  EXPECT_TRUE(Has(missing_spec.message(), "missing column 'fp8_dense_tflops'"));

  Status unidentified = ImportError("name,price\nx,1\n");
  EXPECT_TRUE(Has(unidentified.message(), "does not identify"));
  EXPECT_TRUE(Has(unidentified.message(), "usd_per_gpu_hour"));

  Status duplicate = ImportError("provider,gpu,gpu,usd_per_gpu_hour,source,as_of\n");
  EXPECT_TRUE(Has(duplicate.message(), "'gpu' twice"));

  Status empty = ImportError("");
  EXPECT_TRUE(Has(empty.message(), "header"));

  EXPECT_EQ(Count("gpu_prices"), 0);
  EXPECT_EQ(Count("gpu_specs"), 0);
}

TEST_F(PriceStoreTest, HeaderOnlyImportsNothing) {
  ImportResult r = Import("provider,gpu,usd_per_gpu_hour,source,as_of\n");
  EXPECT_EQ(r.table, PriceTable::kGpuPrices);
  EXPECT_EQ(r.rows, 0);
}

// ---- seeding ----

// Data rows of a built-in seed file, and how many distinct keys they hold (a file may repeat a
// key; the later row wins).
struct SeedCounts {
  int64_t rows = 0;
  int64_t keys = 0;
};

SeedCounts CountSeed(const std::string& name, std::vector<std::string> key_columns) {
  SeedCounts counts;
  for (const EmbeddedFile& f : SeedFiles()) {
    if (f.name != name) continue;
    auto rows = ParseCsv(f.text, f.name);
    EXPECT_TRUE(rows.ok()) << rows.status().ToString();
    std::vector<size_t> key_index;
    for (const std::string& k : key_columns) {
      auto& header = rows->front();
      key_index.push_back(std::find(header.begin(), header.end(), k) - header.begin());
    }
    std::set<std::vector<std::string>> keys;
    for (size_t r = 1; r < rows->size(); ++r) {
      std::vector<std::string> key;
      for (size_t i : key_index) key.push_back((*rows)[r].at(i));
      keys.insert(key);
    }
    counts.rows = static_cast<int64_t>(rows->size()) - 1;
    counts.keys = static_cast<int64_t>(keys.size());
  }
  return counts;
}

TEST_F(PriceStoreTest, SeedFillsEmptyTablesOnce) {
  SeedCounts gpu = CountSeed("gpu_prices.csv", {"provider", "gpu"});
  SeedCounts api = CountSeed("api_prices.csv", {"provider", "model"});
  SeedCounts specs = CountSeed("gpu_specs.csv", {"gpu"});
  ASSERT_GT(gpu.rows, 0);
  ASSERT_GT(api.rows, 0);
  ASSERT_GT(specs.rows, 0);

  Result<int64_t> first = SeedPrices(*db_);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(*first, gpu.rows + api.rows + specs.rows);
  EXPECT_EQ(Count("gpu_prices"), gpu.keys);
  EXPECT_EQ(Count("api_prices"), api.keys);
  EXPECT_EQ(Count("gpu_specs"), specs.keys);

  Result<int64_t> second = SeedPrices(*db_);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(*second, 0);
  EXPECT_EQ(Count("gpu_prices"), gpu.keys);

  // Only an emptied table is filled again.
  ASSERT_TRUE(db_->ExecScript("DELETE FROM api_prices").ok());
  Result<int64_t> third = SeedPrices(*db_);
  ASSERT_TRUE(third.ok()) << third.status().ToString();
  EXPECT_EQ(*third, api.rows);
  EXPECT_EQ(Count("api_prices"), api.keys);
}

TEST_F(PriceStoreTest, SeedLeavesImportedTablesAlone) {
  Import("provider,gpu,usd_per_gpu_hour,source,as_of\nMine,H100,1.00,me,2026\n");
  SeedCounts api = CountSeed("api_prices.csv", {"provider", "model"});
  SeedCounts specs = CountSeed("gpu_specs.csv", {"gpu"});
  Result<int64_t> seeded = SeedPrices(*db_);
  ASSERT_TRUE(seeded.ok()) << seeded.status().ToString();
  EXPECT_EQ(*seeded, api.rows + specs.rows);
  EXPECT_EQ(Count("gpu_prices"), 1);
}

// ---- API prices ----

TEST_F(PriceStoreTest, FindsSeededApiPrice) {
  ASSERT_TRUE(SeedPrices(*db_).ok());
  auto p = FindApiPrice(*db_, "OpenAI/gpt-4o-mini");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->provider, "OpenAI");
  EXPECT_EQ(p->model, "gpt-4o-mini");
  EXPECT_DOUBLE_EQ(p->input_usd_per_mtok, 0.15);
  EXPECT_DOUBLE_EQ(p->output_usd_per_mtok, 0.60);
  ASSERT_TRUE(p->cached_input_usd_per_mtok.has_value());
  EXPECT_DOUBLE_EQ(*p->cached_input_usd_per_mtok, 0.075);

  // Case-insensitive, and not a prefix match: gpt-4o is its own row.
  auto upper = FindApiPrice(*db_, " openai/GPT-4O-MINI ");
  ASSERT_TRUE(upper.ok()) << upper.status().ToString();
  EXPECT_EQ(upper->model, "gpt-4o-mini");
  auto shorter = FindApiPrice(*db_, "OpenAI/gpt-4o");
  ASSERT_TRUE(shorter.ok());
  EXPECT_DOUBLE_EQ(shorter->input_usd_per_mtok, 2.50);

  // Only the first '/' splits: the model keeps its own.
  auto slashed = FindApiPrice(*db_, "Together/meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo");
  ASSERT_TRUE(slashed.ok()) << slashed.status().ToString();
  EXPECT_DOUBLE_EQ(slashed->input_usd_per_mtok, 0.18);
}

TEST_F(PriceStoreTest, ApiPriceNotFoundListsNearMatches) {
  Import(
      "provider,model,input_usd_per_mtok,output_usd_per_mtok,source,as_of\n"
      "Acme,alpha-1,1,1,s,d\n"
      "Acme,alpha-2,1,1,s,d\n"
      "Acme,zeta,1,1,s,d\n"
      "Other,alpha-large,1,1,s,d\n"
      "Other,beta,1,1,s,d\n");
  auto r = FindApiPrice(*db_, "acme/alpha");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  const std::string m = r.status().message();
  EXPECT_TRUE(Has(m, "acme/alpha"));
  EXPECT_TRUE(Has(m, "Acme/alpha-1"));
  EXPECT_TRUE(Has(m, "Acme/alpha-2"));
  EXPECT_TRUE(Has(m, "Other/alpha-large"));  // another provider, model contains "alpha"
  EXPECT_TRUE(Has(m, "Acme/zeta"));          // same provider
  EXPECT_FALSE(Has(m, "Other/beta"));        // neither
  // Best first: same provider and similar model before the rest.
  EXPECT_LT(m.find("Acme/alpha-1"), m.find("Other/alpha-large"));
  EXPECT_LT(m.find("Other/alpha-large"), m.find("Acme/zeta"));

  auto none = FindApiPrice(*db_, "Nobody/gamma");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Has(none.status().message(), "Acme, Other"));  // the providers there are

  auto malformed = FindApiPrice(*db_, "gpt-4o-mini");
  ASSERT_FALSE(malformed.ok());
  EXPECT_EQ(malformed.status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(FindApiPrice(*db_, "Acme/").ok());
}

TEST_F(PriceStoreTest, NearMatchesAreAtMostFive) {
  std::string csv = "provider,model,input_usd_per_mtok,output_usd_per_mtok,source,as_of\n";
  for (int i = 1; i <= 8; ++i) csv += fmt::format("Acme,m{},1,1,s,d\n", i);
  Import(csv);
  auto r = FindApiPrice(*db_, "Acme/other");
  ASSERT_FALSE(r.ok());
  const std::string m = r.status().message();
  int listed = 0;
  for (int i = 1; i <= 8; ++i) listed += m.find(fmt::format("Acme/m{}", i)) != std::string::npos;
  EXPECT_EQ(listed, 5);
}

// ---- device prices ----

TEST_F(PriceStoreTest, CpuPriceComesFromSettings) {
  auto p = FindDevicePrice(*db_, "cpu", "");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_DOUBLE_EQ(p->usd_per_gpu_hour, 0.10);  // the migration's default
  EXPECT_EQ(p->provider, "self");
  EXPECT_EQ(p->source, "settings");

  ASSERT_TRUE(SetSetting(*db_, "cpu_usd_per_hour", "0.25").ok());
  auto changed = FindDevicePrice(*db_, "CPU", "AnyProvider");
  ASSERT_TRUE(changed.ok()) << changed.status().ToString();
  EXPECT_DOUBLE_EQ(changed->usd_per_gpu_hour, 0.25);

  ASSERT_TRUE(SetSetting(*db_, "cpu_usd_per_hour", "cheap").ok());
  auto bad = FindDevicePrice(*db_, "cpu", "");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(Has(bad.status().message(), "cpu_usd_per_hour"));

  ASSERT_TRUE(db_->ExecScript("DELETE FROM settings WHERE key = 'cpu_usd_per_hour'").ok());
  auto missing = FindDevicePrice(*db_, "cpu", "");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

class DevicePriceTest : public PriceStoreTest {
 protected:
  void SetUp() override {
    PriceStoreTest::SetUp();
    Import(
        "provider,gpu,usd_per_gpu_hour,source,as_of\n"
        "Alpha,H100,3.10,s,d\n"
        "Beta,H100,2.90,s,d\n"
        "Cloud Secure,H100 SXM,1.50,s,d\n"
        "Cloud Community,H100 SXM,1.40,s,d\n"
        "Decoy,H1000,0.10,s,d\n"  // not an H100: no word boundary after the prefix
        "Alpha,L40S,0.70,s,d\n"
        "Alpha,L4,0.80,s,d\n");
  }
};

TEST_F(DevicePriceTest, PicksTheCheapestMatch) {
  // "H100" matches "H100" and "H100 SXM" (prefix at a word boundary), not "H1000".
  auto p = FindDevicePrice(*db_, "H100", "");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->provider, "Cloud Community");
  EXPECT_EQ(p->gpu, "H100 SXM");
  EXPECT_DOUBLE_EQ(p->usd_per_gpu_hour, 1.40);

  // The longer name matches the shorter price names too, case-insensitively, with '-' read as a
  // blank: "h100-sxm 80gb" matches "H100 SXM" and "H100".
  auto sxm = FindDevicePrice(*db_, "h100-sxm 80gb", "");
  ASSERT_TRUE(sxm.ok()) << sxm.status().ToString();
  EXPECT_DOUBLE_EQ(sxm->usd_per_gpu_hour, 1.40);

  // "L4" is not a prefix of "L40S" at a word boundary.
  auto l4 = FindDevicePrice(*db_, "L4", "");
  ASSERT_TRUE(l4.ok());
  EXPECT_EQ(l4->gpu, "L4");
  EXPECT_DOUBLE_EQ(l4->usd_per_gpu_hour, 0.80);
}

TEST_F(DevicePriceTest, CudaDeviceNames) {
  // "NVIDIA H100 80GB HBM3" -> "h100 80gb hbm3": "H100" is its prefix, "H100 SXM" is not.
  auto p = FindDevicePrice(*db_, "NVIDIA H100 80GB HBM3", "");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->provider, "Beta");
  EXPECT_DOUBLE_EQ(p->usd_per_gpu_hour, 2.90);

  auto alpha = FindDevicePrice(*db_, "NVIDIA H100 80GB HBM3", "alpha");
  ASSERT_TRUE(alpha.ok()) << alpha.status().ToString();
  EXPECT_EQ(alpha->provider, "Alpha");
  EXPECT_DOUBLE_EQ(alpha->usd_per_gpu_hour, 3.10);

  auto l40s = FindDevicePrice(*db_, "NVIDIA L40S", "");
  ASSERT_TRUE(l40s.ok());
  EXPECT_EQ(l40s->gpu, "L40S");
}

TEST_F(DevicePriceTest, ProviderFilter) {
  auto beta = FindDevicePrice(*db_, "H100", "BETA");
  ASSERT_TRUE(beta.ok()) << beta.status().ToString();
  EXPECT_EQ(beta->provider, "Beta");
  EXPECT_DOUBLE_EQ(beta->usd_per_gpu_hour, 2.90);

  // A provider's first word selects its plans: "Cloud" covers Secure and Community.
  auto cloud = FindDevicePrice(*db_, "H100", "Cloud");
  ASSERT_TRUE(cloud.ok());
  EXPECT_EQ(cloud->provider, "Cloud Community");
  auto secure = FindDevicePrice(*db_, "H100", "cloud secure");
  ASSERT_TRUE(secure.ok());
  EXPECT_DOUBLE_EQ(secure->usd_per_gpu_hour, 1.50);
  // ...but not a part of a word.
  EXPECT_FALSE(FindDevicePrice(*db_, "H100", "Clo").ok());
}

TEST_F(DevicePriceTest, NotFoundNamesDeviceAndProviders) {
  auto other = FindDevicePrice(*db_, "H100", "Gamma");
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), StatusCode::kNotFound);
  const std::string m = other.status().message();
  EXPECT_TRUE(Has(m, "'H100'"));
  EXPECT_TRUE(Has(m, "'Gamma'"));
  EXPECT_TRUE(Has(m, "Alpha"));  // providers that do price an H100
  EXPECT_TRUE(Has(m, "Cloud Community"));
  EXPECT_FALSE(Has(m, "Decoy"));

  auto unknown = FindDevicePrice(*db_, "MI300X", "");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Has(unknown.status().message(), "'MI300X'"));
  EXPECT_TRUE(Has(unknown.status().message(), "Decoy"));  // all providers with GPU prices
}

TEST_F(PriceStoreTest, SeededDevicePrices) {
  ASSERT_TRUE(SeedPrices(*db_).ok());
  // Of the seed's H100 rows only Modal's is named plain "H100", a prefix of the CUDA name.
  auto cuda = FindDevicePrice(*db_, "NVIDIA H100 80GB HBM3", "");
  ASSERT_TRUE(cuda.ok()) << cuda.status().ToString();
  EXPECT_EQ(cuda->provider, "Modal");
  EXPECT_DOUBLE_EQ(cuda->usd_per_gpu_hour, 3.95);
  // "RunPod" selects "RunPod Community" and "RunPod Secure"; the cheapest H100 there.
  auto runpod = FindDevicePrice(*db_, "H100 SXM", "RunPod");
  ASSERT_TRUE(runpod.ok()) << runpod.status().ToString();
  EXPECT_EQ(runpod->provider, "RunPod Community");
  EXPECT_DOUBLE_EQ(runpod->usd_per_gpu_hour, 2.69);
}

// ---- settings ----

TEST_F(PriceStoreTest, Settings) {
  auto missing = GetSetting(*db_, "nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Has(missing.status().message(), "nope"));

  ASSERT_TRUE(SetSetting(*db_, "k", "v1").ok());
  auto v1 = GetSetting(*db_, "k");
  ASSERT_TRUE(v1.ok());
  EXPECT_EQ(*v1, "v1");
  ASSERT_TRUE(SetSetting(*db_, "k", "v2").ok());
  auto v2 = GetSetting(*db_, "k");
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ(*v2, "v2");
  EXPECT_EQ(Count("settings WHERE key = 'k'"), 1);
}

}  // namespace
}  // namespace breakeven::db

// The price catalog: GPU rental prices ($/GPU-hour by provider), API prices ($/Mtok by provider
// and model), GPU specs, and settings (the CPU's own $/hour). Seeded from db/seed/*.csv (copied,
// with their sources and dates, from public price pages) when the database is created, and
// updated by `breakeven prices import FILE.csv`.
//
// CSV files must carry a header row; the columns are recognised by name:
//   gpu prices: provider,gpu,usd_per_gpu_hour,source,as_of
//   api prices: provider,model,input_usd_per_mtok,output_usd_per_mtok[,cached_input_usd_per_mtok],
//               source,as_of
//   gpu specs:  gpu,mem_gib,hbm_tb_s,bf16_dense_tflops,fp8_dense_tflops,nvlink_gb_s,tdp_w,source
// An import is one transaction: a bad row (named by line and column) leaves the catalog as it
// was. Rows replace existing rows with the same key (provider+gpu, provider+model, gpu).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "db/sqlite.h"

namespace breakeven::db {

struct GpuPrice {
  std::string provider;
  std::string gpu;
  double usd_per_gpu_hour = 0;
  std::string source;
  std::string as_of;
};

struct ApiPriceRow {
  std::string provider;
  std::string model;
  double input_usd_per_mtok = 0;
  double output_usd_per_mtok = 0;
  std::optional<double> cached_input_usd_per_mtok;
  std::string source;
  std::string as_of;
};

enum class PriceTable { kGpuPrices, kApiPrices, kGpuSpecs };

struct ImportResult {
  PriceTable table;
  int64_t rows = 0;
};

// Parses CSV text (RFC 4180: quoted fields with "" escapes, CRLF or LF). Errors name
// `source`:line.
Result<std::vector<std::vector<std::string>>> ParseCsv(std::string_view text,
                                                       std::string_view source);

// Imports one CSV file's rows into the table its header identifies, in one transaction.
Result<ImportResult> ImportPricesCsv(Database& db, std::string_view csv_text,
                                     std::string_view source);

// Fills empty tables from the built-in seed files; returns rows inserted.
Result<int64_t> SeedPrices(Database& db);

Result<std::vector<GpuPrice>> ListGpuPrices(Database& db);
Result<std::vector<ApiPriceRow>> ListApiPrices(Database& db);

// "OpenAI/gpt-4o-mini": provider and model split at the first '/'; matching is
// case-insensitive. Errors list near matches.
Result<ApiPriceRow> FindApiPrice(Database& db, std::string_view provider_slash_model);
// $/hour for a device type: the cheapest price whose gpu column matches (case-insensitive
// prefix both ways, so "H100" matches "H100 SXM") from `provider` (any provider when empty);
// the device type "cpu" uses the cpu_usd_per_hour setting.
Result<GpuPrice> FindDevicePrice(Database& db, std::string_view device_type,
                                 std::string_view provider);

Result<std::string> GetSetting(Database& db, std::string_view key);
Status SetSetting(Database& db, std::string_view key, std::string_view value);

}  // namespace breakeven::db

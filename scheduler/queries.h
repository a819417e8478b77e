// The queries behind `breakeven results`, `compare`, `plan` and `prices`: the SQL files of
// db/queries/ (embedded in the binary; the same text an analyst runs in the sqlite3 shell, see
// docs/queries.md) run with checked, bound arguments, answered as a typed table.
//
// Kinds and their arguments (strings, as the CLI sends them; an empty value is the same as none):
//   results  matrix (name or id), run (id), model, provider: one row per load point
//   compare  model*, api* ("PROVIDER/MODEL"), provider, utilization (in (0, 1], default 1),
//            workload, device, tp: self-hosted against the API per measured configuration
//   plan     model*, workload*, rate* (requests/s > 0), slo ("ttft_p95=500ms,tpot_p95=50ms"),
//            provider, compare_to ("PROVIDER/MODEL"): configurations ranked cheapest per hour
//   prices   table ("gpu", "api", "settings", "specs"; default: every price, gpu + api +
//            settings, in one table whose columns docs/queries.md lists)
// (* required.) Each run counts once: only its latest attempt that recorded load points is used.
// Prices: "cpu" is the cpu_usd_per_hour setting; a GPU device type takes the cheapest matching
// gpu_prices row (of `provider` when given), matched as db::FindDevicePrice matches.
//
// Errors: InvalidArgument naming the argument (unknown kind or argument, a missing required one,
// an unparseable number, an API model not in the catalog, with near matches); NotFound when no
// load point matches, saying what was looked for and what the database holds. A device type
// without a price is not an error: its $ columns are null and the table's notes say why.
//
// Not thread-safe: runs on the thread that owns `db`. Reads only.
#pragma once

#include <map>
#include <string>

#include "common/status.h"
#include "db/sqlite.h"
#include "proto/breakeven.pb.h"

namespace breakeven::scheduler {

Result<v1::Table> RunQuery(db::Database& db, const std::string& kind,
                           const std::map<std::string, std::string>& args);

}  // namespace breakeven::scheduler

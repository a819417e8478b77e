-- plan.sql: the cheapest way to serve a request rate within a latency objective.
--
-- Answers: to serve :rate requests/s of one workload of a model within an SLO, how many replicas
-- of each measured (dtype, device type, tp) configuration are needed, what do they cost per hour
-- and per million tokens, and what would an API charge for the same traffic? Feasible
-- configurations come first, cheapest per hour first; configurations with no load point meeting
-- the SLO follow, marked infeasible. `breakeven plan` runs this file.
--
-- Parameters:
--   :model       required; model name as stored in runs.model, e.g. 'tiny-15m'
--   :workload    required; workload name as stored in runs.workload, e.g. '512/512'
--   :rate        required; requests/s to serve, > 0
--   :slo         NULL (no objective) or a JSON object of limits in ms, keyed by load_points column:
--                '{"ttft_p95_ms": 500, "tpot_p95_ms": 50}'. Keys: ttft|tpot|itl|e2e, then
--                _p50|_p90|_p95|_p99|_mean, then _ms. A point meets the SLO when every named
--                value is present and at most its limit (an unknown key is never met).
--                `breakeven plan --slo ttft_p95=500ms,tpot_p95=50ms` passes this JSON.
--   :provider    GPU price source (a gpu_prices provider or its first words); NULL: the cheapest
--                price matching each device type; 'cpu' is priced by settings.cpu_usd_per_hour
--   :api         NULL or 'PROVIDER/MODEL' of api_prices (case-insensitive) to compare against
--
-- Each run counts once: only its latest attempt that recorded load points is used. A replica is
-- tp devices; a point that occupied more devices (several replicas) is scaled to one replica.
--
-- Columns:
--   rank                   1 = cheapest per hour; NULL for infeasible or unpriced rows
--   feasible               1 when some load point meets the SLO, else 0
--   dtype, device_type, tp the configuration
--   max_rate_per_replica   highest requests/s of one replica over the points meeting the SLO
--   replicas               ceil(:rate / max_rate_per_replica), at least 1
--   devices                replicas x tp
--   price_provider         where the device price comes from ('self' for cpu)
--   usd_per_device_hour    NULL when no price matches (the $ columns are then NULL)
--   usd_per_hour           replicas x tp x usd_per_device_hour
--   usd_per_month          usd_per_hour x 730
--   usd_per_mtok           usd_per_hour / (:rate x (IN + OUT) x 3600) x 1e6, at the traffic asked
--   api                    'PROVIDER/MODEL' as the catalog spells it
--   api_usd_per_hour       :rate x 3600 x (IN x input price + OUT x output price) / 1e6
--   api_usd_per_mtok       (IN x input price + OUT x output price) / (IN + OUT)
--   api_over_self          api_usd_per_hour / usd_per_hour (above 1: self-hosting is cheaper)
--   headroom               replicas x max_rate_per_replica / :rate - 1
--   input_tokens           IN, per request
--   output_tokens          OUT, per request, all samples (output_tokens x samples)
--   points                 load points measured for the configuration
--   points_meeting_slo     of which meet the SLO
--   run_id, point_index    the point that sets max_rate_per_replica
--   note                   why a row is infeasible or unpriced
WITH
params AS (
  SELECT :model AS model,
         :workload AS workload,
         :rate AS rate,
         :slo AS slo,
         nullif(lower(trim(:provider, char(32, 9, 10, 13))), '') AS provider,
         trim(substr(:api, 1, instr(:api, '/') - 1)) AS api_provider,
         trim(substr(:api, instr(:api, '/') + 1)) AS api_model
),
latest (run_id, attempt) AS (
  SELECT lp.run_id, max(lp.attempt)
  FROM load_points lp
  WHERE lp.run_id IN (SELECT r.id FROM runs r JOIN params p
                      ON r.model = p.model AND r.workload = p.workload)
  GROUP BY lp.run_id
),
points AS (
  SELECT r.dtype, r.device_type, r.tp, r.input_tokens, r.output_tokens * r.samples AS output_tokens,
         lp.run_id, lp.point_index,
         lp.requests_per_s * r.tp / max(lp.devices, r.tp) AS rate_per_replica,
         NOT EXISTS (
           SELECT 1 FROM json_each(p.slo) j
           WHERE coalesce(CASE j.key
                   WHEN 'ttft_p50_ms' THEN lp.ttft_p50_ms WHEN 'ttft_p90_ms' THEN lp.ttft_p90_ms
                   WHEN 'ttft_p95_ms' THEN lp.ttft_p95_ms WHEN 'ttft_p99_ms' THEN lp.ttft_p99_ms
                   WHEN 'ttft_mean_ms' THEN lp.ttft_mean_ms
                   WHEN 'tpot_p50_ms' THEN lp.tpot_p50_ms WHEN 'tpot_p90_ms' THEN lp.tpot_p90_ms
                   WHEN 'tpot_p95_ms' THEN lp.tpot_p95_ms WHEN 'tpot_p99_ms' THEN lp.tpot_p99_ms
                   WHEN 'tpot_mean_ms' THEN lp.tpot_mean_ms
                   WHEN 'itl_p50_ms' THEN lp.itl_p50_ms WHEN 'itl_p90_ms' THEN lp.itl_p90_ms
                   WHEN 'itl_p95_ms' THEN lp.itl_p95_ms WHEN 'itl_p99_ms' THEN lp.itl_p99_ms
                   WHEN 'itl_mean_ms' THEN lp.itl_mean_ms
                   WHEN 'e2e_p50_ms' THEN lp.e2e_p50_ms WHEN 'e2e_p90_ms' THEN lp.e2e_p90_ms
                   WHEN 'e2e_p95_ms' THEN lp.e2e_p95_ms WHEN 'e2e_p99_ms' THEN lp.e2e_p99_ms
                   WHEN 'e2e_mean_ms' THEN lp.e2e_mean_ms
                 END > j.value, 1)
         ) AS meets_slo
  FROM latest l
  JOIN load_points lp ON lp.run_id = l.run_id AND lp.attempt = l.attempt
  JOIN runs r ON r.id = l.run_id
  JOIN params p
),
ranked_points AS (
  SELECT *,
         count(*) OVER config AS points,
         sum(meets_slo) OVER config AS points_meeting_slo,
         row_number() OVER (config ORDER BY meets_slo DESC, rate_per_replica DESC, run_id DESC,
                                            point_index) AS best
  FROM points
  WINDOW config AS (PARTITION BY dtype, device_type, tp)
),
configs AS (
  SELECT dtype, device_type, tp, input_tokens, output_tokens,
         CASE WHEN meets_slo THEN run_id END AS run_id,
         CASE WHEN meets_slo THEN point_index END AS point_index,
         points, points_meeting_slo,
         CASE WHEN meets_slo THEN rate_per_replica END AS max_rate_per_replica
  FROM ranked_points
  WHERE best = 1
),
device_types (device_type) AS (
  SELECT DISTINCT device_type FROM configs
),
-- ---- device prices: begin (the same text in results.sql, compare.sql and plan.sql) ----
-- $/device-hour for each row of device_types, as db/price_store.h FindDevicePrice finds it:
-- 'cpu' (any case) is the settings row cpu_usd_per_hour, provider 'self'; a GPU takes the
-- cheapest gpu_prices row whose gpu matches, from params.provider (any provider when NULL).
-- Both names are normalised (lower case; blanks, '-' and '_' become one space; a leading
-- 'nvidia ' dropped) and match when one is a word prefix of the other: 'NVIDIA H100 80GB HBM3'
-- matches 'H100' but neither 'H100 SXM' nor 'H1000'.
spaced (name, n) AS (
  SELECT name,
         replace(replace(replace(replace(replace(lower(name),
                 char(9), ' '), char(10), ' '), char(13), ' '), '-', ' '), '_', ' ')
  FROM (SELECT device_type AS name FROM device_types UNION SELECT gpu FROM gpu_prices)
),
normalized (name, n) AS (
  SELECT name, CASE WHEN substr(n, 1, 7) = 'nvidia ' THEN substr(n, 8) ELSE n END
  FROM (SELECT name,
               trim(replace(replace(replace(replace(n, '  ', ' '), '  ', ' '), '  ', ' '),
                            '  ', ' ')) AS n
        FROM spaced)
),
gpu_matches AS (
  SELECT d.device_type, g.provider, g.usd_per_gpu_hour,
         row_number() OVER (PARTITION BY d.device_type
                            ORDER BY g.usd_per_gpu_hour, g.provider COLLATE NOCASE, g.provider,
                                     g.gpu COLLATE NOCASE, g.gpu) AS cheapest
  FROM device_types d
  JOIN normalized dn ON dn.name = d.device_type
  JOIN gpu_prices g
  JOIN normalized gn ON gn.name = g.gpu
  JOIN params p
  WHERE lower(trim(d.device_type, char(32, 9, 10, 13))) <> 'cpu'
    AND ((dn.n <> '' AND substr(gn.n, 1, length(dn.n)) = dn.n
          AND (length(gn.n) = length(dn.n) OR substr(gn.n, length(dn.n) + 1, 1) NOT GLOB '[0-9a-z]'
               OR substr(dn.n, -1) NOT GLOB '[0-9a-z]'))
      OR (gn.n <> '' AND substr(dn.n, 1, length(gn.n)) = gn.n
          AND (length(dn.n) = length(gn.n) OR substr(dn.n, length(gn.n) + 1, 1) NOT GLOB '[0-9a-z]'
               OR substr(gn.n, -1) NOT GLOB '[0-9a-z]')))
    AND (p.provider IS NULL
      OR (substr(lower(trim(g.provider, char(32, 9, 10, 13))), 1, length(p.provider)) = p.provider
          AND (length(trim(g.provider, char(32, 9, 10, 13))) = length(p.provider)
               OR substr(lower(trim(g.provider, char(32, 9, 10, 13))), length(p.provider) + 1, 1)
                    NOT GLOB '[0-9a-z]'
               OR substr(p.provider, -1) NOT GLOB '[0-9a-z]')))
),
device_prices (device_type, price_provider, usd_per_device_hour) AS (
  SELECT device_type, provider, usd_per_gpu_hour FROM gpu_matches WHERE cheapest = 1
  UNION ALL
  SELECT d.device_type, 'self', CAST(trim(s.value) AS REAL)
  FROM device_types d
  JOIN settings s ON s.key = 'cpu_usd_per_hour'
  WHERE lower(trim(d.device_type, char(32, 9, 10, 13))) = 'cpu'
    AND trim(s.value) GLOB '[0-9.]*' AND trim(s.value) NOT GLOB '*[^0-9.eE+-]*'
    AND CAST(trim(s.value) AS REAL) >= 0
),
-- ---- device prices: end ----
api AS (
  SELECT a.provider || '/' || a.model AS name, a.input_usd_per_mtok, a.output_usd_per_mtok
  FROM api_prices a
  JOIN params p
  WHERE lower(a.provider) = lower(p.api_provider) AND lower(a.model) = lower(p.api_model)
  ORDER BY a.provider = p.api_provider AND a.model = p.api_model DESC
  LIMIT 1
),
sized AS (
  -- replicas = ceil(q), q = rate / max rate; a q within 1e-9 (relative) above an integer counts
  -- as that integer (4.2 / 0.6 is 7.000000000000001 in binary floating point), as in
  -- bench/cost.cc
  SELECT c.*, x - x * 1e-9 AS q_less
  FROM (SELECT c.*, p.rate / c.max_rate_per_replica AS x FROM configs c JOIN params p) c
),
planned AS (
  SELECT s.*, dp.price_provider, dp.usd_per_device_hour,
         max(1, CAST(s.q_less AS INTEGER) + (s.q_less > CAST(s.q_less AS INTEGER))) AS replicas
  FROM sized s
  LEFT JOIN device_prices dp ON dp.device_type = s.device_type
  WHERE s.max_rate_per_replica > 0
  UNION ALL
  SELECT s.*, dp.price_provider, dp.usd_per_device_hour, NULL
  FROM sized s
  LEFT JOIN device_prices dp ON dp.device_type = s.device_type
  WHERE s.max_rate_per_replica IS NULL OR s.max_rate_per_replica <= 0
),
costed AS (
  SELECT pl.*, pl.replicas * pl.tp AS devices,
         pl.replicas * pl.tp * pl.usd_per_device_hour AS usd_per_hour,
         api.name AS api,
         p.rate * 3600 * (pl.input_tokens * api.input_usd_per_mtok
                          + pl.output_tokens * api.output_usd_per_mtok) / 1e6 AS api_usd_per_hour,
         (pl.input_tokens * api.input_usd_per_mtok + pl.output_tokens * api.output_usd_per_mtok)
           / nullif(pl.input_tokens + pl.output_tokens, 0) AS api_usd_per_mtok,
         p.rate * (pl.input_tokens + pl.output_tokens) * 3600 AS tokens_per_hour,
         pl.replicas * pl.max_rate_per_replica / p.rate - 1 AS headroom,
         CASE
           WHEN pl.replicas IS NULL THEN
             printf('infeasible: no load point meets the SLO (%d measured)', pl.points)
           WHEN pl.usd_per_device_hour IS NULL THEN
             CASE WHEN p.provider IS NULL THEN 'no price matches this device type'
                  ELSE 'no price for this device type from provider ''' || :provider || '''' END
         END AS note
  FROM planned pl
  JOIN params p
  LEFT JOIN api
),
ordered AS (
  SELECT c.*,
         row_number() OVER (ORDER BY replicas IS NULL, usd_per_hour IS NULL, usd_per_hour,
                                     devices, device_type, tp, dtype) AS position
  FROM costed c
)
SELECT CASE WHEN replicas IS NOT NULL AND usd_per_hour IS NOT NULL THEN position END AS rank,
       replicas IS NOT NULL AS feasible,
       dtype, device_type, tp, max_rate_per_replica, replicas, devices, price_provider,
       usd_per_device_hour, usd_per_hour, usd_per_hour * 730 AS usd_per_month,
       usd_per_hour / nullif(tokens_per_hour, 0) * 1e6 AS usd_per_mtok,
       api, api_usd_per_hour, api_usd_per_mtok,
       api_usd_per_hour / nullif(usd_per_hour, 0) AS api_over_self,
       headroom, input_tokens, output_tokens, points, points_meeting_slo, run_id, point_index,
       note
FROM ordered
ORDER BY position;

-- results.sql: every measured load point, one row each, with what a million tokens costs there.
--
-- Answers: what did each run measure at each operating point (throughput, latency percentiles,
-- MBU/MFU), and what does a million tokens (input + output) cost at that point when the devices
-- are busy all the hours they are paid for (utilization 1)? `breakeven results` runs this file.
--
-- Parameters (each may be NULL or unset: no filter):
--   :matrix    matrix name or numeric id
--   :run       run id
--   :model     model name as stored in runs.model, e.g. 'tiny-15m'
--   :provider  where GPU prices come from: a gpu_prices provider or its first words ('RunPod'
--              selects 'RunPod Secure' and 'RunPod Community'), case-insensitive; NULL: the
--              cheapest price that matches each device type. The device type 'cpu' is always
--              priced by the settings row cpu_usd_per_hour.
--
-- Each run counts once: only its latest attempt that recorded load points is shown (the points
-- of an earlier, retried attempt are not).
--
-- Columns (latencies in milliseconds; docs/metrics.md defines them):
--   run_id, matrix, batch        the run, its matrix's name, which firing of the matrix
--   model, weights, dtype        what was served
--   workload                     workload name, e.g. '512/512' or 'shared-prefix'
--   input_tokens, output_tokens  per request as specified (output per sample)
--   prefix_tokens, samples       shared prompt tokens (part of input_tokens); n samples/prompt
--   tp, device_type, nodes       tensor-parallel ranks; device type; node names in rank order
--   attempt, point_index         the attempt the points come from; the point within it
--   kind, target                 sync|concurrency|rate|throughput; concurrency or requests/s
--   measured                     1 measured, 0 simulated
--   requests, failed, duration_s requests counted, of which failed; measured window
--   requests_per_s, output_tokens_per_s, total_tokens_per_s, goodput_requests_per_s
--   slo_attainment               share of requests that met the run's SLO (NULL: no SLO)
--   ttft_*, tpot_*, itl_*, e2e_* p50 p90 p95 p99 mean max, in ms
--   mbu, mfu                     of the node's calibrated bandwidth / matrix rate
--   devices                      devices the point occupied
--   device_s_per_mtok            device-seconds per million total tokens
--                                  = devices x duration_s / (input + output tokens) x 1e6
--   usd_per_device_hour          the device price used; NULL when there is none
--   usd_per_mtok                 = device_s_per_mtok x usd_per_device_hour / 3600
--   price_provider               where the price comes from ('self' for cpu)
WITH
params AS (
  SELECT :matrix AS matrix,
         :run AS run,
         :model AS model,
         nullif(lower(trim(:provider, char(32, 9, 10, 13))), '') AS provider
),
selected_runs (id) AS (
  SELECT r.id
  FROM runs r
  JOIN matrices m ON m.id = r.matrix_id
  JOIN params p
  WHERE (p.matrix IS NULL OR m.name = p.matrix OR m.id = p.matrix)
    AND (p.run IS NULL OR r.id = p.run)
    AND (p.model IS NULL OR r.model = p.model)
),
latest (run_id, attempt) AS (
  SELECT run_id, max(attempt) FROM load_points
  WHERE run_id IN (SELECT id FROM selected_runs)
  GROUP BY run_id
),
points AS (
  SELECT r.id AS run_id, m.name AS matrix, r.batch, r.model, r.weights, r.dtype, r.workload,
         r.input_tokens, r.output_tokens, r.prefix_tokens, r.samples, r.tp, r.device_type,
         a.nodes, lp.attempt, lp.point_index, lp.kind, lp.target, lp.measured, lp.requests,
         lp.failed, lp.duration_s, lp.requests_per_s, lp.output_tokens_per_s,
         lp.total_tokens_per_s, lp.goodput_requests_per_s, lp.slo_attainment,
         lp.ttft_p50_ms, lp.ttft_p90_ms, lp.ttft_p95_ms, lp.ttft_p99_ms, lp.ttft_mean_ms,
         lp.ttft_max_ms,
         lp.tpot_p50_ms, lp.tpot_p90_ms, lp.tpot_p95_ms, lp.tpot_p99_ms, lp.tpot_mean_ms,
         lp.tpot_max_ms,
         lp.itl_p50_ms, lp.itl_p90_ms, lp.itl_p95_ms, lp.itl_p99_ms, lp.itl_mean_ms, lp.itl_max_ms,
         lp.e2e_p50_ms, lp.e2e_p90_ms, lp.e2e_p95_ms, lp.e2e_p99_ms, lp.e2e_mean_ms, lp.e2e_max_ms,
         lp.mbu, lp.mfu, lp.devices,
         coalesce(lp.device_seconds_per_mtok_total,
                  lp.devices * lp.duration_s / nullif(lp.input_tokens + lp.output_tokens, 0) * 1e6)
           AS device_s_per_mtok
  FROM runs r
  JOIN matrices m ON m.id = r.matrix_id
  JOIN latest l ON l.run_id = r.id
  JOIN load_points lp ON lp.run_id = l.run_id AND lp.attempt = l.attempt
  LEFT JOIN run_attempts a ON a.run_id = l.run_id AND a.attempt = l.attempt
),
device_types (device_type) AS (  -- from runs, so `points` need not be materialised twice
  SELECT DISTINCT r.device_type FROM runs r JOIN selected_runs s ON s.id = r.id
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
)
-- ---- device prices: end ----
SELECT pt.*,
       dp.usd_per_device_hour,
       pt.device_s_per_mtok * dp.usd_per_device_hour / 3600 AS usd_per_mtok,
       dp.price_provider
FROM points pt
LEFT JOIN device_prices dp ON dp.device_type = pt.device_type
ORDER BY pt.run_id, pt.point_index;

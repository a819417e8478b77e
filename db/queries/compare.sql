-- compare.sql: self-hosting a model against paying an API per token, per measured configuration.
--
-- Answers: for each (workload, dtype, device type, tp) the model was measured on, what does a
-- million tokens cost self-hosted at its highest-throughput load point, what does the API charge
-- for the same mix of input and output tokens, and at what utilization and monthly volume do the
-- two break even? `breakeven compare` runs this file. Formulas: docs/queries.md, docs/cost.md.
--
-- Parameters:
--   :model        required; model name as stored in runs.model, e.g. 'tiny-15m'
--   :api          required; 'PROVIDER/MODEL' of api_prices, case-insensitive, e.g.
--                 'OpenAI/gpt-4o-mini' (no match: the api_* columns are NULL)
--   :provider     GPU price source (a gpu_prices provider or its first words); NULL: the cheapest
--                 price matching each device type; 'cpu' is priced by settings.cpu_usd_per_hour
--   :utilization  share of paid device hours that carry load, in (0, 1]; NULL: 1
--   :workload     NULL or a workload name, e.g. '512/512'
--   :device       NULL or a device type, or one or more whole words of it ('H100' selects
--                 'NVIDIA H100 80GB HBM3'), case-insensitive
--   :tp           NULL or a tensor-parallel degree
--
-- Each run counts once: only its latest attempt that recorded load points is used. A replica is
-- tp devices; a point that occupied more devices (several replicas) is scaled to one replica.
--
-- Columns:
--   workload                   workload name
--   input_tokens               per request
--   output_tokens              per request, all samples (output_tokens x samples)
--   dtype, device_type, tp     the configuration
--   run_id, point_index        the load point used: the one with the highest total tokens/s
--   kind, target               that point's load (sync|concurrency|rate|throughput; its target)
--   requests_per_s             requests/s at that point, one replica
--   total_tokens_per_s         input + output tokens/s at that point, one replica: its capacity
--   price_provider             where the device price comes from ('self' for cpu)
--   usd_per_device_hour        NULL when no price matches (every $ column is then NULL)
--   usd_per_hour               one replica: tp x usd_per_device_hour
--   utilization                the utilization the self_* columns assume
--   self_usd_per_mtok_input    device-s per Mtok of input x $/device-hour / 3600 / utilization
--   self_usd_per_mtok_output   the same per Mtok of output
--   self_usd_per_mtok          the same per Mtok of input + output (blended)
--   api                        'PROVIDER/MODEL' as the catalog spells it
--   api_usd_per_mtok           (IN x input price + OUT x output price) / (IN + OUT), per request
--   self_over_api              self_usd_per_mtok / api_usd_per_mtok (below 1: self-hosting wins)
--   breakeven_utilization      u* = self $/Mtok at utilization 1 / api_usd_per_mtok; above it
--                              self-hosting is cheaper (above 1: never)
--   breakeven_mtok_per_month   V* = usd_per_hour x 730 / api_usd_per_mtok: the monthly volume (in
--                              Mtok) whose API bill equals one replica's cost
--   capacity_mtok_per_month    what one replica serves in a month at total_tokens_per_s
WITH
params AS (
  SELECT :model AS model,
         nullif(lower(trim(:provider, char(32, 9, 10, 13))), '') AS provider,
         CASE WHEN :utilization IS NULL THEN 1.0
              WHEN :utilization > 0 THEN min(:utilization, 1.0) END AS utilization,
         trim(substr(:api, 1, instr(:api, '/') - 1)) AS api_provider,
         trim(substr(:api, instr(:api, '/') + 1)) AS api_model,
         :workload AS workload,
         nullif(lower(trim(:device)), '') AS device,
         :tp AS tp
),
latest (run_id, attempt) AS (
  SELECT lp.run_id, max(lp.attempt)
  FROM load_points lp
  WHERE lp.run_id IN (SELECT r.id FROM runs r JOIN params p ON r.model = p.model)
  GROUP BY lp.run_id
),
points AS (
  SELECT lp.id, r.workload, r.input_tokens, r.output_tokens * r.samples AS output_tokens, r.dtype,
         r.device_type, r.tp, lp.run_id, lp.point_index,
         -- one replica's share of the point (a point may occupy tp x replicas devices)
         lp.total_tokens_per_s * r.tp / max(lp.devices, r.tp) AS total_tokens_per_s
  FROM latest l
  JOIN load_points lp ON lp.run_id = l.run_id AND lp.attempt = l.attempt
  JOIN runs r ON r.id = l.run_id
  JOIN params p
  WHERE (p.workload IS NULL OR r.workload = p.workload)
    AND (p.tp IS NULL OR r.tp = p.tp)
    AND (p.device IS NULL OR lower(r.device_type) = p.device
         OR ' ' || lower(r.device_type) || ' ' LIKE '% ' || p.device || ' %')
),
ranked AS (  -- narrow rows, so the window's sort stays cheap
  SELECT *,
         row_number() OVER (PARTITION BY workload, input_tokens, output_tokens, dtype,
                                         device_type, tp
                            ORDER BY total_tokens_per_s DESC, run_id DESC, point_index) AS k
  FROM points
),
best AS (
  SELECT b.workload, b.input_tokens, b.output_tokens, b.dtype, b.device_type, b.tp, b.run_id,
         b.point_index, lp.kind, lp.target,
         lp.requests_per_s * b.tp / max(lp.devices, b.tp) AS requests_per_s,
         b.total_tokens_per_s,
         coalesce(lp.device_seconds_per_mtok_input,
                  lp.devices * lp.duration_s / nullif(lp.input_tokens, 0) * 1e6) AS ds_input,
         coalesce(lp.device_seconds_per_mtok_output,
                  lp.devices * lp.duration_s / nullif(lp.output_tokens, 0) * 1e6) AS ds_output,
         coalesce(lp.device_seconds_per_mtok_total,
                  lp.devices * lp.duration_s / nullif(lp.input_tokens + lp.output_tokens, 0)
                    * 1e6) AS ds_total
  FROM ranked b
  JOIN load_points lp ON lp.id = b.id
  WHERE b.k = 1
),
device_types (device_type) AS (
  SELECT DISTINCT device_type FROM best
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
costed AS (
  SELECT b.*, dp.price_provider, dp.usd_per_device_hour,
         b.tp * dp.usd_per_device_hour AS usd_per_hour,
         p.utilization,
         b.ds_total * dp.usd_per_device_hour / 3600 AS self_full_use,
         api.name AS api,
         (b.input_tokens * api.input_usd_per_mtok + b.output_tokens * api.output_usd_per_mtok)
           / nullif(b.input_tokens + b.output_tokens, 0) AS api_usd_per_mtok
  FROM best b
  JOIN params p
  LEFT JOIN device_prices dp ON dp.device_type = b.device_type
  LEFT JOIN api
)
SELECT workload, input_tokens, output_tokens, dtype, device_type, tp, run_id, point_index, kind,
       target, requests_per_s, total_tokens_per_s, price_provider, usd_per_device_hour,
       usd_per_hour, utilization,
       ds_input * usd_per_device_hour / 3600 / utilization AS self_usd_per_mtok_input,
       ds_output * usd_per_device_hour / 3600 / utilization AS self_usd_per_mtok_output,
       self_full_use / utilization AS self_usd_per_mtok,
       api, api_usd_per_mtok,
       self_full_use / utilization / nullif(api_usd_per_mtok, 0) AS self_over_api,
       self_full_use / nullif(api_usd_per_mtok, 0) AS breakeven_utilization,
       usd_per_hour * 730 / nullif(api_usd_per_mtok, 0) AS breakeven_mtok_per_month,
       total_tokens_per_s * 3600 * 730 / 1e6 AS capacity_mtok_per_month
FROM costed
ORDER BY workload, input_tokens, output_tokens, self_usd_per_mtok IS NULL, self_usd_per_mtok,
         dtype, device_type, tp;

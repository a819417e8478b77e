-- prices.sql: the price catalog in one table: GPU rental prices, API prices and the operator's
-- own prices (settings), one row per price.
--
-- Answers: what does each provider charge per GPU-hour and per million API tokens, and what does
-- a CPU node cost here? `breakeven prices` runs this file (`--table specs` runs gpu_specs.sql).
--
-- Parameters:
--   :table  NULL (everything), 'gpu' (gpu_prices), 'api' (api_prices) or 'settings'
--
-- Columns:
--   table                      gpu, api or settings
--   provider                   who charges it ('self' for settings)
--   item                       the GPU, the API model, or the setting's key
--   usd_per_hour               gpu: $ per GPU-hour; settings: the value of a *_usd_per_hour key
--   input_usd_per_mtok         api: $ per million input tokens
--   output_usd_per_mtok        api: $ per million output tokens
--   cached_input_usd_per_mtok  api: $ per million cached input tokens, when the provider has it
--   value                      settings: the value as stored
--   source, as_of              where the price was read and the date that source gives
SELECT "table", provider, item, usd_per_hour, input_usd_per_mtok, output_usd_per_mtok,
       cached_input_usd_per_mtok, value, source, as_of
FROM (
  SELECT 1 AS section, 'gpu' AS "table", provider, gpu AS item, usd_per_gpu_hour AS usd_per_hour,
         NULL AS input_usd_per_mtok, NULL AS output_usd_per_mtok,
         NULL AS cached_input_usd_per_mtok, NULL AS value, source, as_of
  FROM gpu_prices
  UNION ALL
  SELECT 2, 'api', provider, model, NULL, input_usd_per_mtok, output_usd_per_mtok,
         cached_input_usd_per_mtok, NULL, source, as_of
  FROM api_prices
  UNION ALL
  SELECT 3, 'settings', 'self', key,
         CASE WHEN key LIKE '%usd_per_hour' AND trim(value) GLOB '[0-9.]*'
                   AND trim(value) NOT GLOB '*[^0-9.eE+-]*' THEN CAST(trim(value) AS REAL) END,
         NULL, NULL, NULL, value, 'settings', NULL
  FROM settings
)
WHERE :table IS NULL OR "table" = lower(:table)
ORDER BY section, provider COLLATE NOCASE, provider, item COLLATE NOCASE, item;

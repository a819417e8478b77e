-- Benchmark matrices, the runs they expand into, their attempts, the measured load points and
-- per-request records; and the price catalog the economics are computed with.
-- Times are Unix milliseconds (UTC); durations in the column name's unit.

CREATE TABLE matrices (
  id                  INTEGER PRIMARY KEY,
  name                TEXT    NOT NULL,
  spec_yaml           TEXT    NOT NULL,           -- the file as submitted
  schedule            TEXT,                        -- cron expression; NULL: run once
  next_fire_unix_ms   INTEGER,                     -- when the schedule fires next
  fired               INTEGER NOT NULL DEFAULT 0,  -- batches created so far
  submitted_at_unix_ms INTEGER NOT NULL,
  enabled             INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1))
);

CREATE TABLE runs (
  id                  INTEGER PRIMARY KEY,
  matrix_id           INTEGER NOT NULL REFERENCES matrices (id) ON DELETE CASCADE,
  batch               INTEGER NOT NULL,            -- which firing of the matrix (1 = submission)
  model               TEXT    NOT NULL,
  weights             TEXT    NOT NULL,            -- dummy, or a path present on the nodes
  dtype               TEXT    NOT NULL,
  workload            TEXT    NOT NULL,            -- name, e.g. "128/1024" or "shared-prefix"
  input_tokens        INTEGER NOT NULL,
  output_tokens       INTEGER NOT NULL,
  prefix_tokens       INTEGER NOT NULL DEFAULT 0,  -- shared system prompt (part of input_tokens)
  samples             INTEGER NOT NULL DEFAULT 1,  -- n samples per prompt
  tp                  INTEGER NOT NULL CHECK (tp >= 1),
  device_type         TEXT    NOT NULL,            -- "cpu" or a GPU name as nodes report it
  allow_multi_host    INTEGER NOT NULL DEFAULT 0,
  kv_cache_mib        INTEGER NOT NULL,            -- per rank
  load_json           TEXT    NOT NULL,            -- workload, load plan, SLO, seed (JSON)
  load_summary        TEXT    NOT NULL,            -- the plan in words: "sweep 6 points x 10s"
  repeat_index        INTEGER NOT NULL DEFAULT 0,
  state               TEXT    NOT NULL CHECK (state IN ('PENDING', 'PLACED', 'STARTING', 'RUNNING',
                                                        'SUCCEEDED', 'FAILED', 'CANCELLED')),
  reason              TEXT,                        -- why PENDING, or why FAILED
  attempt             INTEGER NOT NULL DEFAULT 0,  -- current attempt; 0 before the first
  max_attempts        INTEGER NOT NULL DEFAULT 2,
  created_at_unix_ms  INTEGER NOT NULL,
  started_at_unix_ms  INTEGER,
  finished_at_unix_ms INTEGER,
  progress            REAL    NOT NULL DEFAULT 0,  -- 0..1 of the current attempt
  points_done         INTEGER NOT NULL DEFAULT 0,
  points_planned      INTEGER NOT NULL DEFAULT 1   -- what the load plan runs (slo-search: at most)
);
CREATE INDEX runs_by_state ON runs (state, id);
CREATE INDEX runs_by_matrix ON runs (matrix_id, batch);

CREATE TABLE run_attempts (
  run_id              INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  attempt             INTEGER NOT NULL,
  placement_json      TEXT    NOT NULL,            -- [{node, node_id, ranks: [..], devices: [..]}]
  state               TEXT    NOT NULL CHECK (state IN ('STARTING', 'RUNNING', 'SUCCEEDED',
                                                        'FAILED', 'CANCELLED')),
  error               TEXT,
  started_at_unix_ms  INTEGER NOT NULL,
  finished_at_unix_ms INTEGER,
  software_version    TEXT,                        -- of the scheduler that placed it
  backend             TEXT    NOT NULL,            -- compute backend of the workers: cpu, cuda
  nodes               TEXT    NOT NULL,            -- node names, comma-separated, rank order
  devices             INTEGER NOT NULL,            -- devices held (a CPU node counts as one)
  device_names        TEXT    NOT NULL,            -- e.g. "NVIDIA H100 80GB HBM3" or the CPU model
  measured            INTEGER NOT NULL DEFAULT 1,  -- 0: simulated
  PRIMARY KEY (run_id, attempt)
) WITHOUT ROWID;

-- One measured operating point of a run attempt. Latencies in milliseconds; the definitions are
-- in docs/metrics.md. Costs are stored price-free, as device-seconds per million tokens.
CREATE TABLE load_points (
  id                  INTEGER PRIMARY KEY,
  run_id              INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  attempt             INTEGER NOT NULL,
  point_index         INTEGER NOT NULL,
  kind                TEXT    NOT NULL CHECK (kind IN ('sync', 'concurrency', 'rate', 'throughput')),
  target              REAL    NOT NULL,            -- concurrency, or requests/s for rates
  measured            INTEGER NOT NULL DEFAULT 1,  -- 0: simulated (sim backend)
  requests            INTEGER NOT NULL,
  failed              INTEGER NOT NULL,
  input_tokens        INTEGER NOT NULL,
  output_tokens       INTEGER NOT NULL,
  duration_s          REAL    NOT NULL,
  requests_per_s      REAL    NOT NULL,
  output_tokens_per_s REAL    NOT NULL,
  total_tokens_per_s  REAL    NOT NULL,
  goodput_requests_per_s REAL,                     -- requests meeting the SLO per second
  slo_attainment      REAL,                        -- share of requests meeting the SLO
  ttft_p50_ms REAL, ttft_p90_ms REAL, ttft_p95_ms REAL, ttft_p99_ms REAL, ttft_mean_ms REAL, ttft_max_ms REAL,
  tpot_p50_ms REAL, tpot_p90_ms REAL, tpot_p95_ms REAL, tpot_p99_ms REAL, tpot_mean_ms REAL, tpot_max_ms REAL,
  itl_p50_ms  REAL, itl_p90_ms  REAL, itl_p95_ms  REAL, itl_p99_ms  REAL, itl_mean_ms  REAL, itl_max_ms  REAL,
  e2e_p50_ms  REAL, e2e_p90_ms  REAL, e2e_p95_ms  REAL, e2e_p99_ms  REAL, e2e_mean_ms  REAL, e2e_max_ms  REAL,
  mbu                 REAL,                        -- of the node's calibrated bandwidth
  mfu                 REAL,                        -- of the node's calibrated matrix rate
  device_seconds_per_mtok_input  REAL,
  device_seconds_per_mtok_output REAL,
  device_seconds_per_mtok_total  REAL,
  devices             INTEGER NOT NULL,            -- devices the point occupied (tp x replicas)
  created_at_unix_ms  INTEGER NOT NULL,
  UNIQUE (run_id, attempt, point_index)
);
CREATE INDEX load_points_by_run ON load_points (run_id);

-- Every request of every load point: the raw data any metric can be recomputed from.
CREATE TABLE requests (
  load_point_id       INTEGER NOT NULL REFERENCES load_points (id) ON DELETE CASCADE,
  request_index       INTEGER NOT NULL,
  scheduled_ms        REAL    NOT NULL,            -- arrival time, from the point's start
  sent_ms             REAL    NOT NULL,            -- when it was handed to the engine
  first_token_ms      REAL,                        -- NULL when it failed before any token
  last_token_ms       REAL,
  input_tokens        INTEGER NOT NULL,
  output_tokens       INTEGER NOT NULL,
  chunks              INTEGER NOT NULL,            -- distinct token arrival times
  ok                  INTEGER NOT NULL,
  PRIMARY KEY (load_point_id, request_index)
) WITHOUT ROWID;

CREATE TABLE gpu_prices (
  id                  INTEGER PRIMARY KEY,
  provider            TEXT    NOT NULL,
  gpu                 TEXT    NOT NULL,            -- matched against device types
  usd_per_gpu_hour    REAL    NOT NULL CHECK (usd_per_gpu_hour >= 0),
  source              TEXT    NOT NULL,
  as_of               TEXT    NOT NULL,
  UNIQUE (provider, gpu)
);

CREATE TABLE api_prices (
  id                  INTEGER PRIMARY KEY,
  provider            TEXT    NOT NULL,
  model               TEXT    NOT NULL,
  input_usd_per_mtok  REAL    NOT NULL CHECK (input_usd_per_mtok >= 0),
  output_usd_per_mtok REAL    NOT NULL CHECK (output_usd_per_mtok >= 0),
  cached_input_usd_per_mtok REAL,
  source              TEXT    NOT NULL,
  as_of               TEXT    NOT NULL,
  UNIQUE (provider, model)
);

CREATE TABLE gpu_specs (
  gpu                 TEXT    PRIMARY KEY,
  mem_gib             REAL,
  hbm_tb_s            REAL,
  bf16_dense_tflops   REAL,
  fp8_dense_tflops    REAL,
  nvlink_gb_s         REAL,
  tdp_w               REAL,
  source              TEXT    NOT NULL
);

-- Operator settings (e.g. cpu_usd_per_hour: what a CPU node costs per hour).
CREATE TABLE settings (
  key                 TEXT PRIMARY KEY,
  value               TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO settings (key, value) VALUES ('cpu_usd_per_hour', '0.10');

-- Node calibration: measured roofline per device (the denominators of MBU and MFU).
ALTER TABLE devices ADD COLUMN bandwidth_gb_s REAL;
ALTER TABLE devices ADD COLUMN matmul_tflops REAL;

-- Run history (placements, state changes, failures) joins the node history.
ALTER TABLE events ADD COLUMN run_id INTEGER REFERENCES runs (id) ON DELETE SET NULL;

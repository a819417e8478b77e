-- Cluster membership: node agents, their devices, and the event history.
-- Times are Unix milliseconds (UTC). Written only by the scheduler.

CREATE TABLE nodes (
  id                         INTEGER PRIMARY KEY,
  name                       TEXT    NOT NULL UNIQUE,  -- --name of the agent; the node's identity
  hostname                   TEXT    NOT NULL,
  version                    TEXT    NOT NULL,         -- agent software version
  boot_id                    TEXT    NOT NULL,         -- random per agent process start
  address                    TEXT,                     -- peer address of the last connection
  liveness                   TEXT    NOT NULL CHECK (liveness IN ('UP', 'SUSPECT', 'DOWN')),
  liveness_since_unix_ms     INTEGER NOT NULL,
  drain_reason               TEXT,                     -- NULL unless an operator drained it
  drained_at_unix_ms         INTEGER,
  registered_at_unix_ms      INTEGER NOT NULL,         -- first registration ever
  last_registered_at_unix_ms INTEGER NOT NULL,
  last_heartbeat_unix_ms     INTEGER,                  -- flushed in batches, about once a second
  restarts                   INTEGER NOT NULL DEFAULT 0 CHECK (restarts >= 0),
  CHECK ((drain_reason IS NULL) = (drained_at_unix_ms IS NULL))
);

CREATE TABLE devices (
  node_id            INTEGER NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
  kind               TEXT    NOT NULL CHECK (kind IN ('cpu', 'cuda')),
  idx                INTEGER NOT NULL,    -- CUDA ordinal; 0 for the CPU
  name               TEXT    NOT NULL,
  uuid               TEXT,
  memory_bytes       INTEGER NOT NULL CHECK (memory_bytes >= 0),
  compute_units      INTEGER NOT NULL,    -- SMs or CPU cores
  compute_capability TEXT,
  PRIMARY KEY (node_id, kind, idx)
) WITHOUT ROWID;

CREATE TABLE events (
  id         INTEGER PRIMARY KEY,
  at_unix_ms INTEGER NOT NULL,
  node_id    INTEGER REFERENCES nodes (id) ON DELETE SET NULL,
  kind       TEXT    NOT NULL,   -- registered, restarted, reconnected, state, drain, resume
  detail     TEXT    NOT NULL
);
CREATE INDEX events_by_node ON events (node_id, id);

-- The state `breakeven nodes` shows, for SQL users. Kept equal to scheduler/node_state.cc by a
-- test: DOWN wins; an operator's drain shows next (DRAINING while runs are active, DRAINED when
-- idle; no runs exist at this schema version); then liveness.
CREATE VIEW node_status AS
SELECT n.id,
       n.name,
       CASE
         WHEN n.liveness = 'DOWN' THEN 'DOWN'
         WHEN n.drain_reason IS NOT NULL THEN 'DRAINED'
         ELSE n.liveness
       END AS state,
       n.drain_reason,
       n.liveness,
       n.last_heartbeat_unix_ms,
       n.restarts,
       (SELECT count(*) FROM devices d WHERE d.node_id = n.id) AS device_count,
       (SELECT coalesce(sum(d.memory_bytes), 0) FROM devices d WHERE d.node_id = n.id) AS memory_bytes
FROM nodes n;

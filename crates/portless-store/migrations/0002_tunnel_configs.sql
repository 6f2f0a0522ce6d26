-- Portless store schema, version 2: remotely managed connector configs.
--
-- Portable SQL, as in 0001 (TEXT, BIGINT; no SQLite functions).

-- One row per tunnel that has a remotely managed config: the connector YAML the edge pushes to
-- that tunnel's connectors. `version` starts at 1 and grows by one on every change, so a
-- connector applies each version once and can tell a stale update from a new one.
CREATE TABLE tunnel_configs (
    tunnel_id TEXT PRIMARY KEY REFERENCES tunnels (id) ON DELETE CASCADE,
    version BIGINT NOT NULL,
    yaml TEXT NOT NULL,
    -- Unix seconds.
    updated_at BIGINT NOT NULL
);

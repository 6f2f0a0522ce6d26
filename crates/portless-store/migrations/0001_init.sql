-- Portless store schema, version 1.
--
-- Written in SQL that both SQLite and PostgreSQL accept (TEXT, BIGINT, INTEGER; no BLOB, no
-- AUTOINCREMENT, no SQLite functions), so one migration set can serve both backends.
-- Never edit a migration once released: sqlx records its checksum and refuses a changed file.
-- Add a new numbered file instead.

-- The single account this edge serves; its tag goes into connector credentials ("AccountTag").
CREATE TABLE account (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    tag TEXT NOT NULL
);

CREATE TABLE tunnels (
    -- Hyphenated UUID, as connectors present it.
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    -- Hex SHA-256 of the tunnel secret. The secret itself is never stored.
    secret_hash TEXT NOT NULL,
    -- The hash replaced by the last rotation, still accepted while now < previous_valid_until
    -- (unix seconds), so connectors can be re-tokened without an outage.
    previous_secret_hash TEXT,
    previous_valid_until BIGINT,
    -- Unix seconds.
    created_at BIGINT NOT NULL
);

CREATE TABLE routes (
    -- Canonical form: lowercase ASCII, no trailing dot, no port; "*." prefix for a wildcard.
    hostname TEXT PRIMARY KEY,
    tunnel_id TEXT NOT NULL REFERENCES tunnels (id) ON DELETE CASCADE
);

CREATE INDEX routes_tunnel_id ON routes (tunnel_id);

-- One row, bumped in the same transaction as every tunnel or route change, so an edge can poll
-- one integer and reload its routing table only when it moved.
CREATE TABLE routes_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);

INSERT INTO routes_version (id, version) VALUES (1, 0);

-- Free-form edge settings, for values that must be shared by every edge using this store.
CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

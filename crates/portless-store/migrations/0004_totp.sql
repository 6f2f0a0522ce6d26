-- Portless store schema, version 4: TOTP second factors.
--
-- Portable SQL, as in 0001 (TEXT, BIGINT; no BLOB, no SQLite functions).

-- One row per user with a confirmed TOTP second factor.
CREATE TABLE totp (
    -- Canonical username (lowercase), as in the users file.
    username TEXT PRIMARY KEY,
    -- The TOTP seed sealed by the edge's secrets key (AES-256-GCM, bound to the username),
    -- base64 (standard alphabet, padded). The seed itself is never stored in the clear.
    sealed_secret TEXT NOT NULL,
    -- The last accepted time step (unix seconds / period). A code is accepted only for a later
    -- step, so a code cannot be replayed; advanced with a conditional UPDATE so two edges
    -- cannot both accept the same code.
    last_step BIGINT,
    -- Unix seconds.
    created_at BIGINT NOT NULL
);

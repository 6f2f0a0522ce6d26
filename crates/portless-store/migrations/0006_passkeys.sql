-- Portless store schema, version 6: WebAuthn passkeys.
--
-- Portable SQL, as in 0001 (TEXT, BIGINT; no BLOB, no SQLite functions).

-- One row per registered passkey (a user may have several).
CREATE TABLE passkeys (
    -- The credential id the authenticator chose, base64url without padding. Unique across
    -- all users: a credential registered to one user can never be bound to another.
    credential_id TEXT PRIMARY KEY,
    -- Canonical username (lowercase), as in the users file.
    username TEXT NOT NULL,
    -- The WebAuthn user handle (a UUID) the passkey was created for: the same for all of a
    -- user's passkeys, returned by the authenticator in a passwordless login.
    user_handle TEXT NOT NULL,
    -- The name the user gave the passkey (shown in the settings page).
    name TEXT NOT NULL,
    -- The credential as webauthn-rs serializes it (JSON: public key, algorithm, flags).
    -- Nothing secret: the private key never leaves the authenticator.
    passkey TEXT NOT NULL,
    -- The authenticator's signature counter at the last accepted use (0 = it keeps none).
    -- Advanced with a conditional UPDATE so a counter can only move forward.
    counter BIGINT NOT NULL,
    -- Unix seconds.
    created_at BIGINT NOT NULL,
    -- Unix seconds of the last accepted login with this passkey, if any.
    last_used_at BIGINT
);

CREATE INDEX passkeys_username ON passkeys (username);

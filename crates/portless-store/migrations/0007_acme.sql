-- Portless store schema, version 7: ACME accounts and the certificates obtained with them.
--
-- Portable SQL, as in 0001 (TEXT, BIGINT; no BLOB, no SQLite functions).
--
-- Kept in the store rather than in per-edge files so every edge sharing the store serves the
-- same certificates and registers one account per directory. Private keys are stored in the
-- clear, like the signing keys of 0005: the store file is created mode 0600 in a 0700
-- directory; whoever can read it can impersonate the edge's hostnames, so protect and back it
-- up like the CA key.

-- One ACME account per directory URL.
CREATE TABLE acme_accounts (
    -- The directory URL the account was created at.
    directory TEXT PRIMARY KEY,
    -- The account's credentials as instant-acme serializes them (JSON: account URL, PKCS#8
    -- private key, directory).
    credentials TEXT NOT NULL,
    -- Unix seconds.
    created_at BIGINT NOT NULL
);

-- The current certificate of each hostname (one name per certificate). A renewal replaces
-- the row only once the new certificate is issued, so a failed renewal keeps the old one.
CREATE TABLE certificates (
    -- Canonical hostname (lowercase ASCII, no trailing dot).
    hostname TEXT PRIMARY KEY,
    -- PEM chain, leaf first.
    chain_pem TEXT NOT NULL,
    -- PEM private key (PKCS#8).
    key_pem TEXT NOT NULL,
    -- Validity of the leaf, unix seconds.
    not_before BIGINT NOT NULL,
    not_after BIGINT NOT NULL,
    -- The directory URL that issued it.
    issuer TEXT NOT NULL,
    -- Unix seconds of the last write.
    updated_at BIGINT NOT NULL
);

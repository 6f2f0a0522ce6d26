-- Portless store schema, version 5: the keys that sign identity assertions.
--
-- Portable SQL, as in 0001 (TEXT, BIGINT; no BLOB, no SQLite functions).

-- ES256 (P-256) signing keys of the identity assertions the edge forwards to origins. Every edge
-- sharing this store signs with the same current key, so an origin or connector trusts one JWKS
-- whichever edge served the request. The private key is stored here, like the tunnel secrets'
-- hashes, in the store file that is created mode 0600.
CREATE TABLE signing_keys (
    -- The key id (JWK `kid`): base64url of the start of the SHA-256 of the public key.
    kid TEXT PRIMARY KEY,
    -- The private key, PKCS#8 DER, standard base64.
    pkcs8 TEXT NOT NULL,
    -- Unix seconds.
    created_at BIGINT NOT NULL,
    -- Unix seconds at which the key stopped signing (it still verifies for the overlap
    -- period); NULL while it signs.
    retired_at BIGINT
);

-- API keys of backend clients. Only the SHA-256 of the secret is kept: the
-- secret is 256 random bits, so a fast hash leaves nothing to guess, and
-- every call with a key is one point lookup by key_hash. Scopes are
-- space-separated. Revocation sets revoked_at.
CREATE TABLE IF NOT EXISTS api_keys (
    id           UUID        NOT NULL,
    user_id      UUID        NOT NULL,
    name         TEXT        NOT NULL,
    prefix       TEXT        NOT NULL,
    key_hash     BYTEA       NOT NULL,
    scopes       TEXT        NOT NULL,
    expires_at   TIMESTAMPTZ NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at TIMESTAMPTZ NULL,
    revoked_at   TIMESTAMPTZ NULL,
    CONSTRAINT api_keys_pkey PRIMARY KEY (id),
    CONSTRAINT api_keys_key_hash_key UNIQUE (key_hash),
    CONSTRAINT api_keys_user_fk FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
)

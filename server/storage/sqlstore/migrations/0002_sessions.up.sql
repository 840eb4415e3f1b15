-- Logins. Only SHA-256 digests of the tokens are kept (bytea), each under a
-- unique index: every authenticated call is one point lookup by access_hash.
-- Revocation sets revoked_at instead of deleting, so a replayed refresh token
-- is recognisable and a rotation can check-and-revoke in one UPDATE.
CREATE TABLE IF NOT EXISTS sessions (
    id                 UUID        NOT NULL DEFAULT gen_random_uuid(),
    user_id            UUID        NOT NULL,
    access_hash        BYTEA       NOT NULL,
    refresh_hash       BYTEA       NOT NULL,
    access_expires_at  TIMESTAMPTZ NOT NULL,
    refresh_expires_at TIMESTAMPTZ NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at         TIMESTAMPTZ NULL,
    CONSTRAINT sessions_pkey PRIMARY KEY (id),
    CONSTRAINT sessions_access_hash_key UNIQUE (access_hash),
    CONSTRAINT sessions_refresh_hash_key UNIQUE (refresh_hash),
    CONSTRAINT sessions_user_fk FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
)

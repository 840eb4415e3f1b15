-- Accounts and guests. ids are UUIDs minted by the server (uuid v4, the same
-- shape as gen_random_uuid()), never unique_rowid(): random keys spread writes
-- over CockroachDB ranges and mean the same on both engines. Guests have no
-- username (NULL, so any number of them fit under the unique constraint);
-- usernames are stored lower-cased by the identity service.
CREATE TABLE IF NOT EXISTS users (
    id            UUID        NOT NULL DEFAULT gen_random_uuid(),
    username      TEXT        NULL,
    guest         BOOL        NOT NULL,
    role          TEXT        NOT NULL,
    password_hash TEXT        NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT users_pkey PRIMARY KEY (id),
    CONSTRAINT users_username_key UNIQUE (username),
    CONSTRAINT users_role_check CHECK (role IN ('user', 'admin'))
)

-- Idempotency-Key records, written in the same transaction as the write they
-- guard. Keys are per user and per operation scope; created_at is the
-- database's clock so every replica ages a key the same way. An expired
-- record is overwritten in place by the next request using its key.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    user_id      UUID        NOT NULL,
    scope        TEXT        NOT NULL,
    idem_key     TEXT        NOT NULL,
    request_hash BYTEA       NOT NULL,
    response     BYTEA       NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (user_id, scope, idem_key)
)

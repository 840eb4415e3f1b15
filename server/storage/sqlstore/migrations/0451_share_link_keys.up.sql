-- The signing key ring of signed share links when no --share-link-keys is
-- given: the first replica to start stores a random key (id 1, insert if
-- absent) and every replica reads the ring back, so they all sign and
-- verify alike with no configuration. Ordered by id; the first signs.
CREATE TABLE IF NOT EXISTS share_link_keys (
    id         INT8        NOT NULL,
    secret     BYTEA       NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT share_link_keys_pkey PRIMARY KEY (id)
)

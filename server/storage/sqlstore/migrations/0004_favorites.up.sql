-- One favorite colour per user, normalised to #RRGGBB and kept with the
-- notation it was given in. No foreign key to users: a favorite is keyed by
-- whoever the identity service says the caller is.
CREATE TABLE IF NOT EXISTS favorites (
    user_id     UUID        NOT NULL,
    hex         TEXT        NOT NULL,
    color_space TEXT        NOT NULL,
    color_value TEXT        NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    CONSTRAINT favorites_pkey PRIMARY KEY (user_id),
    CONSTRAINT favorites_hex_check CHECK (hex ~ '^#[0-9A-F]{6}$')
)

-- Users banned from the canvas; checked on every placement, so a ban takes
-- effect on the next one. expires_at NULL: permanent.
CREATE TABLE IF NOT EXISTS canvas_bans (
    user_id    UUID        NOT NULL,
    banned_by  UUID        NOT NULL,
    reason     TEXT        NOT NULL DEFAULT '',
    banned_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NULL,
    CONSTRAINT canvas_bans_pkey PRIMARY KEY (user_id)
)

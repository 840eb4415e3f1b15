-- Share links. The slug is the key every page view resolves; hex is frozen
-- for snapshot shares and NULL for live ones (which follow the owner's
-- favorite). expires_at/revoked_at are NULL for "never"/"not revoked".
CREATE TABLE IF NOT EXISTS shares (
    slug       TEXT        NOT NULL,
    owner_id   UUID        NOT NULL,
    snapshot   BOOL        NOT NULL,
    hex        TEXT        NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NULL,
    revoked_at TIMESTAMPTZ NULL,
    hits       INT8        NOT NULL DEFAULT 0,
    CONSTRAINT shares_pkey PRIMARY KEY (slug),
    CONSTRAINT shares_hex_check CHECK (hex IS NULL OR hex ~ '^#[0-9A-F]{6}$'),
    CONSTRAINT shares_snapshot_hex_check CHECK (snapshot = (hex IS NOT NULL))
)

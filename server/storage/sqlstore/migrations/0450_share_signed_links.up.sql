-- Signed share links: the owner's record of each token handed out. A view
-- reads none of it (the token carries the colour); revocation, single use
-- and listing do. owner_id and hex are cleared when the owner's account is
-- deleted; the row stays until it expires so its token is still refused.
-- The unique constraint is the owner's listing index (keyset pagination,
-- newest first, scanned backwards), declared inline so that the table is
-- one statement on both engines.
CREATE TABLE IF NOT EXISTS share_signed_links (
    id         TEXT        NOT NULL,
    owner_id   UUID        NULL,
    hex        TEXT        NULL,
    single_use BOOL        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ NULL,
    used_at    TIMESTAMPTZ NULL,
    CONSTRAINT share_signed_links_pkey PRIMARY KEY (id),
    CONSTRAINT share_signed_links_owner_key UNIQUE (owner_id, created_at, id),
    CONSTRAINT share_signed_links_hex_check CHECK (hex IS NULL OR hex ~ '^#[0-9A-F]{6}$')
)

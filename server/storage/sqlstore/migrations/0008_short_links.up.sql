-- URL shortener codes: 7 base62 characters when generated, 3 to 32 letters,
-- digits, '-' and '_' when a custom alias.
-- The redirect path reads only this row. click_count and last_access_at are
-- written by the batched analytics flusher, never on the redirect itself.
-- Deleted codes stay as tombstones (deleted_at) so a code is never reissued
-- to point somewhere else while caches or old links still hold it.
CREATE TABLE IF NOT EXISTS short_links (
    code           TEXT        NOT NULL,
    owner_id       UUID        NULL,
    target         TEXT        NOT NULL,
    custom         BOOL        NOT NULL DEFAULT false,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at     TIMESTAMPTZ NULL,
    password_hash  TEXT        NULL,
    redirect_kind  INT2        NOT NULL DEFAULT 302,
    click_count    INT8        NOT NULL DEFAULT 0,
    last_access_at TIMESTAMPTZ NULL,
    deleted_at     TIMESTAMPTZ NULL,
    CONSTRAINT short_links_pkey PRIMARY KEY (code),
    CONSTRAINT short_links_code_check CHECK (code ~ '^[0-9A-Za-z_-]{1,32}$'),
    CONSTRAINT short_links_redirect_kind_check CHECK (redirect_kind IN (301, 302))
)

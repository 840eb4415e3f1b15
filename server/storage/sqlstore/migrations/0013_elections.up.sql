-- Elections, managed by admins and read on every vote. home_region is where
-- the election's votes live (see votes); UNIQUE (id, home_region) lets votes
-- reference the pair, which ties each vote's region to its election's.
CREATE TABLE IF NOT EXISTS elections (
    id          UUID        NOT NULL DEFAULT gen_random_uuid(),
    title       TEXT        NOT NULL,
    home_region TEXT        NOT NULL DEFAULT '',
    opens_at    TIMESTAMPTZ NOT NULL,
    closes_at   TIMESTAMPTZ NOT NULL,
    created_by  UUID        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT elections_pkey PRIMARY KEY (id),
    CONSTRAINT elections_id_home_region_key UNIQUE (id, home_region),
    CONSTRAINT elections_window_check CHECK (closes_at > opens_at)
)

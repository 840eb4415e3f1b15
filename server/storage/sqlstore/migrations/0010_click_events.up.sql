-- Raw redirect clicks, appended in batches by the analytics pipeline (never
-- on the redirect path) and rolled up into click_daily. region is the region
-- that served the click: it leads the key so that on CockroachDB the row's
-- home region (crdb_region, computed from it) follows from the key and
-- inserts need no cross-region uniqueness check. clicked_at grows
-- monotonically, so on CockroachDB the key is hash-sharded to avoid one hot
-- range (cockroachdb/0002).
CREATE TABLE IF NOT EXISTS click_events (
    region     TEXT        NOT NULL,
    clicked_at TIMESTAMPTZ NOT NULL,
    id         UUID        NOT NULL DEFAULT gen_random_uuid(),
    code       TEXT        NOT NULL,
    country    TEXT        NOT NULL DEFAULT '',
    bot        BOOL        NOT NULL DEFAULT false,
    -- 'human', 'bot' or 'preview' (link-preview crawler); bot = agent <> 'human'.
    agent      TEXT        NOT NULL DEFAULT 'human',
    -- Host of the Referer, '' when none.
    referrer   TEXT        NOT NULL DEFAULT '',
    CONSTRAINT click_events_pkey PRIMARY KEY (region, clicked_at, id)
)

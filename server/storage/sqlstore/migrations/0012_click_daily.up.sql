-- Daily click aggregates per code, day, country and bot flag: what the
-- analytics RPC reads ("clicks by day and by country over a range"). Each
-- region upserts its own rows (region is part of the key), so flushers in
-- different regions never contend on one row; readers sum over regions.
CREATE TABLE IF NOT EXISTS click_daily (
    code       TEXT NOT NULL,
    click_date DATE NOT NULL,
    country    TEXT NOT NULL,
    bot        BOOL NOT NULL,
    region     TEXT NOT NULL,
    clicks     INT8 NOT NULL DEFAULT 0,
    CONSTRAINT click_daily_pkey PRIMARY KEY (code, click_date, country, bot, region)
)

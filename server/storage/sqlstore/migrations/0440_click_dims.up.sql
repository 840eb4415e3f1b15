-- Daily click aggregates per code, day and one dimension's value (referrer
-- host, browser, operating system, device class), humans and bots apart:
-- what GetStats lists beside days and countries. One table for the four
-- dimensions keeps a flush at one upsert; each region upserts its own rows,
-- as in click_daily.
CREATE TABLE IF NOT EXISTS click_dims (
    code       TEXT NOT NULL,
    click_date DATE NOT NULL,
    dim        TEXT NOT NULL,
    value      TEXT NOT NULL,
    bot        BOOL NOT NULL,
    region     TEXT NOT NULL,
    clicks     INT8 NOT NULL DEFAULT 0,
    CONSTRAINT click_dims_pkey PRIMARY KEY (code, click_date, dim, value, bot, region)
)

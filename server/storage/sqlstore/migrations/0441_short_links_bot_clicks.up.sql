-- Bot clicks and the last human click beside click_count (humans) and
-- last_access_at (anyone), so a list can show counts that agree with the
-- last access. Links older than these columns start from 0 and no last
-- human click.
ALTER TABLE short_links ADD COLUMN IF NOT EXISTS bot_click_count INT8 NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS last_human_access_at TIMESTAMPTZ

-- Targets by device class ({"android": url, "ios": url, "desktop": url});
-- NULL when the link has none. Read with the row by the redirect path's
-- loads only, never queried into.
ALTER TABLE short_links ADD COLUMN IF NOT EXISTS device_targets JSONB

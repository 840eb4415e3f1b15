-- A link's visit limit (NULL: none) and the visit counter the redirect
-- path increments when no Redis keeps the counters; the counter starts
-- from click_count (see TakeVisit), so visits before a limit count too.
ALTER TABLE short_links ADD COLUMN IF NOT EXISTS max_visits INT8,
    ADD COLUMN IF NOT EXISTS visit_count INT8 NOT NULL DEFAULT 0

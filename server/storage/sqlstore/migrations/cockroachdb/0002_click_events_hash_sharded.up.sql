-- Clicks arrive in clicked_at order: a plain key on it would send each
-- region's inserts to the one range holding the newest timestamps. Hash
-- sharding spreads them over buckets; time-range scans read every bucket.
-- DROP + ADD in one statement swaps the key without leaving the old one
-- behind as a secondary index (what ALTER PRIMARY KEY may do).
ALTER TABLE click_events
    DROP CONSTRAINT click_events_pkey,
    ADD CONSTRAINT click_events_pkey PRIMARY KEY (region, clicked_at, id) USING HASH

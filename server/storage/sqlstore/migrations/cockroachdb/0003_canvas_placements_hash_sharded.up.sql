-- seq is a global sequence number: unsharded, every placement would go to
-- the one range holding the highest seq. Hash sharding spreads them; the
-- delta replay ("seq > n") reads every bucket.
ALTER TABLE canvas_placements
    DROP CONSTRAINT canvas_placements_pkey,
    ADD CONSTRAINT canvas_placements_pkey PRIMARY KEY (seq) USING HASH

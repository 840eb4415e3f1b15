-- Audit ids are UUIDv7, time-ordered: unsharded, every region's audit inserts
-- for a busy election would go to the one range holding the newest ids. Hash
-- sharding spreads them; the export (ordered by id) merges the buckets.
ALTER TABLE vote_audit
    DROP CONSTRAINT vote_audit_pkey,
    ADD CONSTRAINT vote_audit_pkey PRIMARY KEY (home_region, election_id, id) USING HASH

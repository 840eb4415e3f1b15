-- One vote per user per election. The key leads with the election's home
-- region (elections.home_region, the region of the server that created it):
-- on CockroachDB the table is REGIONAL BY ROW with crdb_region computed from
-- home_region, so the whole key pins the row to one region and the duplicate
-- check of INSERT ... ON CONFLICT is a read in that region only, not a
-- fan-out to every region. The foreign key to (elections.id,
-- elections.home_region) makes home_region a function of election_id, so
-- the key is exactly as unique as (election_id, user_id): a retried or
-- duplicate vote hits the key and never counts twice.
--
-- id is the vote's public identifier; idem_key the Idempotency-Key it was
-- cast with ('' for none), so a retry can be told from a second vote.
-- Deleting a user replaces user_id with a random UUID: the vote keeps
-- counting, nothing links it to the person.
CREATE TABLE IF NOT EXISTS votes (
    home_region  TEXT        NOT NULL,
    election_id  UUID        NOT NULL,
    user_id      UUID        NOT NULL,
    candidate_id TEXT        NOT NULL,
    id           UUID        NOT NULL DEFAULT gen_random_uuid(),
    idem_key     TEXT        NOT NULL DEFAULT '',
    cast_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT votes_pkey PRIMARY KEY (home_region, election_id, user_id),
    CONSTRAINT votes_election_fk FOREIGN KEY (election_id, home_region) REFERENCES elections (id, home_region),
    CONSTRAINT votes_candidate_fk FOREIGN KEY (election_id, candidate_id) REFERENCES candidates (election_id, id)
)

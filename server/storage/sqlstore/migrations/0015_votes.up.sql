-- One vote per user per election. The key leads with the election's home
-- region: on CockroachDB the table is REGIONAL BY ROW with crdb_region
-- computed from home_region, so the whole key pins the row to one region and
-- the duplicate check is a local read, not a fan-out to every region. The
-- foreign key to (elections.id, elections.home_region) makes home_region a
-- function of election_id, so the key is exactly as unique as
-- (election_id, user_id): a retried or duplicate vote hits the key and never
-- counts twice.
CREATE TABLE IF NOT EXISTS votes (
    home_region  TEXT        NOT NULL,
    election_id  UUID        NOT NULL,
    user_id      UUID        NOT NULL,
    candidate_id UUID        NOT NULL,
    cast_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT votes_pkey PRIMARY KEY (home_region, election_id, user_id),
    CONSTRAINT votes_election_fk FOREIGN KEY (election_id, home_region) REFERENCES elections (id, home_region),
    CONSTRAINT votes_candidate_fk FOREIGN KEY (election_id, candidate_id) REFERENCES candidates (election_id, id)
)

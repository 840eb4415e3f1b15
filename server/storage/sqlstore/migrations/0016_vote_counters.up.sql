-- Running totals per candidate, split over shards so that concurrent vote
-- batches do not queue on one row: each batch adds its accepted votes to one
-- shard in the batch's own transaction (so the counters always equal the
-- stored votes), and the live count sums the shards. Same regional key as
-- votes.
CREATE TABLE IF NOT EXISTS vote_counters (
    home_region  TEXT NOT NULL,
    election_id  UUID NOT NULL,
    candidate_id TEXT NOT NULL,
    shard        INT2 NOT NULL,
    votes        INT8 NOT NULL DEFAULT 0,
    CONSTRAINT vote_counters_pkey PRIMARY KEY (home_region, election_id, candidate_id, shard),
    CONSTRAINT vote_counters_election_fk FOREIGN KEY (election_id, home_region) REFERENCES elections (id, home_region),
    CONSTRAINT vote_counters_shard_check CHECK (shard >= 0)
)

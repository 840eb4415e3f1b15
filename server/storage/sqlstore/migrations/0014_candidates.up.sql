-- Candidates of an election, in display order.
CREATE TABLE IF NOT EXISTS candidates (
    election_id UUID NOT NULL,
    id          UUID NOT NULL DEFAULT gen_random_uuid(),
    name        TEXT NOT NULL,
    sort_order  INT4 NOT NULL DEFAULT 0,
    CONSTRAINT candidates_pkey PRIMARY KEY (election_id, id),
    CONSTRAINT candidates_election_fk FOREIGN KEY (election_id) REFERENCES elections (id) ON DELETE CASCADE
)

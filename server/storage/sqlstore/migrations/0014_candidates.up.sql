-- Candidates of an election, in display order. The id is chosen by the
-- admin (e.g. "red"), unique within the election.
CREATE TABLE IF NOT EXISTS candidates (
    election_id UUID NOT NULL,
    id          TEXT NOT NULL,
    name        TEXT NOT NULL,
    sort_order  INT4 NOT NULL DEFAULT 0,
    CONSTRAINT candidates_pkey PRIMARY KEY (election_id, id),
    CONSTRAINT candidates_election_fk FOREIGN KEY (election_id) REFERENCES elections (id) ON DELETE CASCADE,
    CONSTRAINT candidates_id_check CHECK (id ~ '^[A-Za-z0-9_-]{1,64}$')
)

-- Elections, managed by admins and read on every vote (cached by the
-- servers; the vote insert re-checks state and window in the database).
-- state: 1 draft, 2 open, 3 closed. opens_at is set when the election opens
-- if the admin gave none; closes_at NULL means open until closed.
--
-- home_region is the region of the server that created the election (its
-- --region): every vote, counter and audit row of the election is homed
-- there (see votes). UNIQUE (id, home_region) lets those tables reference
-- the pair, which ties each row's region to its election's.
CREATE TABLE IF NOT EXISTS elections (
    id          UUID        NOT NULL DEFAULT gen_random_uuid(),
    title       TEXT        NOT NULL,
    home_region TEXT        NOT NULL DEFAULT '',
    state       INT2        NOT NULL DEFAULT 1,
    opens_at    TIMESTAMPTZ NULL,
    closes_at   TIMESTAMPTZ NULL,
    created_by  UUID        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT elections_pkey PRIMARY KEY (id),
    CONSTRAINT elections_id_home_region_key UNIQUE (id, home_region),
    CONSTRAINT elections_state_check CHECK (state BETWEEN 1 AND 3),
    CONSTRAINT elections_window_check CHECK (closes_at > opens_at)
)

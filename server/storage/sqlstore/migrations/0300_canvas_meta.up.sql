-- The canvas's identity: one row, written by the first server to start on
-- this database. id names the canvas's live state in Redis, so replicas of
-- one database share a board and boards of other databases sharing the
-- Redis never mix with it; width and height are fixed for the canvas's life.
CREATE TABLE IF NOT EXISTS canvas_meta (
    singleton  BOOL        NOT NULL DEFAULT true,
    id         UUID        NOT NULL,
    width      INT4        NOT NULL,
    height     INT4        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT canvas_meta_pkey PRIMARY KEY (singleton),
    CONSTRAINT canvas_meta_singleton_check CHECK (singleton),
    CONSTRAINT canvas_meta_size_check CHECK (width > 0 AND height > 0)
)

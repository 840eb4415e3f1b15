-- Every pixel placement, in the canvas's single global order (seq): the
-- history admins read, the log a reconnecting client's missed deltas come
-- from, and what the bitmap is rebuilt from. seq is sequential, so on
-- CockroachDB the key is hash-sharded (cockroachdb/0003).
CREATE TABLE IF NOT EXISTS canvas_placements (
    seq       INT8        NOT NULL,
    x         INT4        NOT NULL,
    y         INT4        NOT NULL,
    color     INT2        NOT NULL,
    user_id   UUID        NOT NULL,
    placed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT canvas_placements_pkey PRIMARY KEY (seq),
    CONSTRAINT canvas_placements_xy_check CHECK (x >= 0 AND y >= 0),
    CONSTRAINT canvas_placements_color_check CHECK (color BETWEEN 0 AND 15)
)

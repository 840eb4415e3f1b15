-- One user's placements (admin view, cleaning up after a ban).
CREATE INDEX IF NOT EXISTS canvas_placements_user_idx ON canvas_placements (user_id, seq DESC)

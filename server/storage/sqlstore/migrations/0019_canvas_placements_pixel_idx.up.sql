-- One pixel's history, newest first (admin view).
CREATE INDEX IF NOT EXISTS canvas_placements_pixel_idx ON canvas_placements (x, y, seq DESC)

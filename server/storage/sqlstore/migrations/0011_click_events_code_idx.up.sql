-- One code's clicks over a time range (details, ad-hoc analytics).
CREATE INDEX IF NOT EXISTS click_events_code_idx ON click_events (code, clicked_at)

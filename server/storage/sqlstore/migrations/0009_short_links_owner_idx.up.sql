-- An owner's links, newest first.
CREATE INDEX IF NOT EXISTS short_links_owner_idx ON short_links (owner_id, created_at DESC)

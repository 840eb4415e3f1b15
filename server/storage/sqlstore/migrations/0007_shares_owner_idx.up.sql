-- An owner's shares, newest first: serves the keyset-paginated listing
-- ((created_at, slug) < cursor) and the "has an active share" check.
CREATE INDEX IF NOT EXISTS shares_owner_idx ON shares (owner_id, created_at DESC, slug DESC)

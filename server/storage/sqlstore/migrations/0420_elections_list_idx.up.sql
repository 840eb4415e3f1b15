-- The public election list: newest first, keyset-paged by (created_at, id)
-- and filtered by state, without sorting the whole table.
CREATE INDEX IF NOT EXISTS elections_list_idx ON elections (state, created_at DESC, id DESC)

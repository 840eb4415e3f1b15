-- The admin user list: newest first, keyset-paged by (created_at, id).
CREATE INDEX IF NOT EXISTS users_list_idx ON users (created_at DESC, id DESC)

-- Listing a user's keys.
CREATE INDEX IF NOT EXISTS api_keys_user_id_idx ON api_keys (user_id)

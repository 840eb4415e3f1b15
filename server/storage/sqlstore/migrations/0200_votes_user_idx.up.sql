-- A user's votes, for erasing them when the user is deleted.
CREATE INDEX IF NOT EXISTS votes_user_idx ON votes (user_id)

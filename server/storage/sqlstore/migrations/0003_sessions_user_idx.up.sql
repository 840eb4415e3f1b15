-- Revoking every session of a user (logout everywhere, bans, upgrades).
CREATE INDEX IF NOT EXISTS sessions_user_id_idx ON sessions (user_id)

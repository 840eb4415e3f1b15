-- Revoking a whole family on refresh-token reuse.
CREATE INDEX IF NOT EXISTS sessions_family_id_idx ON sessions (family_id)

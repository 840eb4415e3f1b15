-- A user's audit rows, for erasing their personal data when the user is
-- deleted.
CREATE INDEX IF NOT EXISTS vote_audit_user_idx ON vote_audit (user_id)

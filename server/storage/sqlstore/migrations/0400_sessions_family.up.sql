-- A session family is one login and every session refreshed from it. When a
-- refresh token that was already used comes back, someone holds a stolen
-- copy: every session of the family is revoked, the thief's and the
-- owner's. NULL for sessions from before families (treated as their own).
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS family_id UUID NULL

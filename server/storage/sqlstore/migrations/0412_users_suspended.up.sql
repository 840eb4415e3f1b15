-- An admin's platform-wide suspension: a suspended account cannot log in,
-- and its sessions and API keys are refused.
ALTER TABLE users ADD COLUMN IF NOT EXISTS suspended BOOLEAN NOT NULL DEFAULT false

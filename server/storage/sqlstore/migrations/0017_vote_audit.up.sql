-- Audit trail, append-only: one row per accepted vote (written in the vote's
-- transaction, so an acknowledged vote and its evidence commit together) and
-- one per rejected attempt with its reason. id is a UUIDv7 (time-ordered):
-- the export reads the trail in key order. outcome: 1 accepted, 2 rejected.
-- client_addr is the client's network, masked to /24 or /48, never the full
-- address. Deleting a user clears user_id, client_addr and user_agent.
CREATE TABLE IF NOT EXISTS vote_audit (
    home_region    TEXT        NOT NULL,
    election_id    UUID        NOT NULL,
    id             UUID        NOT NULL DEFAULT gen_random_uuid(),
    recorded_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    outcome        INT2        NOT NULL DEFAULT 1,
    reason         TEXT        NOT NULL DEFAULT '',
    user_id        UUID        NULL,
    candidate_id   TEXT        NOT NULL DEFAULT '',
    vote_id        UUID        NULL,
    served_region  TEXT        NOT NULL DEFAULT '',
    client_addr    TEXT        NOT NULL DEFAULT '',
    user_agent     TEXT        NOT NULL DEFAULT '',
    captcha_passed BOOL        NOT NULL DEFAULT false,
    CONSTRAINT vote_audit_pkey PRIMARY KEY (home_region, election_id, id),
    CONSTRAINT vote_audit_outcome_check CHECK (outcome IN (1, 2))
)

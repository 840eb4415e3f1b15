-- Audit trail: one row per accepted vote, written in the vote's transaction
-- (so an acknowledged vote and its evidence commit together), with what the
-- anti-fraud checks saw. Kept when votes are archived after an election.
CREATE TABLE IF NOT EXISTS vote_audit (
    home_region    TEXT        NOT NULL,
    election_id    UUID        NOT NULL,
    user_id        UUID        NOT NULL,
    candidate_id   UUID        NOT NULL,
    accepted_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    served_region  TEXT        NOT NULL DEFAULT '',
    client_addr    TEXT        NOT NULL DEFAULT '',
    user_agent     TEXT        NOT NULL DEFAULT '',
    captcha_passed BOOL        NOT NULL DEFAULT false,
    bot_score      FLOAT8      NOT NULL DEFAULT 0,
    request_id     TEXT        NOT NULL DEFAULT '',
    CONSTRAINT vote_audit_pkey PRIMARY KEY (home_region, election_id, user_id)
)

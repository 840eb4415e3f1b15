-- Which generated multi-region statement (MultiRegionDDL) was last applied
-- for each step (the primary region, one row per added region, the survival
-- goal, each table's locality): a step runs again only when the configured
-- region list changes what it says.
CREATE TABLE IF NOT EXISTS crdb_region_ddl (
    step       TEXT        NOT NULL,
    stmt       TEXT        NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT crdb_region_ddl_pkey PRIMARY KEY (step)
)

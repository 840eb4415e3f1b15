-- The counter behind generated short codes, and the key of the permutation
-- that turns its values into codes (see server/shortener/code.go). One row
-- (name 'codes'). Processes reserve blocks of ids with one UPDATE each, so
-- the row is written once per block, not once per link. The key is created
-- at random on first use and must never change: a new key would map future
-- ids onto codes already issued.
CREATE TABLE IF NOT EXISTS short_code_seq (
    name     TEXT  NOT NULL,
    next_id  INT8  NOT NULL,
    code_key BYTEA NOT NULL,
    CONSTRAINT short_code_seq_pkey PRIMARY KEY (name),
    CONSTRAINT short_code_seq_next_id_check CHECK (next_id >= 0)
)

-- Request-rate counters for the authorization endpoints, shared by every
-- instance on the database (GCRA: one "theoretical arrival time" per
-- bucket, in Unix microseconds). A row whose time has passed is a full
-- bucket, the same as no row; the sweep deletes those.
-- UNLOGGED: counters are not worth a WAL write and a flush per request; a
-- crash empties the table, which only refills every bucket.
CREATE UNLOGGED TABLE rate_limits (
    bucket TEXT PRIMARY KEY,
    tat_us BIGINT NOT NULL
);
CREATE INDEX rate_limits_tat ON rate_limits (tat_us);

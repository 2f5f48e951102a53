-- What calls to X cost, who made them, and writes that happen once.

-- Daily spend per scope (`user:<id>`, `client:<id>`, `deployment`), in
-- micro-dollars: `spent` by settled calls, `held` by calls in flight.
-- `day` counts days since the Unix epoch, UTC.
CREATE TABLE spend (
    day        BIGINT NOT NULL,
    scope      TEXT NOT NULL,
    spent      BIGINT NOT NULL,
    held       BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (day, scope)
);
CREATE INDEX spend_expires ON spend (expires_at);

-- Every call to X: never its arguments, never a token.
CREATE TABLE audit_log (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    at             BIGINT NOT NULL,
    user_id        TEXT NOT NULL,
    client_id      TEXT NOT NULL,
    tool           TEXT NOT NULL,
    method         TEXT NOT NULL,
    path           TEXT NOT NULL,
    status         BIGINT NOT NULL,
    transaction_id TEXT,
    cost           BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_user_at ON audit_log (user_id, at);
CREATE INDEX audit_log_expires ON audit_log (expires_at);

-- Idempotency keys (digests) of writes: claimed before the call, holding
-- its sealed result after it.
CREATE TABLE once_keys (
    key_hash      TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL,
    result_sealed TEXT,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX once_keys_expires ON once_keys (expires_at);

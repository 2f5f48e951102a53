-- RFC 8628 device authorizations, the local (single-user) state of
-- `xmcp login` and `xmcp bridge`, and the link from a pending authorization
-- to the device authorization it approves.

CREATE TABLE device_authorizations (
    device_code_hash TEXT PRIMARY KEY,
    user_code_hash   TEXT NOT NULL UNIQUE,
    client_id        TEXT NOT NULL,
    scope            TEXT NOT NULL,
    resource         TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    -- Seconds a client must wait between polls; grows on `slow_down`.
    poll_interval    BIGINT NOT NULL,
    last_polled_at   BIGINT,
    -- pending | approved | denied
    status           TEXT NOT NULL,
    user_id          TEXT REFERENCES users (id) ON DELETE CASCADE,
    decided_at       BIGINT
);
CREATE INDEX device_authorizations_expires ON device_authorizations (expires_at);

ALTER TABLE pending_authorizations ADD COLUMN device_code_hash TEXT;

-- Named values of the local modes (who `xmcp login` signed in; the bridge's
-- sealed tokens per issuer). Secret values arrive sealed.
CREATE TABLE local_state (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

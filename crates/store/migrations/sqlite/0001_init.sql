-- xmcp authorization server schema. Times are Unix seconds. Secrets are never
-- stored: tokens as SHA-256 digests (hex), upstream credentials sealed.

CREATE TABLE clients (
    client_id   TEXT PRIMARY KEY,
    secret_hash TEXT,
    metadata    TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT
);
CREATE INDEX clients_created_at ON clients (created_at);

CREATE TABLE users (
    id           TEXT PRIMARY KEY,
    subject      TEXT NOT NULL UNIQUE,
    username     TEXT,
    display_name TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);

CREATE TABLE pending_authorizations (
    id_hash                  TEXT PRIMARY KEY,
    client_id                TEXT NOT NULL,
    redirect_uri             TEXT NOT NULL,
    redirect_uri_explicit    BOOLEAN NOT NULL,
    scope                    TEXT NOT NULL,
    state                    TEXT,
    code_challenge           TEXT NOT NULL,
    resource                 TEXT NOT NULL,
    csrf_hash                TEXT NOT NULL,
    created_at               BIGINT NOT NULL,
    expires_at               BIGINT NOT NULL,
    upstream_state_hash      TEXT UNIQUE,
    upstream_verifier_sealed TEXT,
    consumed_at              BIGINT
);
CREATE INDEX pending_expires_at ON pending_authorizations (expires_at);

CREATE TABLE consents (
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id    TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    scope        TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id, redirect_uri)
);

CREATE TABLE grants (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL,
    scope      TEXT NOT NULL,
    resource   TEXT NOT NULL,
    code_hash  TEXT,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX grants_user ON grants (user_id);
CREATE INDEX grants_code ON grants (code_hash);

CREATE TABLE authorization_codes (
    code_hash             TEXT PRIMARY KEY,
    client_id             TEXT NOT NULL,
    redirect_uri          TEXT NOT NULL,
    redirect_uri_explicit BOOLEAN NOT NULL,
    code_challenge        TEXT NOT NULL,
    resource              TEXT NOT NULL,
    scope                 TEXT NOT NULL,
    user_id               TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at            BIGINT NOT NULL,
    expires_at            BIGINT NOT NULL,
    used_at               BIGINT
);

CREATE TABLE access_tokens (
    token_hash TEXT PRIMARY KEY,
    grant_id   TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX access_tokens_grant ON access_tokens (grant_id);
CREATE INDEX access_tokens_expires ON access_tokens (expires_at);

CREATE TABLE refresh_tokens (
    token_hash       TEXT PRIMARY KEY,
    grant_id         TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    rotated_at       BIGINT,
    successor_sealed TEXT
);
CREATE INDEX refresh_tokens_grant ON refresh_tokens (grant_id);
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);

CREATE TABLE upstream_tokens (
    user_id        TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    provider       TEXT NOT NULL,
    access_sealed  TEXT NOT NULL,
    refresh_sealed TEXT,
    expires_at     BIGINT,
    scope          TEXT NOT NULL,
    updated_at     BIGINT NOT NULL,
    -- Set when the provider refused the refresh token: the user must sign in again.
    reauth_required_at   BIGINT,
    -- A lease that makes one refresh at a time happen across every instance.
    refresh_lease_holder TEXT,
    refresh_lease_until  BIGINT
);

CREATE TABLE signing_keys (
    kid            TEXT PRIMARY KEY,
    alg            TEXT NOT NULL,
    private_sealed TEXT NOT NULL,
    public_jwk     TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    retired_at     BIGINT
);

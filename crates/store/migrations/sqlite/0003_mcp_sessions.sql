-- Stateful MCP sessions (`mcp_stateful`): the user each one is bound to,
-- and the client's `initialize` parameters, from which any instance can
-- restore the session after a restart or on another instance. Session ids
-- are stored as digests, like tokens. `user_id` is not a foreign key: with
-- an external authorization server, users (`external:<sub>`) have no row.
CREATE TABLE mcp_sessions (
    id_hash     TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    init_params TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    -- Sliding: pushed forward while the session is in use.
    expires_at  BIGINT NOT NULL
);
CREATE INDEX mcp_sessions_expires ON mcp_sessions (expires_at);
CREATE INDEX mcp_sessions_user ON mcp_sessions (user_id);

-- The audit trail: one row per authenticated request.
CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     bigint REFERENCES users (id) ON DELETE SET NULL,
    method      text NOT NULL,
    path        text NOT NULL,
    -- the query string with secrets (accesskey, ...) replaced by "[redacted]"
    query       text NOT NULL DEFAULT '',
    status      integer NOT NULL,
    duration_ms real NOT NULL,
    client      text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_user_created_idx ON audit_log (user_id, created_at DESC, id DESC);
CREATE INDEX audit_log_created_idx ON audit_log (created_at DESC, id DESC);

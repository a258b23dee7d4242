-- Bootstrap: the record of applied schema files. Run before every migration pass (idempotent).
CREATE TABLE IF NOT EXISTS schema_migrations (
    filename   text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);

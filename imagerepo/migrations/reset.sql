-- Drops every table ImageRepo owns (used by --reinstall-schema). Not a migration.
DROP SCHEMA public CASCADE;
CREATE SCHEMA public;

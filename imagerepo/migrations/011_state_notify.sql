-- Notices for the per-worker state cache (imagerepo/statecache.py): every change to what a read
-- checks is announced on the channel imagerepo_state, in the transaction that makes it, so the
-- notice goes out when (and only if) the change commits. Payloads: 'image:<id>', 'user:<id>',
-- 'token:<jti>', or '<kind>:*' for a statement that touched many rows (cheaper than thousands of
-- notices; the workers then drop that whole kind).

CREATE FUNCTION state_notify_rows(kind text, keys text[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF cardinality(keys) > 100 THEN
        PERFORM pg_notify('imagerepo_state', kind || ':*');
    ELSE
        PERFORM pg_notify('imagerepo_state', kind || ':' || k) FROM unnest(keys) AS k;
    END IF;
END $$;

-- Images: any change to the row (privacy, key, owner, content, name...) or its deletion,
-- cascaded deletions included.
CREATE FUNCTION images_state_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM state_notify_rows('image', ARRAY(SELECT id::text FROM changed));
    RETURN NULL;
END $$;
CREATE TRIGGER images_state_notify_update AFTER UPDATE ON images
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION images_state_notify();
CREATE TRIGGER images_state_notify_delete AFTER DELETE ON images
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION images_state_notify();

-- Accounts: disabled or enabled, or removed. (A new password or name changes nothing cached.)
CREATE FUNCTION users_state_notify_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM state_notify_rows('user', ARRAY(
        SELECT o.id::text FROM old_rows o JOIN new_rows n ON n.id = o.id
        WHERE o.is_disabled IS DISTINCT FROM n.is_disabled));
    RETURN NULL;
END $$;
CREATE TRIGGER users_state_notify_update AFTER UPDATE ON users
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION users_state_notify_update();

CREATE FUNCTION users_state_notify_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM state_notify_rows('user', ARRAY(SELECT id::text FROM changed));
    RETURN NULL;
END $$;
CREATE TRIGGER users_state_notify_delete AFTER DELETE ON users
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION users_state_notify_delete();

-- Tokens: a revocation (logout).
CREATE FUNCTION revoked_tokens_state_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM state_notify_rows('token', ARRAY(SELECT jti FROM added));
    RETURN NULL;
END $$;
CREATE TRIGGER revoked_tokens_state_notify AFTER INSERT ON revoked_tokens
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION revoked_tokens_state_notify();

-- TRUNCATE (tests, a reset) restarts ids: every cached entry of the kind goes.
CREATE FUNCTION state_notify_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('imagerepo_state', TG_ARGV[0] || ':*');
    RETURN NULL;
END $$;
CREATE TRIGGER images_state_notify_truncate AFTER TRUNCATE ON images
    FOR EACH STATEMENT EXECUTE FUNCTION state_notify_truncate('image');
CREATE TRIGGER users_state_notify_truncate AFTER TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION state_notify_truncate('user');
CREATE TRIGGER revoked_tokens_state_notify_truncate AFTER TRUNCATE ON revoked_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION state_notify_truncate('token');

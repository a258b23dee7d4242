-- Plans, quotas and expiring share links (issue 13).

-- == Plans ===================================================================================
-- What an account may hand out and store. NULL quotas mean unlimited. Thumbnail heights are the
-- image variants (`/images/<id>/content?height=H`) the plan gives links to.
CREATE TABLE plans (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name               text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$'),
    thumbnail_heights  integer[] NOT NULL DEFAULT '{}'
                       CHECK (cardinality(thumbnail_heights) <= 16
                              AND 0 < ALL (thumbnail_heights) AND 10000 >= ALL (thumbnail_heights)),
    original_via_links boolean NOT NULL DEFAULT false,
    expiring_links     boolean NOT NULL DEFAULT false,
    max_stored_bytes   bigint CHECK (max_stored_bytes >= 0),
    max_images         bigint CHECK (max_images >= 0),
    max_upload_bytes   bigint CHECK (max_upload_bytes > 0),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX plans_name_key ON plans (lower(name));

-- The shipped plans: seed 003's Basic, Premium and Enterprise, and Unlimited, which keeps what
-- ImageRepo did before plans existed (no quotas, the original) and is the default for new
-- accounts unless IMAGEREPO_DEFAULT_PLAN names another. A function, so a server starting on a
-- database whose plans were emptied (the test suite truncates every table) puts them back;
-- plans that exist are left as administrators changed them.
CREATE FUNCTION plans_install_shipped() RETURNS void LANGUAGE sql AS $$
    INSERT INTO plans (name, thumbnail_heights, original_via_links, expiring_links,
                       max_stored_bytes, max_images, max_upload_bytes)
    VALUES ('Basic',      '{200}',     false, false, 1073741824,  1000,  10485760),
           ('Premium',    '{200,400}', true,  false, 10737418240, 10000, 52428800),
           ('Enterprise', '{200,400}', true,  true,  NULL,        NULL,  NULL),
           ('Unlimited',  '{}',        true,  true,  NULL,        NULL,  NULL)
    ON CONFLICT ((lower(name))) DO NOTHING;
$$;
SELECT plans_install_shipped();

-- The plan new accounts get; one row, written by each server at start from IMAGEREPO_DEFAULT_PLAN.
CREATE TABLE plan_settings (
    singleton       boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    default_plan_id bigint NOT NULL REFERENCES plans (id)
);
INSERT INTO plan_settings (default_plan_id) SELECT id FROM plans WHERE name = 'Unlimited';

-- == Accounts: their plan and what they use ================================================
-- used_* count the account's images and their logical sizes (what the uploader sent, whatever
-- deduplication saved), so a quota never tells one user what another stored. Kept in step by
-- the same transactions that insert and delete images (imagerepo/plans/usage.py).
ALTER TABLE users ADD COLUMN plan_id bigint REFERENCES plans (id);
ALTER TABLE users ADD COLUMN used_bytes bigint NOT NULL DEFAULT 0 CHECK (used_bytes >= 0);
ALTER TABLE users ADD COLUMN used_images bigint NOT NULL DEFAULT 0 CHECK (used_images >= 0);
-- Existing accounts keep today's behaviour, whatever the default for new ones becomes.
UPDATE users SET plan_id = (SELECT id FROM plans WHERE name = 'Unlimited');
UPDATE users u SET used_bytes = s.bytes, used_images = s.images
  FROM (SELECT i.owner_id, sum(o.size)::bigint AS bytes, count(*) AS images
          FROM images i JOIN objects o ON o.digest = i.object_digest GROUP BY i.owner_id) s
 WHERE s.owner_id = u.id;

-- Every writer (the API, the CLI, plain SQL) gives a new account the configured default plan.
CREATE FUNCTION users_default_plan() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.plan_id IS NULL THEN
        NEW.plan_id := (SELECT default_plan_id FROM plan_settings);
    END IF;
    IF NEW.plan_id IS NULL THEN
        -- No server has started on this database since its plans were emptied: today's behaviour.
        PERFORM plans_install_shipped();
        NEW.plan_id := (SELECT id FROM plans WHERE name = 'Unlimited');
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER users_default_plan BEFORE INSERT ON users
    FOR EACH ROW EXECUTE FUNCTION users_default_plan();
ALTER TABLE users ALTER COLUMN plan_id SET NOT NULL;
CREATE INDEX users_plan_idx ON users (plan_id);

-- == Share links ===========================================================================
-- A link hands one image (or one variant of it) to anyone holding its token until it expires
-- or is revoked. The token is HMAC(server key, nonce): the owner's listing can show the URL
-- again, while the database alone (a dump) opens nothing; lookups go by the token's SHA-256.
CREATE TABLE share_links (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_hash bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    nonce      bytea NOT NULL CHECK (length(nonce) = 16),
    image_id   bigint NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    -- the variant served: NULL height and format = the original bytes
    height     integer CHECK (height > 0),
    format     text CHECK (format IN ('jpeg', 'png', 'webp', 'avif')),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);
CREATE INDEX share_links_image_idx ON share_links (image_id, expires_at);
CREATE INDEX share_links_expires_idx ON share_links (expires_at);

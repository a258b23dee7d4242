-- Users, tokens, the chunk store's metadata and images.

CREATE TABLE users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL UNIQUE,
    email         text NOT NULL,
    password_hash text NOT NULL,
    is_admin      boolean NOT NULL DEFAULT false,
    is_disabled   boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));

-- Revoked JWTs (logout). Rows past expires_at can be pruned: the token is dead anyway.
CREATE TABLE revoked_tokens (
    jti        text PRIMARY KEY,
    expires_at timestamptz NOT NULL
);

-- One row per distinct chunk. refcount = number of manifest entries (object_chunks rows)
-- naming it. Invariant: refcount > 0 implies the chunk file exists with the right bytes.
CREATE TABLE chunks (
    digest      bytea PRIMARY KEY CHECK (length(digest) = 32),
    size        integer NOT NULL CHECK (size > 0),
    refcount    integer NOT NULL CHECK (refcount >= 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- when refcount last dropped to 0; the collector waits a grace period after it
    released_at timestamptz
);
CREATE INDEX chunks_unreferenced_idx ON chunks (released_at) WHERE refcount = 0;

-- One row per distinct content. refcount = number of images using it.
CREATE TABLE objects (
    digest      bytea PRIMARY KEY CHECK (length(digest) = 32),
    size        bigint NOT NULL CHECK (size > 0),
    chunk_size  integer NOT NULL CHECK (chunk_size > 0),
    refcount    integer NOT NULL CHECK (refcount >= 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    released_at timestamptz
);
CREATE INDEX objects_unreferenced_idx ON objects (released_at) WHERE refcount = 0;

-- The manifest: an object's chunks, in order.
CREATE TABLE object_chunks (
    object_digest bytea NOT NULL REFERENCES objects (digest) ON DELETE CASCADE,
    idx           integer NOT NULL CHECK (idx >= 0),
    chunk_digest  bytea NOT NULL REFERENCES chunks (digest),
    PRIMARY KEY (object_digest, idx)
);

CREATE TABLE images (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    object_digest bytea NOT NULL REFERENCES objects (digest),
    filename      text NOT NULL,
    content_type  text NOT NULL,
    width         integer,
    height        integer,
    description   text NOT NULL DEFAULT '',
    is_private    boolean NOT NULL DEFAULT false,
    -- kept in clear because the owner is shown it; compared with hmac.compare_digest
    access_key    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
-- Keyset pagination, newest first: everything visible, and one owner's images.
CREATE INDEX images_public_created_idx ON images (created_at DESC, id DESC) WHERE NOT is_private;
CREATE INDEX images_owner_created_idx ON images (owner_id, created_at DESC, id DESC);
CREATE INDEX images_object_idx ON images (object_digest);

-- Failed access-key attempts, per image and client, so every worker enforces one limit.
CREATE TABLE access_key_failures (
    image_id  bigint NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    client    text NOT NULL,
    failed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX access_key_failures_lookup_idx ON access_key_failures (image_id, client, failed_at);

-- Image variants (issue 12): a derived object per (source object, normalised transform).
--
-- A variant row holds one reference on its derived object (objects.refcount counts it, like an
-- image's row does), except when the derived bytes are the source's own (a re-encode that
-- changed nothing): that row holds none, or the source would keep itself alive forever.
-- Variants belong to the source *object*, not to an image: every image of the same bytes
-- shares them, and they live as long as the source object does. When the collector deletes a
-- source object row, its variant rows go with it (ON DELETE CASCADE) and the trigger below
-- drops their references, so the derived objects are collected next (the same run, with
-- grace 0).
CREATE TABLE variants (
    source_digest bytea NOT NULL REFERENCES objects (digest) ON DELETE CASCADE,
    -- Transform.key, e.g. 'w=200,h=0,fit=inside,fmt=webp,q=80' (imagerepo/variants/transform.py)
    transform     text NOT NULL CHECK (length(transform) BETWEEN 1 AND 100),
    -- No cascade: the collector never frees an object a variant row still names (the object
    -- references SQL includes these rows), and this key makes sure of it.
    object_digest bytea NOT NULL REFERENCES objects (digest),
    content_type  text NOT NULL,
    width         integer NOT NULL CHECK (width > 0),
    height        integer NOT NULL CHECK (height > 0),
    -- made on a request or by the background worker; off_grid: a side outside the size grid
    -- (only owners may ask for those). Both feed the per-source cap and rate limit.
    made_by       text NOT NULL CHECK (made_by IN ('request', 'worker')),
    off_grid      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_digest, transform)
);
-- From a derived object to the rows naming it (fsck's counts, the collector's guard).
CREATE INDEX variants_object_idx ON variants (object_digest);
-- The rate limit counts a source's recent off-grid variants.
CREATE INDEX variants_off_grid_idx ON variants (source_digest, created_at) WHERE off_grid;

-- Release the derived objects of deleted variant rows. Statement level, with the object rows
-- locked in digest order first: the collector deletes many sources in one statement, and two
-- collectors releasing overlapping sets must take the locks in one order or deadlock.
CREATE FUNCTION variants_release_objects() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM objects o
     WHERE o.digest IN (SELECT object_digest FROM gone WHERE object_digest <> source_digest)
     ORDER BY o.digest FOR UPDATE;
    UPDATE objects o SET refcount = o.refcount - g.n,
           released_at = CASE WHEN o.refcount = g.n THEN now() ELSE o.released_at END
      FROM (SELECT object_digest, count(*)::int AS n FROM gone
             WHERE object_digest <> source_digest GROUP BY object_digest) g
     WHERE o.digest = g.object_digest;
    RETURN NULL;
END
$$;
CREATE TRIGGER variants_release_objects AFTER DELETE ON variants REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION variants_release_objects();

-- The catalog: tags on images and full-text search over names, descriptions and tags.

-- Names are stored normalised (trimmed, whitespace collapsed, lower case: see imagerepo/tags.py),
-- so plain equality is case-insensitive equality and the unique key is enough.
CREATE TABLE tags (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 50 AND name = lower(name)),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE image_tags (
    image_id bigint NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    tag_id   bigint NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
    PRIMARY KEY (image_id, tag_id)
);
-- From a tag to its images (tag filters, per-tag counts).
CREATE INDEX image_tags_tag_idx ON image_tags (tag_id, image_id);

-- Words are cut at anything that is not a letter or digit, the same way the API cuts a query,
-- so "sunset_beach.jpg" is found by "beach" and "jpg", and "new-york" by "new york".
-- 'simple': no stemming or stop words (names and tags are not English prose); prefix queries
-- make up for the missing stemming. Weights: tags A, file name B, description C.
CREATE FUNCTION image_search_vector(filename text, description text, tag_names text)
RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT setweight(to_tsvector('simple', regexp_replace(coalesce(tag_names, ''), '[^[:alnum:]]+', ' ', 'g')), 'A')
        || setweight(to_tsvector('simple', regexp_replace(coalesce(filename, ''), '[^[:alnum:]]+', ' ', 'g')), 'B')
        || setweight(to_tsvector('simple', regexp_replace(coalesce(description, ''), '[^[:alnum:]]+', ' ', 'g')), 'C')
$$;

CREATE FUNCTION image_tag_names(image bigint) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT string_agg(t.name, ' ') FROM image_tags it JOIN tags t ON t.id = it.tag_id WHERE it.image_id = image
$$;

ALTER TABLE images ADD COLUMN search tsvector NOT NULL DEFAULT ''::tsvector;
UPDATE images SET search = image_search_vector(filename, description, NULL);
CREATE INDEX images_search_idx ON images USING gin (search);

-- The vector is kept by triggers, so every writer (API, seed-demo, plain SQL) keeps it right.
CREATE FUNCTION images_search_refresh() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.search := image_search_vector(NEW.filename, NEW.description,
                                      CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE image_tag_names(NEW.id) END);
    RETURN NEW;
END
$$;
CREATE TRIGGER images_search_refresh BEFORE INSERT OR UPDATE OF filename, description ON images
    FOR EACH ROW EXECUTE FUNCTION images_search_refresh();

CREATE FUNCTION image_tags_search_refresh() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE images i SET search = image_search_vector(i.filename, i.description, image_tag_names(i.id))
     WHERE i.id IN (SELECT image_id FROM changed);
    RETURN NULL;
END
$$;
-- Statement-level, so setting ten tags refreshes the image once, not ten times.
CREATE TRIGGER image_tags_added AFTER INSERT ON image_tags REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION image_tags_search_refresh();
CREATE TRIGGER image_tags_removed AFTER DELETE ON image_tags REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION image_tags_search_refresh();

-- Listing filters walk these in creation order (see imagerepo/images.py list_query).
CREATE INDEX images_type_created_idx ON images (content_type, created_at DESC, id DESC);

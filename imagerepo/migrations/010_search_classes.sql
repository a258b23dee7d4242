-- Search ranks by class: every word found among the tags > among the tags and the file name >
-- anywhere (the description), newest first inside a class (imagerepo/images/queries.py).
-- `search` (004_catalog.sql) holds all three with weights A (tags), B (name), C (description);
-- these two columns are it cut to A and to A+B, each with its own GIN index, so each class is a
-- query the planner can answer from an index: from the GIN index when its matches are few, by
-- walking the date index when they are many. Generated columns are computed after BEFORE
-- triggers, so they follow `search` however it is set (the tag triggers update it).
ALTER TABLE images
    ADD COLUMN search_tags tsvector GENERATED ALWAYS AS (ts_filter(search, '{a}')) STORED,
    ADD COLUMN search_named tsvector GENERATED ALWAYS AS (ts_filter(search, '{a,b}')) STORED;
CREATE INDEX images_search_tags_idx ON images USING gin (search_tags);
CREATE INDEX images_search_named_idx ON images USING gin (search_named);
-- The walk of a search class: every image newest first (public and the viewer's own together).
CREATE INDEX images_created_idx ON images (created_at DESC, id DESC);

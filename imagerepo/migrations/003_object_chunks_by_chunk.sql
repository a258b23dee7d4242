-- Deleting a chunk row makes PostgreSQL look for manifest entries that still name it (the
-- foreign key); without this index that is a scan of every manifest per freed chunk, and the
-- collector would hold its row locks (blocking uploads of those chunks) for the whole scan.
CREATE INDEX object_chunks_chunk_digest_idx ON object_chunks (chunk_digest);

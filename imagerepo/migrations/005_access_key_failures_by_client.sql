-- Failed access-key attempts are also limited per client across all images (one key can open
-- many images, e.g. a private batch upload), which needs this lookup.
CREATE INDEX access_key_failures_client_idx ON access_key_failures (client, failed_at);

"""Plans, quotas and expiring share links (issue 13).

A plan says what an account may store (quotas on logical bytes, images and upload size) and
hand out (thumbnail heights, the original, expiring share links). Modules: `queries` (the
`plans` table and the usage counters on `users`), `usage` (quota reservation, called by the
image service), `service` (administration), `links` + `link_queries` (share links),
`view` (what the owner's image JSON shows), `routes` / `link_routes` (HTTP), `cli`.
"""

"""Tags: this package owns tag names, the `tags` and `image_tags` tables, and the /tags routes.

A tag name is normalised before anything else sees it: Unicode NFKC, whitespace trimmed and
collapsed to single spaces, lower case. The result must be 1-50 characters of letters, digits,
marks, spaces and `- _ . + # & '`. Commas separate tags in form fields and query parameters, and
`/` would break `/tags/<name>/images`, so neither is allowed. Because names are stored normalised,
"Sunset", " sunset " and "SUNSET" are one tag, shown as "sunset".

    names.py    normalisation and the request field types that apply it
    queries.py  the SQL on `tags` and `image_tags`
    routes.py   GET /tags and GET /tags/<name>/images

Counts and listings only ever include images the caller may see (public ones, and the caller's
own): a tag carried only by someone else's private images must never appear at all. Listing a
tag's images is the image listing's job (imagerepo.images); this package never queries images
for display itself.
"""

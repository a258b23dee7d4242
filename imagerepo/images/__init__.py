"""Images: this package owns the `images` table and the /images routes.

Upload (multipart, raw body or batch) -> the bytes are staged chunk by chunk as they arrive,
typed by their content, then committed to the blob store and recorded in one transaction.
Metadata, content (ETag, Range, HEAD), change, tags, delete and the paginated listing follow.

    schemas.py  request and response schemas; an image row as the API shows it
    queries.py  the SQL on `images`, and the listing's page query
    service.py  create, change, re-tag, delete (one transaction each)
    listing.py  a page of what a viewer may see, with the next cursor
    upload.py   multipart, raw and batch uploads, all ending in `store_upload`
    content.py  serving bytes: Range, conditional requests, Content-Disposition
    errors.py   what image operations raise (mapped to HTTP in imagerepo/errors.py)
    routes.py   the blueprint and its views

Who may see or change what is decided in imagerepo.access, never here; bytes are stored and
read through the blob store, never from files directly; a file name is never used as a path;
only routes.py (and upload/content, which serve it) may speak HTTP, and nothing outside the app
and other route modules imports routes.py.
"""

"""The /images routes: upload (multipart, raw body, batch), metadata, content, listing, change,
tags and delete. Views parse (via @api), call the domain functions and shape the answer."""

from __future__ import annotations

from flask import Blueprint, request

from .. import access
from ..errors import describe
from ..validation import ErrorDetail, api
from ..variants import images as variants
from . import service
from .content import content_response, variant_row
from .listing import LIST_ERRORS, listing
from .schemas import (
    BatchFailure,
    BatchForm,
    BatchOut,
    ContentQuery,
    DeletedOut,
    ImageAccessQuery,
    ImageListOut,
    ImageOut,
    ImagePatch,
    ImagePut,
    ListQuery,
    RawUploadQuery,
    TagsPut,
    UploadForm,
    image_out,
)
from .upload import (
    MAX_BATCH_BYTES,
    MAX_BATCH_FILES,
    BatchSink,
    StagingSink,
    batch_body_limit,
    sink_of,
    store_batch_part,
    store_raw_body,
    store_upload,
)

bp = Blueprint("images", __name__)

_UPLOAD_ERRORS = {
    400: "Empty file or malformed body",
    413: "Larger than IMAGEREPO_MAX_UPLOAD_BYTES",
    415: "Not an accepted image type",
    422: "Invalid field, missing file, or too many pixels",
    507: "Disk full: nothing was stored",
}
_CHANGE_ERRORS = {400: "Malformed JSON", 403: "Not the owner", 404: "Absent or not visible to you", 422: ""}
_KEY_HEADER = [
    {
        "name": "X-Access-Key",
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": "Access key of someone else's private image (kept out of access logs)",
    }
]
_READ_ERRORS = {
    403: "Wrong access key",
    404: "Absent, or private and no key given",
    429: "Too many wrong access keys for this image from this client",
}


def one_image(row, viewer: int | None):
    """One image's JSON, with its variants (listings and batches leave them out: a query each)."""
    return image_out(row, viewer, variants=variants.listed(row, viewer))


# -- upload ---------------------------------------------------------------------------------
@bp.post("/images")
@api(
    form=UploadForm,
    file_sink=StagingSink,
    response=ImageOut,
    status=201,
    responses=_UPLOAD_ERRORS,
    summary="Upload an image (multipart/form-data)",
)
def upload(form: UploadForm):
    owner = access.caller_id()
    return one_image(store_upload(owner, sink_of(form.file).stager, form.file.filename, form), owner)


@bp.post("/images/raw")
@api(
    query=RawUploadQuery,
    response=ImageOut,
    status=201,
    responses=_UPLOAD_ERRORS,
    summary="Upload an image sent as the raw request body (for large files)",
    request_doc={
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    },
)
def upload_raw(query: RawUploadQuery):
    owner = access.caller_id()
    return one_image(store_raw_body(owner, request.stream, query.name, query), owner)


@bp.post("/images/batch")
@batch_body_limit
@api(
    form=BatchForm,
    file_sink=BatchSink,
    response=BatchOut,
    status=201,
    other_statuses={200: "Some files were refused (listed in `failed`), the others stored"},
    responses={
        400: "Malformed body",
        413: f"More than {MAX_BATCH_FILES} files, or the body is over {MAX_BATCH_BYTES} bytes",
        422: "Invalid field or no file",
        507: "Disk full: nothing was stored",
    },
    summary="Upload many images in one multipart request; each file is stored or refused on its own",
)
def upload_batch(form: BatchForm):
    owner = access.caller_id()
    created, failed = [], []
    for part in form.file:
        try:
            created.append(image_out(store_batch_part(owner, part, form), owner))
        except Exception as err:
            # A file refused for what it is (empty, too large, not an image) is listed; anything
            # else (the database gone, a bug) fails the request as it would for one upload.
            problem = describe(err)
            if problem is None or problem.status >= 500:
                raise
            failed.append(
                BatchFailure(
                    name=service.display_name(part.filename),
                    error=ErrorDetail(code=problem.code, message=problem.message),
                )
            )
    return BatchOut(created=created, failed=failed), 200 if failed else 201


# -- reading --------------------------------------------------------------------------------
@bp.get("/images/<int:image_id>")
@api(
    query=ImageAccessQuery,
    response=ImageOut,
    auth="optional",
    responses={**_READ_ERRORS, 422: ""},
    parameters=_KEY_HEADER,
    summary="An image's metadata",
)
def get_image(image_id: int, query: ImageAccessQuery):
    viewer = access.caller_id(optional=True)
    row = access.visible_image(image_id, viewer, access.presented_key(query.accesskey))
    return one_image(service.tagged(row), viewer)


@bp.get("/images/<int:image_id>/content")
@api(
    query=ContentQuery,
    auth="optional",
    responses={
        **_READ_ERRORS,
        415: "A variant of an image type that cannot be converted",
        416: "Range not satisfiable",
        422: "Invalid transform parameters, or the image's variant limit is reached",
        429: "Too many off-grid variant sizes of this image lately",
    },
    parameters=_KEY_HEADER
    + [
        {
            "name": "Range",
            "in": "header",
            "required": False,
            "schema": {"type": "string"},
            "description": "bytes=first-last, bytes=first- or bytes=-suffix (one range)",
        },
        {"name": "If-None-Match", "in": "header", "required": False, "schema": {"type": "string"}},
    ],
    summary="The image's bytes, or a variant of them (GET or HEAD; Range, If-None-Match)",
    response_doc={
        "description": "The bytes, with ETag, Accept-Ranges, Content-Length; 206 for a range,"
        " 304 when If-None-Match matches",
        "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
    },
    other_statuses={206: "The range asked for (Content-Range)", 304: "Not modified: If-None-Match matches the ETag"},
)
def get_content(image_id: int, query: ContentQuery):
    viewer = access.caller_id(optional=True)
    row = access.visible_image(image_id, viewer, access.presented_key(query.accesskey))
    wanted = variants.requested(row, viewer, request.args.items(multi=True))
    if wanted is not None:
        row = variant_row(row, variants.variant_of(row, wanted))
    return content_response(row, query.download)


@bp.get("/images")
@api(
    query=ListQuery,
    response=ImageListOut,
    auth="optional",
    responses=LIST_ERRORS,
    summary="The caller's images and public ones: newest first, or by relevance with q (keyset pagination)",
)
def list_route(query: ListQuery):
    return listing(access.caller_id(optional=True), query)


# -- changing -------------------------------------------------------------------------------
@bp.put("/images/<int:image_id>")
@api(
    body=ImagePut,
    response=ImageOut,
    responses=_CHANGE_ERRORS,
    summary="Replace an image's description, privacy and access key (owner only)",
)
def put_image(image_id: int, body: ImagePut):
    owner = access.caller_id()
    changes = body.model_dump(include={"description", "isPrivate", "accessKey"})
    return one_image(service.update_image(image_id, owner, changes), owner)


@bp.patch("/images/<int:image_id>")
@api(
    body=ImagePatch,
    response=ImageOut,
    responses=_CHANGE_ERRORS,
    summary="Change some of description, isPrivate, accessKey (owner only)",
)
def patch_image(image_id: int, body: ImagePatch):
    owner = access.caller_id()
    changes = body.model_dump(include=body.model_fields_set)
    return one_image(service.update_image(image_id, owner, changes), owner)


@bp.put("/images/<int:image_id>/tags")
@api(
    body=TagsPut,
    response=ImageOut,
    responses=_CHANGE_ERRORS,
    summary="Replace an image's tags (owner only); tags are created on first use",
)
def put_tags(image_id: int, body: TagsPut):
    owner = access.caller_id()
    return one_image(service.replace_tags(image_id, owner, body.tags), owner)


@bp.delete("/images/<int:image_id>")
@api(
    response=DeletedOut,
    status=202,
    responses={403: "Not the owner", 404: "Absent or not visible to you"},
    summary="Delete an image (gone at once; storage reclaimed by the collector)",
)
def delete_route(image_id: int):
    owner = access.caller_id()
    service.delete_image(image_id, owner)
    return DeletedOut(id=image_id)

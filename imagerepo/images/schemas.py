"""What the /images routes accept and answer: the request and response schemas (validated and
documented by imagerepo.validation), and the image row as the API shows it."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import pydantic
from pydantic.json_schema import SkipJsonSchema

from .. import imagetypes
from ..fieldtypes import NOT_BLANK, InstantText, JsonFlag, TextFlag, parse_instant
from ..pagination import Cursor, PageSize
from ..plans import view as plan_view
from ..plans.schemas import LinkOut
from ..tags.names import TagFields, TagNames
from ..validation import ErrorDetail, Schema, SparseSchema, UploadedFile
from ..variants.transform import ALL_FORMATS, FITS, MAX_SIDE, QUALITIES, SIZES
from .queries import search_words
from .upload import MAX_BATCH_FILES

Description = Annotated[str, pydantic.StringConstraints(max_length=5000)]
AccessKey = Annotated[
    str,
    pydantic.StringConstraints(strip_whitespace=True, min_length=1, max_length=256),
    pydantic.WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 256, "pattern": NOT_BLANK}),
]
IsPrivate = TextFlag


class UploadForm(Schema):
    file: UploadedFile = pydantic.Field(description="The image (JPEG, PNG, GIF, WebP, BMP, TIFF or DICOM)")
    description: Description = ""
    isPrivate: IsPrivate = False
    accessKey: AccessKey | None = pydantic.Field(
        None, description="Key others must present to see a private image; generated when omitted"
    )
    tags: TagFields = []


class RawUploadQuery(Schema):
    name: Annotated[str, pydantic.StringConstraints(min_length=1, max_length=4096)] = pydantic.Field(
        description="The original file name (metadata only; kept to its last 255 characters' worth)"
    )
    description: Description = ""
    isPrivate: IsPrivate = False
    accessKey: AccessKey | None = None
    tags: TagFields = []


class BatchForm(Schema):
    file: list[UploadedFile] = pydantic.Field(
        min_length=1, max_length=MAX_BATCH_FILES, description=f"The images: one part each, at most {MAX_BATCH_FILES}"
    )
    description: Description = ""
    isPrivate: IsPrivate = False
    accessKey: AccessKey | None = pydantic.Field(
        None, description="Key for every private image of the batch; each gets its own generated one when omitted"
    )
    tags: TagFields = []

    @pydantic.field_validator("file", mode="before")
    @classmethod
    def _one_or_many(cls, value):
        return value if isinstance(value, list) else [value]


class ImageAccessQuery(Schema):
    accesskey: Annotated[str, pydantic.StringConstraints(max_length=1024)] | None = pydantic.Field(
        None, description="Access key of someone else's private image (or header X-Access-Key)"
    )


_Param = Annotated[str, pydantic.StringConstraints(max_length=20)]


# The variant parameters are text (imagerepo/variants/transform.py checks them), documented as
# what that check takes.
_Side = Annotated[_Param, pydantic.WithJsonSchema({"type": "integer", "minimum": 1, "maximum": MAX_SIDE})]
_Fit = Annotated[_Param, pydantic.WithJsonSchema({"type": "string", "enum": list(FITS)})]
_Format = Annotated[_Param, pydantic.WithJsonSchema({"type": "string", "enum": [*ALL_FORMATS, "jpg"]})]
_Quality = Annotated[_Param, pydantic.WithJsonSchema({"type": "integer", "enum": list(QUALITIES)})]
_ImgFormat = Annotated[_Param, pydantic.WithJsonSchema({"type": "string", "enum": ["jpeg", "jpg", "png"]})]


class ContentQuery(ImageAccessQuery):
    """Any of width, height, fit, format, quality asks for a variant (imagerepo/variants/transform.py
    checks them: 422 invalid_transform); none gives the original bytes."""

    download: TextFlag = pydantic.Field(False, description="1: serve as an attachment (Content-Disposition)")
    width: _Side | None = pydantic.Field(
        None, description="Variant width in px: the owner 1-4096, others one of the size grid"
    )
    height: _Side | None = pydantic.Field(
        None, description="Variant height in px: the owner 1-4096, others one of the size grid"
    )
    fit: _Fit | None = pydantic.Field(None, description="inside (default) or cover (needs width and height; crops)")
    format: _Format | None = pydantic.Field(
        None,
        description="jpeg (or jpg), png, webp or avif (where the server's libvips writes it); default: the source's",
    )
    quality: _Quality | None = pydantic.Field(None, description="50, 70, 80 (default) or 90; ignored for png")
    img_format: _ImgFormat | None = pydantic.Field(
        None, description="jpeg (or jpg) or png (seed 002's name for format; not with format)"
    )


class ImageFilters(Schema):
    """The filters GET /images and GET /tags/<name>/images share. All of them combine (AND)."""

    tag: TagFields = pydantic.Field([], description="Images carrying all these tags (repeat and/or comma-separate)")
    # At least one letter or digit: the words searched for (queries.search_words).
    q: Annotated[str, pydantic.StringConstraints(max_length=200)] | None = pydantic.Field(
        None,
        description="Search file names, descriptions and tags (word prefixes; ranked: tags > name > description)",
        json_schema_extra={"pattern": r"^[^\u0000]*[\p{L}\p{N}][^\u0000]*$"},
    )
    from_: InstantText | None = pydantic.Field(
        None, alias="from", description="Created at or after (ISO 8601 date or date-time)"
    )
    to: InstantText | None = pydantic.Field(
        None, description="Created at or before (ISO 8601; a date means that whole day; before `from`: no images)"
    )
    owner: Annotated[str, pydantic.StringConstraints(max_length=200, pattern=r"^[^\x00]*$")] | None = pydantic.Field(
        None, description="Owner's user name"
    )
    type: imagetypes.AcceptedType | None = pydantic.Field(None, description="Content type, e.g. image/png")

    @pydantic.field_validator("q")
    @classmethod
    def _words(cls, value):
        if value is not None and not search_words(value):
            raise ValueError("q holds no letters or digits to search for")
        return value

    @property
    def created_after(self) -> dt.datetime | None:
        return parse_instant(self.from_) if self.from_ else None

    @property
    def created_before(self) -> dt.datetime | None:
        """The exclusive upper bound: the end of the day for a date, else just past `to`."""
        if not self.to:
            return None
        try:
            return parse_instant(self.to) + (
                dt.timedelta(days=1) if len(self.to) == 10 else dt.timedelta(microseconds=1)
            )
        except OverflowError:
            return None


class ListQuery(ImageFilters):
    limit: PageSize = 20
    cursor: Cursor | None = None
    mine: TextFlag = pydantic.Field(False, description="1: only the caller's images (needs a token)")
    thumbnail: Annotated[int, pydantic.WithJsonSchema({"type": "integer", "enum": list(SIZES)})] | None = (
        pydantic.Field(
            None, description="A height from the variant size grid (200, 400, ...): adds thumbnailUrl to each image"
        )
    )

    @pydantic.field_validator("thumbnail")
    @classmethod
    def _on_the_grid(cls, value: int | None) -> int | None:
        if value is not None and value not in SIZES:
            raise ValueError(f"must be one of {', '.join(map(str, SIZES))}")
        return value


class ImagePut(Schema):
    description: Description
    isPrivate: JsonFlag
    accessKey: AccessKey | None = None


class ImagePatch(Schema):
    model_config = pydantic.ConfigDict(json_schema_extra={"minProperties": 1})

    # Optional, but not nullable: leave a field out to keep it.
    description: Description | SkipJsonSchema[None] = None
    isPrivate: JsonFlag | SkipJsonSchema[None] = None
    accessKey: AccessKey | None = None

    @pydantic.model_validator(mode="after")
    def _something_to_change(self):
        if not self.model_fields_set:
            raise ValueError("give at least one of description, isPrivate, accessKey")
        if "description" in self.model_fields_set and self.description is None:
            raise ValueError("description must be a string")
        if "isPrivate" in self.model_fields_set and self.isPrivate is None:
            raise ValueError("isPrivate must be a boolean")
        return self


class TagsPut(Schema):
    tags: TagNames = pydantic.Field(description="The image's tags from now on (an empty list removes them all)")


class VariantOut(Schema):
    width: int | None = pydantic.Field(description="Pixels (predicted when it does not exist yet)")
    height: int | None
    format: str
    url: str = pydantic.Field(description="Path of its content (with the access key for the owner of a private image)")
    exists: bool = pydantic.Field(description="False: made on the first request (or by the background worker)")


class Thumbnail(Schema):
    height: int
    url: str


class ImageOut(SparseSchema):
    sparse_fields = ("accessKey", "variants", "thumbnailUrl", "thumbnails", "originalUrl", "shareLinks")

    id: int
    name: str
    creator: int = pydantic.Field(description="Id of the owner")
    locked: bool = pydantic.Field(description="Same as isPrivate (the original ImageRepo's name)")
    accessKey: str | None = pydantic.Field(None, description="Only shown to the owner; absent for others")
    description: str
    isPrivate: bool
    size: int
    contentType: str
    width: int | None
    height: int | None
    sha256: str
    createdAt: dt.datetime
    updatedAt: dt.datetime
    url: str = pydantic.Field(description="Path of the content")
    tags: list[str] = pydantic.Field(description="Tag names, sorted")
    variants: list[VariantOut] | None = pydantic.Field(
        None, description="Variants that exist or are made in the background (one image's JSON, not listings)"
    )
    thumbnailUrl: str | None = pydantic.Field(None, description="Listings with ?thumbnail=: path of that variant")
    # What the owner's plan gives (imagerepo/plans/view.py); absent for everyone else.
    thumbnails: list[Thumbnail] | None = pydantic.Field(None, description="Owner only: the plan's thumbnail URLs")
    originalUrl: str | None = pydantic.Field(None, description="Owner only: the original's URL, if the plan gives it")
    shareLinks: list[LinkOut] | None = pydantic.Field(None, description="Owner only: the image's live share links")


def image_out(row, viewer_id: int | None, **extra) -> ImageOut:
    """An image row (with its tags) as `viewer_id` may see it: the access key for the owner only."""
    fields = dict(
        id=row["id"],
        name=row["filename"],
        creator=row["owner_id"],
        locked=row["is_private"],
        description=row["description"],
        isPrivate=row["is_private"],
        size=row["size"],
        contentType=row["content_type"],
        width=row["width"],
        height=row["height"],
        sha256=bytes(row["object_digest"]).hex(),
        createdAt=row["created_at"],
        updatedAt=row["updated_at"],
        url=f"/images/{row['id']}/content",
        tags=row["tags"],
    )
    if viewer_id is not None and viewer_id == row["owner_id"]:
        fields["accessKey"] = row["access_key"]
        fields.update(plan_view.owner_fields(row))
    return ImageOut(**fields, **extra)


class ImageListOut(Schema):
    images: list[ImageOut]
    nextCursor: str | None


class DeletedOut(Schema):
    id: int
    deleted: bool = True


class BatchFailure(Schema):
    name: str = pydantic.Field(description="The refused file's name")
    error: ErrorDetail


class BatchOut(Schema):
    created: list[ImageOut]
    failed: list[BatchFailure]

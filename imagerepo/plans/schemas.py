"""What the plan and share-link routes accept and answer."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import pydantic
from pydantic.json_schema import SkipJsonSchema

from ..fieldtypes import JsonFlag
from ..validation import Schema

PlanName = Annotated[str, pydantic.StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$")]
Height = Annotated[int, pydantic.Field(ge=1, le=10000)]
Quota = Annotated[int, pydantic.Field(ge=0, le=2**62)] | None
Format = Literal["jpeg", "png", "webp", "avif"]


class PlanFields(Schema):
    thumbnailHeights: list[Height] = pydantic.Field(
        [], max_length=16, description="Heights (px) of the thumbnails the plan gives links to"
    )
    originalViaLinks: bool = pydantic.Field(False, description="The original image is available through links")
    expiringLinks: bool = pydantic.Field(False, description="Expiring share links may be made")
    maxStoredBytes: Quota = pydantic.Field(None, description="Logical bytes the account may store (null: unlimited)")
    maxImages: Quota = pydantic.Field(None, description="Images the account may hold (null: unlimited)")
    maxUploadBytes: Annotated[int, pydantic.Field(ge=1, le=2**62)] | None = pydantic.Field(
        None, description="Largest single upload (null: the server's IMAGEREPO_MAX_UPLOAD_BYTES)"
    )

    @pydantic.field_validator("thumbnailHeights")
    @classmethod
    def _sorted_unique(cls, value: list[int]) -> list[int]:
        return sorted(set(value))


class PlanIn(PlanFields):
    name: PlanName


class PlanPatch(Schema):
    """Only the fields sent change (the quotas take null: unlimited; the others do not)."""

    # At least one field; the first three are optional but not nullable (the document says so).
    model_config = pydantic.ConfigDict(json_schema_extra={"minProperties": 1})

    thumbnailHeights: Annotated[list[Height], pydantic.Field(max_length=16)] | SkipJsonSchema[None] = None
    originalViaLinks: JsonFlag | SkipJsonSchema[None] = None
    expiringLinks: JsonFlag | SkipJsonSchema[None] = None
    maxStoredBytes: Quota = None
    maxImages: Quota = None
    maxUploadBytes: Annotated[int, pydantic.Field(ge=1, le=2**62)] | None = None

    @pydantic.model_validator(mode="after")
    def _something(self):
        if not self.model_fields_set:
            raise ValueError("give at least one field to change")
        for name in ("thumbnailHeights", "originalViaLinks", "expiringLinks"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class PlanOut(PlanFields):
    id: int
    name: str
    createdAt: dt.datetime
    updatedAt: dt.datetime


class PlansOut(Schema):
    plans: list[PlanOut]


class AssignIn(Schema):
    plan: PlanName = pydantic.Field(description="The plan's name")


class QuotaUse(Schema):
    used: int
    limit: int | None = pydantic.Field(description="null: unlimited")


class UsageOut(Schema):
    storedBytes: QuotaUse = pydantic.Field(description="Logical bytes of the account's images")
    images: QuotaUse
    uploadBytes: QuotaUse = pydantic.Field(description="The largest upload allowed (used: always 0)")


class AccountPlanOut(Schema):
    userId: int
    plan: PlanOut
    usage: UsageOut


# -- share links ----------------------------------------------------------------------------
class VariantIn(Schema):
    # A height or a format that is not null (each may be null when the other is given).
    model_config = pydantic.ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["height"], "properties": {"height": {"type": "integer"}}},
                {"required": ["format"], "properties": {"format": {"type": "string"}}},
            ]
        }
    )

    height: Height | None = None
    format: Format | None = None

    @pydantic.model_validator(mode="after")
    def _something(self):
        if self.height is None and self.format is None:
            raise ValueError("a variant needs a height or a format")
        return self


def _lifetime_bounds(schema: dict) -> None:
    """The document states the running server's bounds (the domain enforces them)."""
    from ..config import Config
    from ..context import services

    try:
        config = services().config
        low, high = config.link_min_seconds, config.link_max_seconds
    except RuntimeError:  # outside an app: the defaults
        low, high = Config.link_min_seconds, Config.link_max_seconds
    schema.update(minimum=low, maximum=high)


class LinkIn(Schema):
    expiresIn: int = pydantic.Field(
        description="Seconds the link works (IMAGEREPO_LINK_MIN_SECONDS to IMAGEREPO_LINK_MAX_SECONDS)",
        json_schema_extra=_lifetime_bounds,
    )
    variant: VariantIn | None = pydantic.Field(None, description="A thumbnail height and/or format; null: the original")
    format: Format | None = pydantic.Field(None, description="Shorthand for variant.format")


class LinkOut(Schema):
    id: int
    url: str | None = pydantic.Field(description="/s/<token>: only in the answer that made it (the token is not kept)")
    expiresAt: dt.datetime
    createdAt: dt.datetime
    variant: VariantIn | None


class LinksOut(Schema):
    links: list[LinkOut]

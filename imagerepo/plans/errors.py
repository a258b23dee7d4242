"""What plan, quota and share-link operations raise: plain exceptions whose text is the
client's message; imagerepo/errors.py maps each to its answer."""

from __future__ import annotations


class QuotaExceeded(Exception):
    """An upload that would take the account past one of its plan's quotas."""

    quota = ""

    def __init__(self, plan: str, limit: int, what: str):
        super().__init__(f"the {plan} plan allows {limit} {what}; this upload would pass it")
        self.plan = plan
        self.limit = limit


class StorageQuotaExceeded(QuotaExceeded):
    quota = "quota_bytes"


class ImageQuotaExceeded(QuotaExceeded):
    quota = "quota_images"


class UploadQuotaExceeded(QuotaExceeded):
    quota = "quota_upload_bytes"


class PlanNotFound(Exception):
    def __init__(self, name: str | None = None):
        super().__init__(f"no plan named {name!r}" if name else "no such plan")


class PlanNameTaken(Exception):
    def __init__(self, name: str):
        super().__init__(f"a plan named {name!r} exists already")


class PlanForbids(Exception):
    """The owner's plan does not give this kind of link."""


class LinkNotFound(Exception):
    """Unknown, forged, expired or revoked: all answered alike, so a token tells nothing."""

    def __init__(self) -> None:
        super().__init__("no such link, or it has expired")


class InvalidLifetime(Exception):
    """expiresIn outside the configured bounds."""

"""The variant domain's errors. The API maps them to HTTP in one place; nothing here knows it."""

from __future__ import annotations


class VariantError(Exception):
    """A variant cannot be made; the message is safe to show to the client."""


class VariantUnsupported(VariantError):
    """This source cannot be turned into a variant (its type, its encoding, undecodable bytes).
    The API answers 415."""


class VariantTooLarge(VariantError):
    """The source has more pixels than the limit. The API answers 422 image_too_large."""


class VariantLimitReached(VariantError):
    """The source has as many variants made on request as one image may have. The API answers
    422 variant_limit (asking again will not help; ask for a variant that exists)."""


class VariantRateLimited(VariantError):
    """Too many off-grid variants of this source were made recently. The API answers 429 with
    Retry-After."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class VariantSourceGone(VariantError):
    """The source object was freed while its variant was asked for (its image was deleted)."""

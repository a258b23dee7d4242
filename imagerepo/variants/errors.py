"""The variant domain's errors. The API maps them to HTTP in one place; nothing here knows it."""

from __future__ import annotations


class VariantError(Exception):
    """A variant cannot be made; the message is safe to show to the client."""


class VariantUnsupported(VariantError):
    """This source cannot be turned into a variant (its type, its encoding, undecodable bytes).
    The API answers 415."""


class VariantTooLarge(VariantError):
    """The source has more pixels than the limit. The API answers 422 image_too_large."""

"""What image operations raise: plain exceptions whose text is the client's message. They say
nothing about HTTP; imagerepo/errors.py maps each to its answer."""

from __future__ import annotations


class ImageNotFound(Exception):
    """Absent, or someone else's private image asked for without a key (its existence is not
    revealed either way)."""

    def __init__(self) -> None:
        super().__init__("no such image")


class NotOwner(Exception):
    """Someone else's image the caller can see but not change."""

    def __init__(self) -> None:
        super().__init__("only the owner can change or delete this image")


class WrongAccessKey(Exception):
    """A key that opens nothing: someone else's private image with the wrong key, or any key for
    an id that does not exist. Answered alike (404), so a key tells nothing about which ids exist."""

    def __init__(self) -> None:
        super().__init__("no such image, or the access key is wrong")


class TooManyAttempts(Exception):
    """Too many wrong access keys from one client; try again after `retry_after` seconds."""

    def __init__(self, retry_after: int):
        super().__init__("too many wrong access keys for this image; try again later")
        self.retry_after = retry_after


class LoginRequired(Exception):
    """The request needs a caller (e.g. mine=1) and none was identified."""


class TooManyFiles(Exception):
    def __init__(self, limit: int):
        super().__init__(f"a batch holds at most {limit} files")
        self.limit = limit


class RangeNotSatisfiable(Exception):
    """The Range asked for starts at or past the end of content `size` bytes long."""

    def __init__(self, size: int):
        super().__init__(f"the content is {size} bytes")
        self.size = size

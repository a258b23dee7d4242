"""What account operations raise (registration, login, administration): plain exceptions whose
text is the client's message. They say nothing about HTTP; imagerepo/errors.py maps each to its
answer, and the command line prints them."""

from __future__ import annotations


class NameTaken(Exception):
    """The user name or the email is registered already."""

    def __init__(self, field: str):
        super().__init__(f"that {field} is already registered")
        self.field = field


class InvalidCredentials(Exception):
    """Wrong name or password; the same for an unknown user, so it reveals nothing."""

    def __init__(self) -> None:
        super().__init__("wrong user name or password")


class AccountDisabled(Exception):
    def __init__(self) -> None:
        super().__init__("this account is disabled")


class AccountGone(Exception):
    """A valid token whose account no longer exists."""

    def __init__(self) -> None:
        super().__init__("the account of this token no longer exists")


class AdminOnly(Exception):
    def __init__(self, message: str = "administrators only"):
        super().__init__(message)


class UserNotFound(Exception):
    def __init__(self) -> None:
        super().__init__("no such user")


class CannotDisableSelf(Exception):
    def __init__(self) -> None:
        super().__init__("an administrator cannot disable their own account")

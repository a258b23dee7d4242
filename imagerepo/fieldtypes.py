"""Request field types whose JSON Schema says exactly what they accept, so the OpenAPI document
(imagerepo/openapi.py) and the server agree (tests/test_schemathesis.py checks it): pydantic's
lax defaults take more than a schema can say (`"yes"` for a boolean, a number of seconds for a
date-time)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import pydantic
from pydantic_core import PydanticCustomError

# Text holding a character that is not Unicode White_Space (what pydantic's strip_whitespace
# strips), so it is not empty once stripped; and, like every request text, no NUL.
_WHITE_SPACE = "\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
NOT_BLANK = f"^[^\\u0000]*[^\\u0000{_WHITE_SPACE}][^\\u0000]*$"

_FLAG_TEXT = {"0": False, "1": True, "false": False, "true": True}


def _flag(value: Any) -> bool:
    # true/false; 0/1, which the original ImageRepo's clients send; and their text (query strings,
    # form fields, and JSON from clients that quote everything).
    if isinstance(value, bool):
        return value
    if type(value) in (int, float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in _FLAG_TEXT:
        return _FLAG_TEXT[value.lower()]
    raise PydanticCustomError("flag", "true, false, 0 or 1 is required")


# The same text as a JSON Schema pattern (any case).
FLAG_TEXT_PATTERN = "^(?:0|1|[Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee])$"

# A boolean in a JSON body.
JsonFlag = Annotated[
    bool,
    pydantic.PlainValidator(_flag),
    pydantic.WithJsonSchema(
        {
            "anyOf": [{"type": "boolean"}, {"enum": [0, 1]}, {"type": "string", "pattern": FLAG_TEXT_PATTERN}],
            "description": "true/false, 0/1, or the same as text",
        }
    ),
]
# A boolean in a query string or a form field (imagerepo.openapi spells out a form's text).
TextFlag = Annotated[
    bool,
    pydantic.PlainValidator(_flag),
    pydantic.WithJsonSchema({"type": "boolean", "description": "0/1 or true/false"}),
]


def parse_instant(value: str) -> dt.datetime:
    """An ISO 8601 date or date-time; no zone means UTC."""
    if not isinstance(value, str) or len(value) > 40:
        raise ValueError("an ISO 8601 date or date-time is required")
    try:
        if len(value) == 10:
            stamp = dt.datetime.combine(dt.date.fromisoformat(value), dt.time())
        else:
            stamp = dt.datetime.fromisoformat(value.upper() if "t" in value or "z" in value else value)
    except ValueError:
        raise ValueError("an ISO 8601 date (2024-05-01) or date-time (2024-05-01T12:00:00Z) is required") from None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)


def _instant_text(value: Any) -> str:
    if not isinstance(value, str):
        raise PydanticCustomError("instant", "an ISO 8601 date or date-time is required")
    parse_instant(value)
    return value


_INSTANT_SCHEMA = {
    "anyOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}],
    "description": "An ISO 8601 date (2024-05-01) or date-time (2024-05-01T12:00:00Z; no zone means UTC)",
}

# A date (2024-05-01) or an RFC 3339 date-time, kept as the text given (a date and a date-time
# bound a range differently). Numbers (seconds since 1970, as pydantic would read) are refused.
InstantText = Annotated[
    str,
    pydantic.PlainValidator(_instant_text),
    pydantic.WithJsonSchema(_INSTANT_SCHEMA),
]

# The same, read as the instant itself (a date is its midnight, UTC).
Instant = Annotated[
    dt.datetime,
    pydantic.PlainValidator(lambda value: parse_instant(_instant_text(value))),
    pydantic.WithJsonSchema(_INSTANT_SCHEMA),
]

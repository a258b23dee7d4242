"""multipart/form-data parsing with a budget for the text parts.

werkzeug's own parser bounds each text part (`max_form_memory_size`) and the number of parts
(`max_form_parts`, files included) but not the text as a whole: 900 text parts of 1 MiB each
were held in memory (about 1 GB) before validation could refuse them. Here text parts are
counted and summed as they arrive and the body is refused (413) as soon as either budget is
spent. File parts are streamed, as before, into the objects `stream_factory` makes.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.formparser import MultiPartParser, default_stream_factory
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from .errors import ApiError

KiB = 1024
_READ_SIZE = 64 * KiB
# What the decoder may buffer before it finds a part's headers or a boundary.
_DECODER_BUFFER = 1024 * KiB


@dataclasses.dataclass(frozen=True)
class TextBudget:
    # Text fields are a description (5000 characters), a flag, a key and tags (30 per image).
    parts: int = 64
    part_bytes: int = 64 * KiB
    total_bytes: int = 256 * KiB
    # All parts, files included (werkzeug's default).
    all_parts: int = 1000


def _too_much_text(message: str) -> ApiError:
    return ApiError(413, "too_large", message)


def parse(stream, boundary: bytes, stream_factory, budget: TextBudget = TextBudget()):
    """(text fields, file parts) of a multipart body read from `stream`.

    ValueError for a body that is not well-formed multipart; 413 past the budget."""
    stream_factory = stream_factory or default_stream_factory
    decoder = MultipartDecoder(boundary, max_form_memory_size=_DECODER_BUFFER, max_parts=budget.all_parts)
    charset_of = MultiPartParser().get_part_charset
    fields: list[tuple[str, str]] = []
    files: list[tuple[str, FileStorage]] = []
    text_parts = text_bytes = part_bytes = 0
    part: Field | File | None = None
    container: Any = None  # a list of a text field's pieces, or a file part's sink
    while True:
        data = stream.read(_READ_SIZE)
        decoder.receive_data(data or None)
        event = decoder.next_event()
        while not isinstance(event, (Epilogue, NeedData)):
            if isinstance(event, Field):
                text_parts += 1
                if text_parts > budget.parts:
                    raise _too_much_text(f"a form holds at most {budget.parts} text fields")
                part, container, part_bytes = event, [], 0
            elif isinstance(event, File):
                part, container = event, _file_container(stream_factory, event)
            elif isinstance(event, Data):
                if isinstance(part, Field):
                    part_bytes += len(event.data)
                    text_bytes += len(event.data)
                    if part_bytes > budget.part_bytes:
                        raise _too_much_text(f"a text field holds at most {budget.part_bytes} bytes")
                    if text_bytes > budget.total_bytes:
                        raise _too_much_text(f"the text fields hold at most {budget.total_bytes} bytes together")
                    container.append(event.data)
                else:
                    container.write(event.data)
                if not event.more_data:
                    if isinstance(part, Field):
                        fields.append((part.name, b"".join(container).decode(charset_of(part.headers), "replace")))
                    else:
                        assert isinstance(part, File)
                        container.seek(0)
                        files.append(
                            (part.name, FileStorage(container, part.filename, part.name, headers=part.headers))
                        )
            event = decoder.next_event()
        if not data:
            return MultiDict(fields), MultiDict(files)


def _file_container(stream_factory, event: File):
    return stream_factory(
        total_content_length=None,
        filename=event.filename,
        content_type=event.headers.get("content-type"),
        content_length=0,
    )

"""Declarative request/response validation with pydantic (the OpenAPI document is built from
the same models, in imagerepo/openapi.py).

    @bp.post("/register")
    @api(body=RegisterIn, response=UserOut, status=201, summary="Create an account")
    def register(body: RegisterIn): ...

The decorator parses and validates the JSON body / query string / form fields into the
model (400 for unparseable JSON, 422 for values that fail the model), passes it as a keyword
argument, and turns a returned model into JSON. It is also the one login check (`auth`).

Multipart forms (`form=Model`): text parts and file parts are validated together, file parts
as `UploadedFile` fields. File parts are written, as they arrive, into sinks made by
`file_sink()` (a writable object with `close()` that drops what it holds), so an upload is never
held in memory or copied to a temp file first; every sink is closed after the view returns.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Annotated, Any, ClassVar, Literal

import pydantic
from flask import jsonify, request
from flask_jwt_extended import verify_jwt_in_request
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import BadRequest

from . import formparts
from .errors import ApiError


class Schema(pydantic.BaseModel):
    """Base for every request/response schema: unknown request fields are refused."""

    model_config = pydantic.ConfigDict(extra="forbid", populate_by_name=True)


class SparseSchema(Schema):
    """A response schema whose `sparse_fields` are left out of the JSON unless they were set
    (an access key only the owner sees, a count only some listings have)."""

    sparse_fields: ClassVar[tuple[str, ...]] = ()

    @pydantic.model_serializer(mode="wrap")
    def _leave_out_unset(self, handler):
        data = handler(self)
        for name in self.sparse_fields:
            if name not in self.model_fields_set:
                data.pop(name, None)
        return data


class ErrorDetail(Schema):
    code: str
    message: str
    details: Any | None = None


class ErrorOut(Schema):
    error: ErrorDetail


def _validation_details(err: pydantic.ValidationError) -> list[dict]:
    return [
        {"field": ".".join(str(p) for p in e["loc"]) or None, "message": e["msg"]}
        for e in err.errors(include_url=False, include_context=False, include_input=False)
    ]


def _nul_field(data: Any, path: str = "") -> str | None:
    """The path of the first string holding a NUL character, which PostgreSQL text cannot store."""
    if isinstance(data, str):
        return path or "value" if "\x00" in data else None
    items: Iterable[tuple[Any, Any]]
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, (list, tuple)):
        items = enumerate(data)
    else:
        return None
    for key, value in items:
        if isinstance(key, str) and "\x00" in key:
            return f"{path}.{key}" if path else key
        found = _nul_field(value, f"{path}.{key}" if path else str(key))
        if found:
            return found
    return None


def _validate(model: type[pydantic.BaseModel], data: Any, where: str):
    # Checked once here for every request schema rather than on each text field.
    bad = _nul_field(data)
    if bad:
        raise ApiError(
            422,
            "validation_failed",
            f"invalid {where}: {bad}: text must not contain NUL characters",
            [{"field": bad, "message": "text must not contain NUL characters"}],
        )
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as err:
        details = _validation_details(err)
        first = details[0]
        field = f"{first['field']}: " if first["field"] else ""
        raise ApiError(422, "validation_failed", f"invalid {where}: {field}{first['message']}", details) from None


def parse_json_body(model: type[pydantic.BaseModel]):
    if not request.get_data(cache=True):
        raise ApiError(400, "bad_request", "a JSON body is required")
    try:
        data = request.get_json(force=True, silent=False)
    except BadRequest:
        raise ApiError(400, "bad_request", "the body is not valid JSON") from None
    except RecursionError:  # json's parser recurses once per nesting level
        raise ApiError(400, "bad_request", "the JSON body is nested too deeply") from None
    return _validate(model, data, "body")


def _multi_dict_to_plain(multi, model: type[pydantic.BaseModel]) -> dict:
    """Query strings and forms are multi-dicts; list-typed fields take every value."""
    plain = {}
    for key in multi.keys():
        field = model.model_fields.get(key)
        is_list = field is not None and getattr(field.annotation, "__origin__", None) is list
        plain[key] = multi.getlist(key) if is_list else multi.get(key)
    return plain


def parse_query(model: type[pydantic.BaseModel]):
    return _validate(model, _multi_dict_to_plain(request.args, model), "query")


# A multipart file part: werkzeug's FileStorage whose stream is the sink the part was written to.
UploadedFile = Annotated[
    pydantic.InstanceOf[FileStorage],
    pydantic.WithJsonSchema({"type": "string", "format": "binary"}),
]


def _form_fields_given(data: dict, model: type[pydantic.BaseModel]) -> dict:
    """An HTML form sends every field it has, filled in or not: an empty value of a field the
    model knows means "not given" (so its default applies), as the original ImageRepo's
    clients expect. Unknown fields are kept, and refused by the model."""
    given = {}
    for key, value in data.items():
        if key in model.model_fields:
            if isinstance(value, list):
                value = [item for item in value if item != ""]
            if value == "" or value == []:
                continue
        given[key] = value
    return given


def parse_form(model: type[pydantic.BaseModel], stream_factory=None):
    """Parse a multipart/form-data body (text and file parts) into `model`.

    Anything that is not well-formed multipart is a 400; werkzeug's silent mode would turn
    a broken body into an empty form and blame a "missing field" instead. Text parts are held
    to `formparts.TextBudget` (413 past it)."""
    if request.mimetype != "multipart/form-data":
        raise ApiError(400, "bad_request", "a multipart/form-data body is required")
    boundary = request.mimetype_params.get("boundary", "")
    if not boundary:
        raise ApiError(400, "bad_request", "malformed multipart body: no boundary in Content-Type")
    try:
        form, files = formparts.parse(request.stream, boundary.encode("latin-1"), stream_factory)
    except ValueError as err:  # UnicodeEncodeError too: a boundary must be ASCII
        raise ApiError(400, "bad_request", f"malformed multipart body: {err}") from None
    data = _form_fields_given(_multi_dict_to_plain(form, model), model)
    for key in files.keys():
        data[key] = files.getlist(key) if len(files.getlist(key)) > 1 else files[key]
    return _validate(model, data, "form")


# Who may call a route, checked before anything of the request is read (so an anonymous upload
# is refused before a byte of its body): True an access token; "optional" anyone, but a token
# that is sent must be valid; "refresh" a refresh token; "any" an access or a refresh token;
# "view" the view checks credentials itself (documented as bearer); False anyone.
Auth = bool | Literal["optional", "refresh", "any", "view"]


def _verify_token(auth: Auth) -> None:
    if auth is True:
        verify_jwt_in_request()
    elif auth == "optional":
        verify_jwt_in_request(optional=True)
    elif auth == "refresh":
        verify_jwt_in_request(refresh=True)
    elif auth == "any":
        verify_jwt_in_request(verify_type=False)


def api(
    *,
    body=None,
    query=None,
    form=None,
    file_sink=None,
    response=None,
    status: int = 200,
    summary: str = "",
    auth: Auth = True,
    responses: dict[int, str] | None = None,
    request_doc: dict | None = None,
    response_doc: dict | None = None,
    parameters: list[dict] | None = None,
    other_statuses: dict[int, str] | None = None,
):
    """Validate the request into models and serialise the returned model.

    `form` is a multipart model (see `parse_form`), `file_sink` makes the object each file part
    is streamed into. `auth` says who may call (see `Auth`); it is the one login check, made
    before the request is parsed. `request_doc` / `response_doc` describe bodies that are not
    JSON (bytes) for the OpenAPI document; `responses` lists the error statuses the route can answer; `parameters`
    adds OpenAPI parameters the models do not describe (headers). A view may return
    `(model, status)` to answer one of `other_statuses` (successes with the same schema).
    """

    def decorate(view):
        def wrapper(*args, **kwargs):
            sinks = []

            def stream_factory(*_args, **_kwargs):
                sink = file_sink()
                sinks.append(sink)
                return sink

            try:
                # Before parsing: a request refused by validation is still attributed to its
                # user (the audit trail), a bad token is a 401 whatever else is wrong, and no
                # body is read for a caller who may not send one.
                _verify_token(auth)
                if query is not None:
                    kwargs["query"] = parse_query(query)
                if body is not None:
                    kwargs["body"] = parse_json_body(body)
                if form is not None:
                    kwargs["form"] = parse_form(form, stream_factory if file_sink else None)
                result = view(*args, **kwargs)
            finally:
                for sink in sinks:
                    sink.close()
            answer_status = status
            if (
                isinstance(result, tuple)
                and len(result) == 2
                and (result[1] == status or result[1] in (other_statuses or {}))
            ):
                result, answer_status = result
            if isinstance(result, pydantic.BaseModel):
                out = jsonify(result.model_dump(mode="json", by_alias=True))
                out.status_code = answer_status
                return out
            return result

        decorated: Any = functools.wraps(view)(wrapper)
        # Read back by imagerepo.openapi to document the route.
        decorated.openapi = {
            "body": body,
            "query": query,
            "form": form,
            "response": response,
            "status": status,
            "summary": summary or (view.__doc__ or "").strip().split("\n")[0],
            "auth": auth,
            "responses": responses or {},
            "request_doc": request_doc,
            "response_doc": response_doc,
            "parameters": parameters or [],
            "other_statuses": other_statuses or {},
        }
        return decorated

    return decorate

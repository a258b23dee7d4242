"""The OpenAPI document, generated from the routes' @api declarations and their pydantic models
(the same ones that validate requests), so the document cannot drift from the code."""

from __future__ import annotations

import inspect
import re
import typing
from typing import Any

import pydantic
from flask import Flask

from .fieldtypes import FLAG_TEXT_PATTERN
from .validation import ErrorOut

# A werkzeug rule argument: <name> or <converter:name>.
_RULE_ARGUMENT = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def _path_parameters(rule: str, view) -> tuple[str, list[dict]]:
    """The OpenAPI path and its parameters, each typed from the view's annotation."""
    hints = typing.get_type_hints(inspect.unwrap(view))
    params = []
    for name in _RULE_ARGUMENT.findall(rule):
        if name not in hints:
            raise TypeError(f"{view.__qualname__}: annotate path parameter {name!r} for the OpenAPI document")
        params.append(
            {"name": name, "in": "path", "required": True, "schema": pydantic.TypeAdapter(hints[name]).json_schema()}
        )
    return _RULE_ARGUMENT.sub(r"{\1}", rule), params


_STATUS_TEXT = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No content",
    206: "Partial content",
    304: "Not modified",
    400: "Malformed request",
    401: "Missing, invalid, expired or revoked token",
    403: "Not allowed",
    404: "Absent or not visible to you",
    409: "Conflict",
    413: "Too large",
    415: "Not an accepted image type",
    416: "Range not satisfiable",
    414: "Request line too long (over 4094 bytes): answered by gunicorn, as HTML",
    422: "Failed validation",
    429: "Too many attempts",
    507: "The server's storage is full: nothing was stored",
}

# PostgreSQL text cannot hold NUL: every request string refuses it (422, imagerepo.validation).
_NO_NUL = "^[^\u0000]*$"
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer", "minimum": 0}}}
_HTML_414 = {
    "description": _STATUS_TEXT[414],
    "content": {"text/html": {"schema": {"type": "string"}}},
}


def _no_nul(schema: Any) -> None:
    """Add the NUL refusal to every string schema (in place) that has no pattern or format."""
    if isinstance(schema, list):
        for item in schema:
            _no_nul(item)
        return
    if not isinstance(schema, dict):
        return
    if schema.get("type") == "string" and "pattern" not in schema and "format" not in schema and "enum" not in schema:
        schema["pattern"] = _NO_NUL
    for value in schema.values():
        if isinstance(value, (dict, list)):
            _no_nul(value)


def _form_schema(schema: dict) -> None:
    """A multipart form's text fields (in place): no `null` (a part is text), and an empty field
    is taken as not given (imagerepo.validation._form_fields_given), whatever the field's type."""
    for name, prop in schema.get("properties", {}).items():
        if prop.get("format") == "binary" or prop.get("items", {}).get("format") == "binary":
            continue
        prop = _query_schema(prop)
        if prop.get("type") == "boolean":  # imagerepo.fieldtypes.TextFlag, as text
            prop = {"anyOf": [{"type": "boolean"}, {"type": "string", "pattern": FLAG_TEXT_PATTERN}]}
        meta = {key: prop.pop(key) for key in ("title", "description", "default") if key in prop}
        schema["properties"][name] = {**meta, "anyOf": [{"type": "string", "maxLength": 0}, prop]}


def _query_schema(prop: dict) -> dict:
    """A query parameter is absent or a string: `null`, which pydantic adds to optional fields,
    cannot be sent, so it is left out of the parameter's schema."""
    options = prop.get("anyOf")
    if options is None:
        return prop
    kept = [option for option in options if option.get("type") != "null"]
    rest = {key: value for key, value in prop.items() if key != "anyOf"}
    return {**rest, **kept[0]} if len(kept) == 1 else {**rest, "anyOf": kept}


def _edge_responses(op: dict, error_ref: dict) -> None:
    """401 on every route, tokens or not: a malformed Authorization header is refused before
    any view runs (README, "Security limits"). Body limits, 507 and Retry-After are above."""
    op["responses"].setdefault(
        "401",
        {
            "description": "Malformed Authorization header, or a bad token",
            "content": {"application/json": {"schema": error_ref}},
        },
    )


def openapi_document(app: Flask) -> dict:
    components: dict[str, Any] = {}

    def ref(model, request: bool = False, form: bool = False) -> dict:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}", by_alias=True)
        if form:
            _form_schema(schema)
        for name, sub in schema.pop("$defs", {}).items():
            components[name] = sub
            if request:
                _no_nul(sub)
        if request:
            _no_nul(schema)
        components[model.__name__] = schema
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    error_ref = ref(ErrorOut)
    paths: dict[str, dict] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        view = app.view_functions.get(rule.endpoint)
        spec = getattr(view, "openapi", None)
        if spec is None:
            continue
        path, params = _path_parameters(rule.rule, view)
        if spec["query"] is not None:
            qschema = spec["query"].model_json_schema(by_alias=True)
            required = set(qschema.get("required", []))
            for name, prop in qschema.get("properties", {}).items():
                params.append(
                    {
                        "name": name,
                        "in": "query",
                        "required": name in required,
                        "schema": _query_schema(prop),
                        **({"description": prop["description"]} if "description" in prop else {}),
                    }
                )
        methods = rule.methods or set()
        for method in sorted(methods - {"OPTIONS", "HEAD"} if "GET" in methods else methods - {"OPTIONS"}):
            op: dict[str, Any] = {
                "operationId": f"{rule.endpoint}_{method.lower()}",
                "summary": spec["summary"],
                "tags": [rule.endpoint.split(".")[0]],
                "parameters": params + spec["parameters"],
            }
            if spec["body"] is not None:
                op["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": ref(spec["body"], request=True)}},
                }
            elif spec.get("form") is not None:
                op["requestBody"] = {
                    "required": True,
                    "content": {"multipart/form-data": {"schema": ref(spec["form"], request=True, form=True)}},
                }
            elif spec["request_doc"] is not None:
                op["requestBody"] = spec["request_doc"]
            ok: dict[str, Any] = {"description": _STATUS_TEXT.get(spec["status"], "OK")}
            if spec["response"] is not None:
                ok["content"] = {"application/json": {"schema": ref(spec["response"])}}
            elif spec["response_doc"] is not None:
                ok.update(spec["response_doc"])
            op["responses"] = {str(spec["status"]): ok}
            for code, text in spec.get("other_statuses", {}).items():
                # 304 Not Modified has no body.
                op["responses"][str(code)] = {"description": text} if code == 304 else {**ok, "description": text}
            errors = dict(spec["responses"])
            if "requestBody" in op:
                # Every body is checked before the view runs (imagerepo.validation, request_body).
                errors.setdefault(400, "Missing or malformed body")
                errors.setdefault(413, "Body over the route's limit")
            if method != "GET":
                errors.setdefault(507, "")
            for code, text in errors.items():
                op["responses"][str(code)] = {
                    "description": text or _STATUS_TEXT.get(code, ""),
                    "content": {"application/json": {"schema": error_ref}},
                }
                if code == 429:
                    op["responses"][str(code)]["headers"] = _RETRY_AFTER
            if any(param["in"] in ("query", "path") for param in op["parameters"]):
                op["responses"]["414"] = _HTML_414
            if spec["auth"]:
                # "optional": anonymous callers are served too; a token that is sent must be valid.
                op["security"] = [{"bearer": []}, {}] if spec["auth"] == "optional" else [{"bearer": []}]
            _edge_responses(op, error_ref)
            paths.setdefault(path, {})[method.lower()] = op
    for operations in paths.values():
        for op in operations.values():
            _no_nul([param["schema"] for param in op["parameters"] if param["in"] == "query"])
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ImageRepo",
            "version": "1.0.0",
            "description": "Content-addressed image store: accounts, images, private images with access keys.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }

"""The OpenAPI document, generated from the request/response schemas (rendered at /docs by
imagerepo.web)."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from .openapi import openapi_document

bp = Blueprint("docs", __name__)


@bp.get("/openapi.json")
def openapi_json():
    return jsonify(openapi_document(current_app))

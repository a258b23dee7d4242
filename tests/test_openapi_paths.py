"""Path parameters in the OpenAPI document are typed from the view's annotations, not guessed
from their names."""

from __future__ import annotations

import pytest
from flask import Blueprint, Flask

from imagerepo.openapi import openapi_document
from imagerepo.validation import api


def _document_of(view, rule: str) -> dict:
    app = Flask(__name__)
    bp = Blueprint("things", __name__)
    bp.add_url_rule(rule, view_func=view)
    app.register_blueprint(bp)
    return openapi_document(app)


def test_path_parameter_types_come_from_annotations():
    @api(auth=False, summary="A thing")
    def show(number: int, slug: str, user_id: str):
        return ""

    doc = _document_of(show, "/things/<int:number>/<slug>/<user_id>")
    params = {p["name"]: p for p in doc["paths"]["/things/{number}/{slug}/{user_id}"]["get"]["parameters"]}
    assert params["number"]["schema"] == {"type": "integer"}
    assert params["slug"]["schema"] == {"type": "string"}
    assert params["user_id"]["schema"] == {"type": "string"}, "a name ending in id says nothing about the type"
    assert all(p["in"] == "path" and p["required"] for p in params.values())


def test_an_unannotated_path_parameter_is_an_error_not_a_guess():
    @api(auth=False, summary="A thing")
    def show(number):
        return ""

    with pytest.raises(TypeError, match="number"):
        _document_of(show, "/things/<int:number>")


def test_the_service_documents_its_path_parameters(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    image_id = paths["/images/{image_id}"]["get"]["parameters"][0]
    assert (image_id["name"], image_id["schema"]) == ("image_id", {"type": "integer"})
    name = paths["/tags/{name}/images"]["get"]["parameters"][0]
    assert (name["name"], name["schema"]) == ("name", {"type": "string"})
    user_id = paths["/admin/users/{user_id}/disable"]["post"]["parameters"][0]
    assert user_id["schema"] == {"type": "integer"}

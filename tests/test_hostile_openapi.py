"""The OpenAPI document lists what the request edge answers: 401 for a malformed Authorization
header on every route, 400/413 on every route with a body, 429 with Retry-After, 507 on uploads."""

from __future__ import annotations


def test_the_edge_statuses_are_documented(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    operations = [op for item in paths.values() for op in item.values()]
    assert all("401" in op["responses"] for op in operations), "a malformed Authorization header is 401 everywhere"
    for op in operations:
        if "requestBody" in op:
            assert {"400", "413"} <= set(op["responses"]), op["operationId"]
        if "429" in op["responses"]:
            assert "Retry-After" in op["responses"]["429"]["headers"], op["operationId"]
    assert "429" in paths["/login"]["post"]["responses"]
    assert "429" in paths["/images/{image_id}/content"]["get"]["responses"]
    for upload in ("/images", "/images/raw", "/images/batch"):
        responses = paths[upload]["post"]["responses"]
        assert responses["507"]["content"]["application/json"], upload
        assert "413" in responses

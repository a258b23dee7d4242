"""The OpenAPI document describes the image routes from the same schemas that validate them."""


def test_image_routes_are_documented(client):
    doc = client.get("/openapi.json").get_json()
    paths, schemas = doc["paths"], doc["components"]["schemas"]

    upload = paths["/images"]["post"]
    form_ref = upload["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"]
    form = schemas[form_ref.rsplit("/", 1)[1]]
    assert form["required"] == ["file"]
    assert (form["properties"]["file"]["type"], form["properties"]["file"]["format"]) == ("string", "binary")
    assert {"201", "400", "401", "413", "415", "422"} <= set(upload["responses"])
    assert upload["security"] == [{"bearer": []}]

    raw = paths["/images/raw"]["post"]
    assert "application/octet-stream" in raw["requestBody"]["content"]
    assert {p["name"] for p in raw["parameters"]} >= {"name", "description", "isPrivate", "accessKey"}

    content = paths["/images/{image_id}/content"]["get"]
    assert {"200", "403", "404", "415", "416", "422", "429"} <= set(content["responses"])
    assert {"width", "height", "fit", "format", "quality"} <= {p["name"] for p in content["parameters"]}
    assert {"Range", "If-None-Match", "X-Access-Key", "accesskey", "download"} <= {
        p["name"] for p in content["parameters"]
    }
    assert {} in content["security"], "reading needs no token"

    put_ref = paths["/images/{image_id}"]["put"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert set(schemas[put_ref.rsplit("/", 1)[1]]["required"]) == {"description", "isPrivate"}
    assert "patch" in paths["/images/{image_id}"] and "202" in paths["/images/{image_id}"]["delete"]["responses"]
    image_out = schemas["ImageOut"]
    assert {"id", "name", "creator", "locked", "sha256", "url"} <= set(image_out["required"])
    assert "accessKey" not in image_out["required"]
    listing = paths["/images"]["get"]
    assert {p["name"] for p in listing["parameters"]} == {
        "limit",
        "cursor",
        "mine",
        "tag",
        "q",
        "from",
        "to",
        "owner",
        "type",
        "thumbnail",
    }
    tag_param = next(p for p in listing["parameters"] if p["name"] == "tag")
    assert {"array", "string"} == {option["type"] for option in tag_param["schema"]["anyOf"]}, "repeatable"
    type_param = next(p for p in listing["parameters"] if p["name"] == "type")
    assert "image/png" in type_param["schema"]["enum"], "a query parameter is never null"

    batch = paths["/images/batch"]["post"]
    assert {"201", "200", "413", "422"} <= set(batch["responses"])
    batch_form = schemas[batch["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[1]]
    assert batch_form["properties"]["file"]["type"] == "array"
    assert {"tags", "description", "isPrivate", "accessKey"} <= set(batch_form["properties"])
    assert "tags" in schemas["ImageOut"]["required"]
    assert {"200", "403", "404", "422"} <= set(paths["/images/{image_id}/tags"]["put"]["responses"])
    assert {p["name"] for p in paths["/tags"]["get"]["parameters"]} == {"name", "limit", "cursor"}
    assert paths["/tags/{name}/images"]["get"]["parameters"][0]["schema"] == {"type": "string"}

"""Schema-driven fuzzing of the image routes: operations, parameters and statuses are read from
/openapi.json; hypothesis sends random ids, query values, headers, JSON and multipart bodies.
No answer may be a 5xx, or a status the document does not list for that operation; every
error has the one error shape, and every JSON success validates against its response schema."""

import io
import json
import re
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imagerepo.images import schemas as images
from imagerepo.plans import schemas as plan_schemas
from imagerepo.tags import routes as tags
from conftest import with_changes
from imagerepo import create_app
from imagesamples import SVG, dicom_bytes, image_bytes, noise_bmp, quick_user, uploaded

ASCII = st.text(alphabet=string.printable.strip() + " ", max_size=40)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), st.text(max_size=30)
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=8,
)
FIELD_NAMES = [
    "description",
    "isPrivate",
    "accessKey",
    "file",
    "name",
    "limit",
    "cursor",
    "mine",
    "accesskey",
    "download",
    "owner",
    "tags",
    "tag",
    "q",
    "from",
    "to",
    "type",
]
FILES = (
    st.sampled_from([image_bytes(), image_bytes("JPEG")])
    | st.sampled_from(
        [image_bytes(), image_bytes("GIF"), dicom_bytes(), SVG, b"", b"\x89PNG\r\n\x1a\n", b"random bytes"]
    )
    | st.binary(max_size=200)
)
# Values a real client would send, mixed with anything at all.
PLAUSIBLE = st.one_of(
    st.sampled_from(
        [
            "0",
            "1",
            "true",
            "false",
            "the-key",
            "a description",
            "5",
            "100",
            "sun",
            "sun,sea",
            "2024-01-01",
            "2024-01-01T12:00:00Z",
            "image/png",
            "alice",
            "cmFua3wwLjV8Mw",
            "x" * 51,
            "a/b",
            "sun:* & !",
        ]
    ),
    SCALARS.map(lambda v: json.dumps(v) if not isinstance(v, str) else v),
)
TAG_NAMES = st.sampled_from(["sun", "SUN", "x" * 51, "a,b", "%20", "%00", "ünï", "c++"]) | st.text(
    alphabet=string.ascii_letters + string.digits + "._~%+ ", min_size=1, max_size=12
)
RANGES = st.one_of(
    st.none(),
    ASCII,
    st.builds(lambda a, b: f"bytes={a}-{b}", st.integers(0, 400) | st.just(""), st.integers(0, 400) | st.just("")),
)


OPERATIONS = [
    ("/images", "get"),
    ("/images", "post"),
    ("/images/raw", "post"),
    ("/images/{image_id}", "get"),
    ("/images/{image_id}", "put"),
    ("/images/{image_id}", "patch"),
    ("/images/{image_id}", "delete"),
    ("/images/{image_id}/content", "get"),
    ("/images/batch", "post"),
    ("/images/{image_id}/tags", "put"),
    ("/tags", "get"),
    ("/tags/{name}/images", "get"),
    # share links (imagerepo/plans)
    ("/images/{image_id}/links", "post"),
    ("/images/{image_id}/links", "get"),
    ("/images/{image_id}/links/{link_id}", "delete"),
]


def test_every_image_operation_is_fuzzed(client):
    doc = client.get("/openapi.json").get_json()
    documented = {
        (path, method) for path, ops in doc["paths"].items() if path.startswith(("/images", "/tags")) for method in ops
    }
    assert documented == set(OPERATIONS)


def _check_success_body(doc, op, status, response):
    content = op["responses"][str(status)].get("content", {})
    schema = content.get("application/json", {}).get("schema")
    if schema is None:
        return
    name = schema["$ref"].rsplit("/", 1)[1]
    model = getattr(images, name, None) or getattr(plan_schemas, name, None) or getattr(tags, name)
    model.model_validate(response.get_json())


@pytest.mark.parametrize("path, method", OPERATIONS)
def test_fuzz_image_route(client, app, path, method):
    doc = client.get("/openapi.json").get_json()
    op = doc["paths"][path][method]
    alice = quick_user(app, "alice")
    bob = quick_user(app, "bob")
    public = uploaded(client, alice["headers"], image_bytes(color="red"), tags="sun,sea")
    private = uploaded(
        client, alice["headers"], image_bytes(color="blue"), isPrivate=1, accessKey="the-key", tags="sun"
    )
    callers = {
        "alice": alice["headers"],
        "alice ": alice["headers"],
        "bob": bob["headers"],
        "anon": {},
        "garbage": {"Authorization": "Bearer x.y.z"},
    }
    # Half the draws hit the real images, so the deep paths (ranges, keys, updates) are reached.
    real = [public, private]  # replaced when the fuzzing deletes one, so deep paths stay reachable
    real_ids = st.integers(0, 1).map(lambda i: str(real[i]["id"]))
    ids = st.one_of(
        real_ids,
        real_ids,
        real_ids,
        real_ids,
        real_ids,
        st.sampled_from(["0", "-1", "99999999999999999999"]),
        st.integers(0, 2**66).map(str),
        st.text(alphabet=string.ascii_letters + string.digits + "._~%", min_size=1, max_size=12),
    )

    @settings(
        max_examples=70,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=st.data())
    def run(data):
        url = re.sub(r"\{[^}]+\}", lambda m: data.draw(TAG_NAMES if m.group(0) == "{name}" else ids, label="id"), path)
        documented_names = [p["name"] for p in op["parameters"] if p["in"] == "query"]
        names = (
            st.sampled_from(documented_names)
            if documented_names and data.draw(st.booleans(), label="documented query only")
            else st.sampled_from(documented_names + FIELD_NAMES)
        )
        query = data.draw(st.dictionaries(names, PLAUSIBLE, max_size=4), label="query")
        headers = dict(callers[data.draw(st.sampled_from(sorted(callers)), label="caller")])
        key = data.draw(st.one_of(st.none(), st.just("the-key"), ASCII), label="X-Access-Key")
        if key is not None:
            headers["X-Access-Key"] = key
        for name, strategy in (("Range", RANGES), ("If-None-Match", st.one_of(st.none(), ASCII))):
            value = data.draw(strategy, label=name)
            if value is not None:
                headers[name] = value
        kwargs = {"query_string": query, "headers": headers}
        request_content = op.get("requestBody", {}).get("content", {})
        if "application/json" in request_content:
            if data.draw(st.booleans(), label="valid JSON"):
                kwargs["json"] = data.draw(
                    st.one_of(
                        JSON_VALUES,
                        st.fixed_dictionaries(
                            {},
                            optional={
                                "description": SCALARS,
                                "isPrivate": SCALARS,
                                "accessKey": SCALARS,
                                "tags": st.lists(PLAUSIBLE | SCALARS, max_size=4),
                                "expiresIn": st.integers(200, 40_000) | SCALARS,
                                "variant": JSON_VALUES | st.just({"height": 200}),
                                "format": st.sampled_from(["webp", "png"]) | SCALARS,
                            },
                        ),
                    ),
                    label="json",
                )
            else:
                kwargs["data"] = data.draw(st.binary(max_size=50), label="raw body")
                kwargs["content_type"] = "application/json"
        elif "multipart/form-data" in request_content:
            fields = ["description", "isPrivate", "accessKey", "tags"]
            form = data.draw(
                st.dictionaries(st.sampled_from(fields) | st.sampled_from(FIELD_NAMES), PLAUSIBLE, max_size=3),
                label="form",
            )
            if data.draw(st.booleans(), label="with file"):
                form["file"] = (io.BytesIO(data.draw(FILES, label="file")), data.draw(ASCII, label="filename"))
                if path.endswith("/batch") and data.draw(st.booleans(), label="several files"):
                    form["file"] = [form["file"]] + [
                        (io.BytesIO(f), "more.png") for f in data.draw(st.lists(FILES, max_size=3), label="more")
                    ]
            if data.draw(st.integers(0, 9), label="broken") == 0:
                kwargs["data"] = data.draw(st.binary(max_size=100), label="broken body")
                kwargs["content_type"] = data.draw(
                    st.sampled_from(["multipart/form-data; boundary=b", "multipart/form-data", "text/plain"]),
                    label="type",
                )
            else:
                kwargs["data"] = form
                kwargs["content_type"] = "multipart/form-data"
        elif request_content:
            kwargs["data"] = data.draw(FILES, label="body")
        response = client.open(url, method=method.upper(), **kwargs)
        status = response.status_code
        if method == "delete" and status == 202:
            for index, image in enumerate(real):
                if url == f"/images/{image['id']}":
                    real[index] = uploaded(
                        client,
                        alice["headers"],
                        image_bytes(color="red"),
                        isPrivate=int(image["isPrivate"]),
                        accessKey="the-key",
                    )
        documented = set(op["responses"]) | {"304", "206"} if "content" in path else set(op["responses"])
        if "{" in path:
            documented.add("404")  # ids that are not numbers match no route
        assert status < 500, (method, url, kwargs, response.get_data()[:300])
        assert str(status) in documented, (status, method, url, kwargs, response.get_data()[:300])
        if status >= 400:
            body = response.get_json()
            assert set(body) == {"error"} and isinstance(body["error"]["code"], str), body
        elif status < 300 and "content" not in path:
            _check_success_body(doc, op, status, response)

    run()


RANGE_HEADERS = st.one_of(
    st.builds(lambda a, b: f"bytes={a}-{b}", st.integers(0, 40_000), st.integers(0, 40_000) | st.just("")),
    st.builds(lambda n: f"bytes=-{n}", st.integers(0, 40_000)),
    st.builds(lambda a, b, c, d: f"bytes={a}-{b},{c}-{d}", *[st.integers(0, 40_000)] * 4),
    ASCII,
)


def test_fuzz_ranges_are_byte_exact(config):
    """Any Range header on a many-chunk image: 200 with everything, 206 with exactly the bytes
    Content-Range names, or 416 with `bytes */size` -- nothing else."""
    application = create_app(with_changes(config, chunk_size=4096))
    client = application.test_client()
    alice = quick_user(application, "alice")
    data = noise_bmp(100, 100)
    image = uploaded(client, alice["headers"], data, name="noise.bmp")

    @settings(max_examples=150, deadline=None, database=None)
    @given(header=RANGE_HEADERS)
    def run(header):
        response = client.get(image["url"], headers={"Range": header})
        if response.status_code == 200:
            assert response.data == data
        elif response.status_code == 206:
            first, last, total = map(
                int, re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", response.headers["Content-Range"]).groups()
            )
            assert total == len(data) and 0 <= first <= last < total
            assert response.data == data[first : last + 1]
            assert response.headers["Content-Length"] == str(last - first + 1)
        else:
            assert response.status_code == 416, response.status_code
            assert response.headers["Content-Range"] == f"bytes */{len(data)}"

    try:
        run()
    finally:
        application.extensions["imagerepo"].db.close()

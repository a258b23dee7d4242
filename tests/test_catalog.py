"""The catalog: tags (names, upload, PUT, counts, per-tag listing), listing filters and search,
and privacy through all of them."""

from __future__ import annotations

import io

import psycopg
import pytest

from conftest import assert_error
from imagerepo.tags.names import normalise_tag
from imagesamples import image_bytes, quick_user


@pytest.fixture
def alice(app):
    return quick_user(app, "alice")


@pytest.fixture
def bob(app):
    return quick_user(app, "bob")


_colours = iter(range(1, 10_000))


def distinct_png() -> bytes:
    """A PNG no other call returns (so every image is its own content)."""
    n = next(_colours)
    return image_bytes("PNG", size=(1 + n % 97, 1 + n // 97), color=(n % 256, n // 256 % 256, 7))


def upload_tagged(client, headers, tags=(), name="picture.png", data=None, **fields):
    """Upload with `tags` as repeated form fields (each may itself be comma-separated)."""
    form = {
        "file": (io.BytesIO(data or distinct_png()), name),
        "tags": list(tags),
        **{k: str(v) for k, v in fields.items()},
    }
    response = client.post("/images", headers=headers, data=form, content_type="multipart/form-data")
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def put_tags(client, headers, image_id, tags):
    return client.put(f"/images/{image_id}/tags", headers=headers, json={"tags": tags})


def listed_ids(client, headers=None, path="/images", **params) -> list[int]:
    """Every id a listing returns, walking all its pages."""
    ids, cursor = [], None
    while True:
        query = {**params, "limit": 2, **({"cursor": cursor} if cursor else {})}
        response = client.get(path, headers=headers or {}, query_string=query)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        ids += [i["id"] for i in body["images"]]
        cursor = body["nextCursor"]
        if cursor is None:
            return ids


def tag_counts(client, headers=None, **params) -> dict[str, int]:
    response = client.get("/tags", headers=headers or {}, query_string={"limit": 100, **params})
    assert response.status_code == 200, response.get_json()
    return {t["name"]: t["images"] for t in response.get_json()["tags"]}


# -- tag names --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw, stored",
    [
        ("sunset", "sunset"),
        ("  Sunset  ", "sunset"),
        ("SUNSET", "sunset"),
        ("New \t  York", "new york"),
        ("Ｓｕｎ", "sun"),  # full-width letters (NFKC)
        ("ñandú", "ñandú"),
        ("東京", "東京"),
        ("c++", "c++"),
        ("rock & roll", "rock & roll"),
        ("#tbt", "#tbt"),
        ("o'neill", "o'neill"),
        ("v1.2_beta-3", "v1.2_beta-3"),
        ("x" * 50, "x" * 50),
        ("  " + "x" * 50 + "  ", "x" * 50),  # the limit counts after trimming
    ],
)
def test_tag_names_are_normalised(raw, stored):
    assert normalise_tag(raw) == stored


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "\t\n",
        "x" * 51,
        "a,b",
        "a/b",
        "<script>",
        "semi;colon",
        "nul\x00",
        "bell\x07",
        'quote"',
        "back\\slash",
        "emoji 🙂",
        "50%",
    ],
)
def test_bad_tag_names_are_refused(raw):
    with pytest.raises(ValueError):
        normalise_tag(raw)


@pytest.mark.parametrize(
    "tags, status",
    [
        ([""], 422),
        (["x" * 51], 422),
        (["a/b"], 422),
        ([5], 422),
        ("sunset", 422),
        ([None], 422),
        ([f"t{n}" for n in range(31)], 422),
    ],
)
def test_put_tags_refuses_bad_names(client, alice, tags, status):
    image = upload_tagged(client, alice["headers"], ["kept"])
    assert_error(put_tags(client, alice["headers"], image["id"], tags), status, "validation_failed")
    assert client.get(f"/images/{image['id']}").get_json()["tags"] == ["kept"]


# -- tags on upload and PUT ---------------------------------------------------------------------
def test_tags_on_upload_repeatable_and_comma_separated(client, alice):
    image = upload_tagged(client, alice["headers"], ["Sunset, beach", " BEACH ", "lisbon,,", "New  York"])
    assert image["tags"] == ["beach", "lisbon", "new york", "sunset"]
    assert client.get(f"/images/{image['id']}").get_json()["tags"] == image["tags"]
    untagged = upload_tagged(client, alice["headers"])
    assert untagged["tags"] == []


def test_tags_on_raw_upload(client, alice):
    response = client.post(
        "/images/raw",
        headers=alice["headers"],
        data=distinct_png(),
        query_string=[("name", "x.png"), ("tags", "cat,Dog"), ("tags", "dog"), ("tags", "fox")],
    )
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["tags"] == ["cat", "dog", "fox"]


@pytest.mark.parametrize("tags", [["ok", "a/b"], ["x" * 51], [",".join(f"t{n}" for n in range(31))]])
def test_upload_with_a_bad_tag_stores_nothing(client, alice, tags):
    form = {"file": (io.BytesIO(distinct_png()), "x.png"), "tags": tags}
    response = client.post("/images", headers=alice["headers"], data=form, content_type="multipart/form-data")
    assert_error(response, 422, "validation_failed")
    assert listed_ids(client, alice["headers"]) == []


def test_put_tags_replaces_them(client, alice):
    image = upload_tagged(client, alice["headers"], ["one", "two"])
    response = put_tags(client, alice["headers"], image["id"], ["Two", "three", "THREE"])
    assert response.status_code == 200, response.get_json()
    changed = response.get_json()
    assert changed["tags"] == ["three", "two"]
    assert changed["updatedAt"] > image["updatedAt"]
    assert client.get(f"/images/{image['id']}").get_json()["tags"] == ["three", "two"]
    assert put_tags(client, alice["headers"], image["id"], []).get_json()["tags"] == []
    assert tag_counts(client) == {}, "a tag on no visible image is not listed"


def test_tags_are_one_per_name_whatever_the_case(client, alice, bob, config):
    upload_tagged(client, alice["headers"], ["Cat"])
    upload_tagged(client, bob["headers"], ["cAT"])
    image = upload_tagged(client, bob["headers"])
    put_tags(client, bob["headers"], image["id"], ["CAT "])
    assert tag_counts(client) == {"cat": 3}
    with psycopg.connect(config.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM tags").fetchone()[0] == 1


def test_only_the_owner_puts_tags(client, alice, bob):
    public = upload_tagged(client, alice["headers"], ["mine"])
    private = upload_tagged(client, alice["headers"], ["mine"], isPrivate=1, accessKey="k")
    assert_error(put_tags(client, bob["headers"], public["id"], ["yours"]), 403, "forbidden")
    assert_error(put_tags(client, bob["headers"], private["id"], ["yours"]), 404, "not_found")
    assert_error(put_tags(client, bob["headers"], 999_999, ["yours"]), 404, "not_found")
    assert_error(put_tags(client, {}, public["id"], ["yours"]), 401)
    assert client.get(f"/images/{public['id']}").get_json()["tags"] == ["mine"]


def test_put_tags_needs_a_json_list(client, alice):
    image = upload_tagged(client, alice["headers"])
    url = f"/images/{image['id']}/tags"
    assert_error(client.put(url, headers=alice["headers"], data="not json", content_type="application/json"), 400)
    assert_error(client.put(url, headers=alice["headers"], json={}), 422)
    assert_error(client.put(url, headers=alice["headers"], json={"tags": ["a"], "extra": 1}), 422)


# -- GET /tags and /tags/<name>/images ---------------------------------------------------------
@pytest.fixture
def tagged(client, alice, bob):
    """alice: public [sun, sea], private [sun]; bob: public [sun], private [sun, secret]."""
    return {
        "a_public": upload_tagged(client, alice["headers"], ["sun", "sea"]),
        "a_private": upload_tagged(client, alice["headers"], ["sun"], isPrivate=1),
        "b_public": upload_tagged(client, bob["headers"], ["sun"]),
        "b_private": upload_tagged(client, bob["headers"], ["sun", "secret"], isPrivate=1),
    }


def test_tag_counts_are_what_the_caller_can_see(client, alice, bob, tagged):
    assert tag_counts(client) == {"sea": 1, "sun": 2}
    assert tag_counts(client, alice["headers"]) == {"sea": 1, "sun": 3}
    assert tag_counts(client, bob["headers"]) == {"sea": 1, "secret": 1, "sun": 3}


def test_tag_name_filter_and_pages(client, alice, bob, tagged):
    assert tag_counts(client, bob["headers"], name="S") == {"sea": 1, "secret": 1, "sun": 3}
    assert tag_counts(client, bob["headers"], name="e") == {"sea": 1, "secret": 1}
    assert tag_counts(client, alice["headers"], name="secr") == {}
    names, cursor = [], None
    while True:
        body = client.get(
            "/tags", headers=bob["headers"], query_string={"limit": 1, **({"cursor": cursor} if cursor else {})}
        ).get_json()
        assert len(body["tags"]) <= 1
        names += [t["name"] for t in body["tags"]]
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert names == ["sea", "secret", "sun"]


def test_images_of_a_tag(client, alice, bob, tagged):
    ids = {k: v["id"] for k, v in tagged.items()}
    assert listed_ids(client, path="/tags/sun/images") == [ids["b_public"], ids["a_public"]]
    assert listed_ids(client, alice["headers"], path="/tags/SUN/images") == [
        ids["b_public"],
        ids["a_private"],
        ids["a_public"],
    ]
    assert listed_ids(client, alice["headers"], path="/tags/sun/images", mine=1) == [ids["a_private"], ids["a_public"]]
    assert listed_ids(client, alice["headers"], path="/tags/sun/images", tag="sea") == [ids["a_public"]]
    assert listed_ids(client, alice["headers"], path="/tags/secret/images") == []
    assert listed_ids(client, bob["headers"], path="/tags/secret/images") == [ids["b_private"]]
    assert listed_ids(client, path="/tags/never-used/images") == []
    assert_error(client.get("/tags/" + "x" * 51 + "/images"), 404, "not_found")
    assert_error(client.get("/tags/a,b/images"), 404, "not_found")


def test_private_images_never_leak(client, app, alice, bob):
    """bob's private image matches every filter alice tries; she never sees or counts it."""
    secret = upload_tagged(
        client, bob["headers"], ["classified"], name="classified-plans.png", description="classified plans", isPrivate=1
    )
    visible = upload_tagged(client, bob["headers"], ["open"], name="open.png", description="nothing here")
    for headers in ({}, alice["headers"]):
        for params in (
            {},
            {"tag": "classified"},
            {"q": "classified"},
            {"q": "plans"},
            {"owner": "bob"},
            {"type": "image/png"},
            {"from": "2000-01-01", "to": "2999-12-31"},
            {"owner": "bob", "type": "image/png", "q": "classified"},
        ):
            assert secret["id"] not in listed_ids(client, headers, **params), params
        assert listed_ids(client, headers, path="/tags/classified/images") == []
        assert "classified" not in tag_counts(client, headers)
        assert tag_counts(client, headers, name="class") == {}
    assert listed_ids(client, alice["headers"], owner="bob") == [visible["id"]]
    # The owner finds it through every one of those.
    assert listed_ids(client, bob["headers"], q="classified") == [secret["id"]]
    assert listed_ids(client, bob["headers"], tag="classified") == [secret["id"]]
    assert tag_counts(client, bob["headers"])["classified"] == 1


# -- filters -----------------------------------------------------------------------------------
@pytest.fixture
def corpus(client, config, alice, bob):
    """Six images with known tags, owners, types and creation dates."""
    images = {
        "a1": upload_tagged(client, alice["headers"], ["sunset", "beach"], name="a1.png"),
        "a2": upload_tagged(
            client, alice["headers"], ["sunset"], name="a2.jpg", data=image_bytes("JPEG", (9, 9), "blue")
        ),
        "a3": upload_tagged(client, alice["headers"], ["beach"], name="a3.png", isPrivate=1),
        "b1": upload_tagged(
            client, bob["headers"], ["sunset", "beach"], name="b1.gif", data=image_bytes("GIF", (5, 5), "green")
        ),
        "b2": upload_tagged(client, bob["headers"], ["city"], name="b2.png"),
        "b3": upload_tagged(client, bob["headers"], ["sunset", "beach"], name="b3.png", isPrivate=1),
    }
    days = {
        "a1": "2024-01-10",
        "a2": "2024-02-10",
        "a3": "2024-03-10",
        "b1": "2024-01-20",
        "b2": "2024-02-20",
        "b3": "2024-03-20",
    }
    with psycopg.connect(config.database_url, autocommit=True) as conn:
        for key, day in days.items():
            conn.execute(
                "UPDATE images SET created_at = %s::timestamptz + interval '12 hours' WHERE id = %s",
                (day, images[key]["id"]),
            )
    return {key: image["id"] for key, image in images.items()}


@pytest.mark.parametrize(
    "params, expected",
    [
        ({}, ["a3", "b2", "a2", "b1", "a1"]),
        ({"tag": "sunset"}, ["a2", "b1", "a1"]),
        ({"tag": ["sunset", "beach"]}, ["b1", "a1"]),
        ({"tag": "sunset,BEACH"}, ["b1", "a1"]),
        ({"tag": ["beach", "city"]}, []),
        ({"tag": "no-such-tag"}, []),
        ({"owner": "bob"}, ["b2", "b1"]),
        ({"owner": "alice"}, ["a3", "a2", "a1"]),
        ({"owner": "nobody"}, []),
        ({"type": "image/png"}, ["a3", "b2", "a1"]),
        ({"type": "image/gif"}, ["b1"]),
        ({"type": "image/webp"}, []),
        ({"from": "2024-02-01"}, ["a3", "b2", "a2"]),
        ({"to": "2024-01-20"}, ["b1", "a1"]),  # a date: that whole day included
        ({"to": "2024-01-20T11:59:59Z"}, ["a1"]),
        ({"to": "2024-01-20T12:00:00+00:00"}, ["b1", "a1"]),  # a date-time: inclusive
        ({"from": "2024-01-15T00:00:00", "to": "2024-02-15"}, ["a2", "b1"]),  # no zone: UTC
        ({"from": "2024-02-10T13:00:00+02:00", "to": "2024-02-10T13:00:00+02:00"}, []),
        ({"from": "2024-02-10T14:00:00+02:00", "to": "2024-02-10T14:00:00+02:00"}, ["a2"]),
        ({"tag": "sunset", "owner": "alice", "type": "image/jpeg"}, ["a2"]),
        ({"tag": "beach", "from": "2024-01-15", "type": "image/gif"}, ["b1"]),
        ({"tag": "beach", "mine": "1"}, ["a3", "a1"]),
        ({"q": "sunset", "owner": "bob"}, ["b1"]),
        ({"q": "a1"}, ["a1"]),
    ],
)
def test_filters(client, alice, corpus, params, expected):
    """Seen by alice: her own images (a3 is private) and bob's public ones (b3 is private)."""
    got = listed_ids(client, alice["headers"], **params)
    assert got == [corpus[k] for k in expected]


def test_filters_anonymous(client, corpus):
    assert listed_ids(client, tag="beach") == [corpus["b1"], corpus["a1"]]
    assert listed_ids(client, owner="alice", to="2024-03-31") == [corpus["a2"], corpus["a1"]]


# -- search --------------------------------------------------------------------------------------
def test_search_ranks_tags_over_names_over_descriptions(client, alice, bob):
    in_description = upload_tagged(
        client, alice["headers"], name="p1.png", description="a sunset sunset sunset over the sunset harbour, sunset"
    )
    in_tag = upload_tagged(client, alice["headers"], ["Sunsets"], name="p2.png", description="harbour")
    in_name = upload_tagged(client, bob["headers"], name="sunset_over_lisbon.jpg")
    unrelated = upload_tagged(client, bob["headers"], ["sun"], name="p4.png", description="noon")
    order = [in_tag["id"], in_name["id"], in_description["id"]]
    assert listed_ids(client, alice["headers"], q="sunset") == order, "tag > file name > description"
    assert listed_ids(client, q="Sunset") == order, "case does not matter; pages of 2 keep the order"
    # Equal ranks (both tags) come newest first.
    assert listed_ids(client, q="sun") == [unrelated["id"], *order], "a prefix finds longer words"
    assert listed_ids(client, q="lisbon") == [in_name["id"]], "file names are cut into words"
    assert sorted(listed_ids(client, q="SUNSET  harbour!")) == sorted([in_tag["id"], in_description["id"]]), (
        "every word must match"
    )
    assert listed_ids(client, q="jpg") == [in_name["id"]]
    assert listed_ids(client, q="nothing-matches-this") == []


def test_search_follows_changes(client, alice):
    image = upload_tagged(client, alice["headers"], name="x.png", description="old words")
    assert listed_ids(client, alice["headers"], q="old") == [image["id"]]
    client.patch(f"/images/{image['id']}", headers=alice["headers"], json={"description": "fresh words"})
    assert listed_ids(client, alice["headers"], q="old") == []
    assert listed_ids(client, alice["headers"], q="fresh") == [image["id"]]
    put_tags(client, alice["headers"], image["id"], ["zebra"])
    assert listed_ids(client, alice["headers"], q="zeb") == [image["id"]]
    put_tags(client, alice["headers"], image["id"], [])
    assert listed_ids(client, alice["headers"], q="zebra") == []


def test_search_pages_do_not_repeat_or_skip(client, alice):
    ids = {
        upload_tagged(client, alice["headers"], ["same"] if n % 2 else [], name=f"same-{n}.png")["id"] for n in range(7)
    }
    walked = listed_ids(client, alice["headers"], q="same")
    assert sorted(walked) == sorted(ids), "tie-ranked results are all there exactly once"


# -- bad values ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "query, status",
    [
        ("tag=", 200),
        ("tag=a/b", 422),
        ("tag=" + "x" * 51, 422),
        ("tag=" + ",".join("t" * 3 for _ in range(31)), 200),
        ("tag=" + ",".join(f"t{n}" for n in range(31)), 422),
        ("q=", 422),
        ("q=!!!", 422),
        ("q=" + "a" * 201, 422),
        ("q=%27%3A*%26%7C!(", 422),
        ("q=a%27b", 200),
        ("q=%00", 422),
        ("from=yesterday", 422),
        ("from=2024-13-01", 422),
        ("to=2024-02-30", 422),
        ("from=12345", 422),
        ("from=2024-03-01&to=2024-02-01", 200),  # an empty range: no images, as the document allows
        ("to=9999-12-31", 200),
        ("from=0001-01-01", 200),
        ("to=9999-12-31T23:59:59.999999", 200),
        ("from=2024-01-01T00:00:00%2B25:00", 422),
        ("from=2020-01-01&to=9999-12-31", 200),
        ("from=9999-12-31&to=9999-12-31", 200),
        ("owner=" + "x" * 201, 422),
        ("owner=", 200),
        ("owner=%00", 422),
        ("type=text/html", 422),
        ("type=IMAGE/PNG", 422),
        ("type=", 422),
        ("cursor=Y2xhc3N8MnwyMDI0LTAxLTAxVDAwOjAwOjAwKzAwOjAwfDM", 400),  # a search cursor without q
        ("q=sun&cursor=MjAyNC0wMS0wMVQwMDowMDowMCswMDowMHwx", 400),  # a date cursor with q
        ("q=sun&cursor=cmFua3wwLjV8Mw", 400),  # the (rank, id) cursor of earlier versions
        ("q=sun&cursor=Y2xhc3N8NHwyMDI0LTAxLTAxVDAwOjAwOjAwKzAwOjAwfDM", 400),  # class 4
        ("q=sun&cursor=Y2xhc3N8Mnx5ZXN0ZXJkYXl8Mw", 400),  # not a time
        ("q=sun&cursor=Y2xhc3N8MnwyMDI0LTAxLTAxVDAwOjAwOjAwKzAwOjAwfC0x", 400),  # id -1
        ("q=sun&cursor=Y2xhc3N8MnwyMDI0LTAxLTAxVDAwOjAwOjAwKzAwOjAwfDM", 200),  # class 2, 2024, id 3
    ],
)
def test_bad_filter_values(client, alice, query, status):
    upload_tagged(client, alice["headers"], ["sun"], name="sun.png")
    response = client.get("/images?" + query, headers=alice["headers"])
    if status == 200:
        assert response.status_code == 200, response.get_json()
    else:
        assert_error(response, status)


@pytest.mark.parametrize(
    "query, status",
    [
        ("limit=0", 422),
        ("limit=101", 422),
        ("name=" + "x" * 51, 422),
        ("cursor=!!!", 400),
        ("cursor=eC94", 400),
        ("other=1", 422),
        ("name=%00", 422),
        ("name=", 200),
    ],
)
def test_bad_tag_list_values(client, query, status):
    response = client.get("/tags?" + query)
    if status == 200:
        assert response.status_code == 200, response.get_json()
    else:
        assert_error(response, status)

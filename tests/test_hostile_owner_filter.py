"""`GET /images?owner=<name>` finds the owner by the same normalised key logins and uniqueness
use (NFKC, case-folded): every spelling of a name lists that account's public images."""

from __future__ import annotations

import pytest

from conftest import login, register
from imagesamples import image_bytes


@pytest.mark.parametrize("spelling", ["Zoë", "zoë", "ZOË", "ｚｏë", "zoe\u0308"])
def test_every_spelling_of_a_name_filters_to_its_images(client, spelling):
    register(client, "Zoë")
    headers = {"Authorization": "Bearer " + login(client, "Zoë")["access_token"]}
    image = client.post("/images/raw?name=a.png", headers=headers, data=image_bytes()).get_json()
    register(client, "bob")
    client.post(
        "/images/raw?name=b.png",
        headers={"Authorization": "Bearer " + login(client, "bob")["access_token"]},
        data=image_bytes("GIF"),
    )

    listed = client.get("/images", query_string={"owner": spelling})
    assert listed.status_code == 200
    assert [i["id"] for i in listed.get_json()["images"]] == [image["id"]]


def test_an_unknown_owner_lists_nothing(client):
    register(client, "zoë")
    assert client.get("/images", query_string={"owner": "zoey"}).get_json()["images"] == []

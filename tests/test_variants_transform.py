"""The variant request model: parsing, normal form, keys and limits (pure, no image library)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagerepo.variants.transform import (
    MAX_SIDE,
    QUALITIES,
    SIZES,
    BadTransform,
    Transform,
    background_transforms,
    parse,
)

ALL = ("jpeg", "png", "webp", "avif")


def q(query: str, source_type: str = "image/jpeg", **options) -> Transform | None:
    pairs = [tuple(part.split("=", 1)) for part in query.split("&") if part]
    return parse(pairs, source_type, **options)


def test_no_transform_parameter_means_the_original():
    assert q("") is None
    assert q("download=1&accesskey=abc") is None


def test_width_alone_keeps_the_source_format_and_default_quality():
    t = q("width=200")
    assert t == Transform(200, 0, "inside", "jpeg", 80)
    assert t.key == "w=200,h=0,fit=inside,fmt=jpeg,q=80"
    assert (t.content_type, t.extension) == ("image/jpeg", "jpg")


@pytest.mark.parametrize(
    "source, expected",
    [
        ("image/jpeg", "jpeg"),
        ("image/webp", "webp"),
        ("image/png", "png"),
        ("image/gif", "png"),
        ("image/bmp", "png"),
        ("image/tiff", "png"),
        ("application/dicom", "png"),
    ],
)
def test_default_format_follows_the_source(source, expected):
    assert q("height=200", source).format == expected


def test_equivalent_requests_share_one_key():
    keys = {
        q("width=200&format=jpeg&quality=80").key,
        q("format=jpg&width=200").key,
        q("width=200&fit=inside").key,
        q("img_format=jpeg&width=200").key,
    }
    assert keys == {"w=200,h=0,fit=inside,fmt=jpeg,q=80"}


def test_png_ignores_quality_in_its_key():
    assert (
        q("width=200&format=png&quality=50").key
        == q("width=200&format=png").key
        == ("w=200,h=0,fit=inside,fmt=png,q=0")
    )


def test_format_conversion_at_full_size():
    assert q("format=png").key == "w=0,h=0,fit=inside,fmt=png,q=0"
    assert q("quality=50", "image/jpeg").key == "w=0,h=0,fit=inside,fmt=jpeg,q=50"


def test_cover_needs_both_sides():
    assert q("width=200&height=200&fit=cover").key == "w=200,h=200,fit=cover,fmt=jpeg,q=80"
    with pytest.raises(BadTransform, match="fit: cover needs both"):
        q("width=200&fit=cover")


@pytest.mark.parametrize(
    "query, parameter",
    [
        ("width=201", "width"),
        ("height=5000", "height"),
        ("width=0", "width"),
        ("width=-200", "width"),
        ("width=+200", "width"),
        ("width=0200", "width"),
        ("width=200.0", "width"),
        ("width=2e2", "width"),
        ("width= 200", "width"),
        ("width=", "width"),
        ("width=99999999999999999999", "width"),
        ("width=200&width=200", "width"),
        ("quality=81", "quality"),
        ("quality=100", "quality"),
        ("format=gif", "format"),
        ("format=avif", "format"),
        ("format=JPEG", "format"),
        ("format=svg", "format"),
        ("fit=fill", "fit"),
        ("img_format=webp", "img_format"),
        ("format=png&img_format=png", "img_format"),
    ],
)
def test_bad_parameters_are_refused_with_their_name(query, parameter):
    with pytest.raises(BadTransform) as err:
        q(query)
    assert err.value.parameter == parameter


def test_avif_only_where_the_pipeline_supports_it():
    with pytest.raises(BadTransform, match="jpeg, png, webp$"):
        q("format=avif")
    assert q("format=avif&width=200", formats=ALL).key == "w=200,h=0,fit=inside,fmt=avif,q=80"


def test_any_size_for_owners_is_still_bounded():
    assert q("width=333", any_size=True).width == 333
    assert q("width=4096&height=1", any_size=True).height == 1
    with pytest.raises(BadTransform, match=f"between 1 and {MAX_SIDE}"):
        q(f"width={MAX_SIDE + 1}", any_size=True)


def test_the_space_of_keys_per_source_is_small():
    """Without any_size, every acceptable request falls in a set of known size."""
    sides = [0, *SIZES]
    keys = set()
    for w in sides:
        for h in sides:
            for fit in ("inside", "cover"):
                for fmt in ALL:
                    for quality in QUALITIES:
                        query = f"format={fmt}&quality={quality}&fit={fit}"
                        query += f"&width={w}" if w else ""
                        query += f"&height={h}" if h else ""
                        try:
                            keys.add(q(query, formats=ALL).key)
                        except BadTransform:
                            pass
    inside = len(sides) ** 2
    cover = len(SIZES) ** 2
    assert len(keys) == (inside + cover) * (3 * len(QUALITIES) + 1)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["width", "height", "fit", "format", "quality", "img_format", "other"]),
            st.text(max_size=8),
        ),
        max_size=6,
    )
)
def test_any_query_parses_or_is_refused_and_keys_round_trip(pairs):
    try:
        found = parse(pairs, "image/png", formats=ALL)
    except BadTransform:
        return
    if found is not None:
        assert Transform.from_key(found.key) == found


@pytest.mark.parametrize(
    "key",
    [
        "w=200,h=0,fit=inside,fmt=jpeg",
        "w=200,h=0,fit=inside,fmt=png,q=80",
        "w=200,h=0,fit=cover,fmt=jpeg,q=80",
        "h=0,w=200,fit=inside,fmt=jpeg,q=80",
        "w=x,h=0,fit=inside,fmt=jpeg,q=80",
        "",
    ],
)
def test_from_key_refuses_what_is_not_a_normal_key(key):
    with pytest.raises(BadTransform):
        Transform.from_key(key)


def test_background_transforms_are_the_seed_services_variants():
    assert [t.key for t in background_transforms("image/jpeg")] == [
        "w=0,h=200,fit=inside,fmt=jpeg,q=80",
        "w=0,h=400,fit=inside,fmt=jpeg,q=80",
        "w=0,h=0,fit=inside,fmt=png,q=0",
    ]
    assert [t.key for t in background_transforms("image/png")][-1] == "w=0,h=0,fit=inside,fmt=jpeg,q=80"
    assert [t.key for t in background_transforms("application/dicom")] == [
        "w=0,h=200,fit=inside,fmt=png,q=0",
        "w=0,h=400,fit=inside,fmt=png,q=0",
    ]

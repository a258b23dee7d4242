"""`python -m imagerepo seed-demo`: fill a dev instance with users, generated images and tags.

Everything goes through the domain functions (accounts, the blob store's stager, image creation
with tags), as an upload would, so the blob store, dedup and search vectors are all exercised.
Images are small real PNG/JPEG files drawn with Pillow: a random background, a few shapes,
random sizes, so each one is distinct content; about one in ten repeats an earlier file to show
deduplication.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable

from PIL import Image, ImageDraw

from .accounts import NameTaken

DEMO_PASSWORD = "demo-password"

SUBJECTS = [
    "sunset",
    "beach",
    "mountain",
    "city",
    "cat",
    "dog",
    "forest",
    "river",
    "snow",
    "night",
    "portrait",
    "flowers",
    "street",
    "bridge",
    "desert",
    "lake",
    "autumn",
    "architecture",
]
MOODS = ["calm", "bright", "dark", "warm", "cold", "misty", "colourful", "minimal"]
PLACES = ["lisbon", "kyoto", "new york", "reykjavik", "cape town", "patagonia", "oslo", "lima"]
WORDS = [
    "quiet",
    "morning",
    "light",
    "over",
    "the",
    "old",
    "harbour",
    "after",
    "rain",
    "long",
    "shadows",
    "walk",
    "through",
    "golden",
    "hour",
    "first",
    "frost",
    "on",
    "window",
    "view",
]


def demo_image(rng: random.Random) -> tuple[bytes, str]:
    """A small real image (bytes, format extension), different for every draw."""
    width, height = rng.randint(24, 320), rng.randint(24, 240)
    image = Image.new("RGB", (width, height), tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(1, 6)):
        x0, y0 = rng.randrange(width), rng.randrange(height)
        box = (x0, y0, x0 + rng.randint(2, width), y0 + rng.randint(2, height))
        colour = tuple(rng.randrange(256) for _ in range(3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
    fmt, ext = ("PNG", "png") if rng.random() < 0.6 else ("JPEG", "jpg")
    buffer = io.BytesIO()
    image.save(buffer, fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    return buffer.getvalue(), ext


def _demo_user(db, name: str) -> int:
    from .auth import create_user, find_user_by_login

    try:
        return create_user(db, name, f"{name}@example.com", DEMO_PASSWORD)["id"]
    except NameTaken:  # seeded before: reuse the account
        user = find_user_by_login(db, name)
        if user is None:  # the email belongs to someone else
            raise
        return user["id"]


def seed_demo(
    app,
    users: int,
    images: int,
    seed: int | None = None,
    progress: Callable[[str, int, int | None], None] | None = None,
) -> dict:
    """Create `users` demo accounts (demo1..demoN, password DEMO_PASSWORD; existing ones are
    reused) and `images` images spread over them. Returns counts."""
    from .context import services
    from .images.service import create_image

    rng = random.Random(seed)
    progress = progress or (lambda *_: None)
    with app.app_context():
        svc = services(app)
        owners = []
        for n in range(1, users + 1):
            owners.append(_demo_user(svc.db, f"demo{n}"))
            progress("users", n, users)
        made: list[tuple[bytes, str]] = []
        duplicates = private = 0
        for n in range(1, images + 1):
            if made and rng.random() < 0.1:
                data, ext = rng.choice(made)
                duplicates += 1
            else:
                data, ext = demo_image(rng)
                made.append((data, ext))
            subject = rng.choice(SUBJECTS)
            tags = rng.sample(SUBJECTS, rng.randint(0, 2)) + rng.sample(MOODS, rng.randint(0, 1))
            if rng.random() < 0.4:
                tags.append(rng.choice(PLACES))
            tags = list(dict.fromkeys([subject, *tags]))
            description = " ".join(rng.choices(WORDS, k=rng.randint(0, 8)))
            is_private = rng.random() < 0.2
            private += is_private
            stager = svc.blobs.stager()
            try:
                stager.write(data)
                staged = stager.finish()
                try:
                    create_image(
                        rng.choice(owners), staged, f"{subject}-{n}.{ext}", description, is_private, None, tags
                    )
                finally:
                    staged.discard()
            finally:
                stager.abort()
            progress("images", n, images)
    return {"users": users, "images": images, "duplicates": duplicates, "private": private}

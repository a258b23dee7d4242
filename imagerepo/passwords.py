"""Password rules and hashing, after NIST SP 800-63B (section 5.1.1.2 in revision 3).

Rules: at least 8 characters (code points, counted after NFKC), at most 1024; any Unicode,
spaces included, so long passphrases are welcome; no composition rules (no "one digit, one
symbol"). Refused: a password that is only whitespace, that is on the blocklist of common and
breached passwords shipped in imagerepo/data (see common-passwords.LICENSE for where it comes
from), that is one character or a short piece repeated ("aaaaaaaa", "abcabcabc") or a straight
run ("12345678", "abcdefgh", "98765432"), or that is little more than the user's name, email or
the service's name ("alice2024!" for alice: what is left once those are taken out must pass
the same rules). Nothing is looked up over the network.

Passwords are normalised to NFKC before they are hashed, so the same password typed on
another keyboard or input method (composed or decomposed accents, fullwidth forms) still
matches. Hashes made before that (of the password as sent) keep working: a password whose NFKC
form differs is also checked as sent, and its hash is replaced by the NFKC one on success.
"""

from __future__ import annotations

import functools
import gzip
import unicodedata
from importlib import resources

from werkzeug.security import check_password_hash, generate_password_hash

from .names import name_key

MIN_CHARS = 8
MAX_CHARS = 1024
SERVICE_WORDS = ("imagerepo", "image repo")

# Verified against when the user is unknown, so a wrong name costs the same time as a wrong
# password and login timing does not reveal which accounts exist.
_DUMMY_HASH = generate_password_hash("not a real password", method="scrypt")


@functools.cache
def common_passwords() -> frozenset[str]:
    with resources.files(__package__).joinpath("data/common-passwords.txt.gz").open("rb") as raw:
        with gzip.open(raw, "rt", encoding="utf-8") as lines:
            return frozenset(line.strip() for line in lines if line.strip())


def _trivial(text: str) -> bool:
    """One character or a piece of up to four repeated, or a run of consecutive characters."""
    if any(len(text) >= 2 * n and text == (text[:n] * (len(text) // n + 1))[: len(text)] for n in range(1, 5)):
        return True
    steps = {ord(b) - ord(a) for a, b in zip(text, text[1:], strict=False)}
    return steps in ({1}, {-1})


def _plain_problem(folded: str) -> str | None:
    if len(folded) < MIN_CHARS:
        return f"this password is too short: at least {MIN_CHARS} characters"
    if not folded.strip():
        return "a password cannot be only spaces"
    if folded.strip() in common_passwords():
        return "this password is too common: it is on the list of passwords most used and leaked in breaches"
    if _trivial(folded):
        return "this password is too easy to guess: a repeated character, piece or run such as 12345678"
    return None


def password_problem(password: str, context: tuple[str, ...] = ()) -> str | None:
    """Why `password` is refused, or None. `context`: the user's name and email."""
    if len(password) > MAX_CHARS:
        return f"a password has at most {MAX_CHARS} characters"
    folded = name_key(password)
    problem = _plain_problem(folded)
    if problem:
        return problem
    words = set(SERVICE_WORDS)
    for value in context:
        if value:
            words.add(name_key(value))
            words.add(name_key(value).split("@")[0])
    rest = folded
    for word in sorted((w for w in words if len(w) >= 3), key=len, reverse=True):
        rest = rest.replace(word, "")
    if rest != folded and _plain_problem(rest):
        return "this password is too close to your user name or email (or the service's name)"
    return None


def _normalised(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


def hash_password(password: str) -> str:
    return generate_password_hash(_normalised(password), method="scrypt")


def verify_password(stored_hash: str | None, password: str) -> tuple[bool, bool]:
    """(matches, needs_rehash). With no stored hash (unknown user) the dummy hash is checked, the
    same number of times as for a real one, so timing does not tell the two apart."""
    candidates = [_normalised(password)]
    if candidates[0] != password:
        candidates.append(password)  # hashed as sent, before passwords were normalised
    results = [check_password_hash(stored_hash or _DUMMY_HASH, candidate) for candidate in candidates]
    matches = stored_hash is not None and any(results)
    return matches, matches and not results[0]

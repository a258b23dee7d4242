"""Limits on password guessing, shared by every worker through PostgreSQL (`login_failures`).

Failed logins are counted over a sliding window (`login_window_seconds`, default 15 min) three
ways: per login name and client, per login name (from every client) and per client (for every
name). Within each limit attempts are free; past it each attempt must wait a delay after the
latest failure that doubles with every further failure, from 1 s up to `login_max_delay_seconds`
(default 60 s): 429 with Retry-After until then, even for the right password (or guessing
would just go on), and a refused attempt is not counted. A success clears that name's failures
from that client.

Why three: the pair limit (5) stops one client guessing one account quickly, without touching
the account's owner on another client. The account limit (30) stops many clients guessing one
account; one client alone cannot reach it, since in one window its pair delays let it make
about 25 failures, so locking an owner out takes several clients, and then only for the
current delay (at most a minute after the latest failure). The client limit (50) stops one
client trying a few passwords on many accounts.

The login name is counted as typed, made canonical (names.login_key): so an unknown name is
limited exactly like a real one and the limits reveal nothing about which accounts exist.
A login reserves its failure row before the password is checked and removes it on success:
concurrent guesses in every worker are counted, without holding a lock while scrypt runs.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math


class TooManyLogins(Exception):
    def __init__(self, retry_after: int):
        super().__init__(f"too many failed logins; try again in {retry_after} s")
        self.retry_after = retry_after


@dataclasses.dataclass(frozen=True)
class Attempt:
    id: int
    account: str
    client: str


def client_key(address: str | None) -> str:
    """The address failures are counted under. IPv6 clients count per /64, the block one
    subscriber usually holds, or rotating addresses would escape every limit."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return address or "unknown"
    if ip.version == 6:
        if ip.ipv4_mapped:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def delay_seconds(failures: int, allowed: int, max_delay: int) -> float:
    """How long after the latest failure the next attempt must wait: 0 within the limit, then
    1 s doubling with each further failure, capped."""
    if failures < allowed:
        return 0.0
    return float(min(max_delay, 2 ** min(failures - allowed, 30)))


_COUNTS_SQL = """
SELECT count(*) FILTER (WHERE account = %(account)s AND client = %(client)s) AS pair,
       max(failed_at) FILTER (WHERE account = %(account)s AND client = %(client)s) AS pair_last,
       count(*) FILTER (WHERE account = %(account)s) AS account,
       max(failed_at) FILTER (WHERE account = %(account)s) AS account_last,
       count(*) FILTER (WHERE client = %(client)s) AS client,
       max(failed_at) FILTER (WHERE client = %(client)s) AS client_last,
       now() AS now
  FROM login_failures
 WHERE (account = %(account)s OR client = %(client)s) AND failed_at > now() - make_interval(secs => %(window)s)
"""

# Rows out of the window are useless: pruned as attempts come in (an index range scan).
_RESERVE_SQL = """
WITH pruned AS (DELETE FROM login_failures WHERE failed_at <= now() - make_interval(secs => %(window)s))
INSERT INTO login_failures (account, client) VALUES (%(account)s, %(client)s) RETURNING id
"""


def begin(db, config, account: str, client: str) -> Attempt:
    """Check the limits for a login of `account` from `client` and reserve a failure row for it.
    Raises TooManyLogins (nothing recorded) when it must wait."""
    params = {"account": account, "client": client, "window": config.login_window_seconds}
    with db.transaction() as conn:
        # Check and reserve one attempt at a time per name and per client, across workers.
        # Always name first, then client, so two logins cannot wait for each other.
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 1))", (f"login-name:{account}",))
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 1))", (f"login-client:{client}",))
        counts = conn.execute(_COUNTS_SQL, params).fetchone()
        wait = 0.0
        for kind, allowed in (
            ("pair", config.login_max_failures),
            ("account", config.login_max_failures_per_account),
            ("client", config.login_max_failures_per_client),
        ):
            delay = delay_seconds(counts[kind], allowed, config.login_max_delay_seconds)
            if delay:
                wait = max(wait, delay - (counts["now"] - counts[f"{kind}_last"]).total_seconds())
        if wait > 0:
            raise TooManyLogins(max(1, math.ceil(wait)))
        attempt_id = conn.execute(_RESERVE_SQL, params).fetchone()["id"]
    return Attempt(attempt_id, account, client)


def failed(db, attempt: Attempt) -> None:
    """The password was wrong: the reserved row becomes the failure, dated now, so the delay runs
    from the answer (the check took a while) rather than from the request."""
    with db.transaction() as conn:
        conn.execute("UPDATE login_failures SET failed_at = now() WHERE id = %s", (attempt.id,))


def succeeded(db, attempt: Attempt) -> None:
    """The password was right: forget this name's failures from this client (the reserved row
    among them). Failures from other clients stay counted: they were someone else's guesses."""
    with db.transaction() as conn:
        conn.execute(
            "DELETE FROM login_failures WHERE id = %s OR (account = %s AND client = %s)",
            (attempt.id, attempt.account, attempt.client),
        )

"""Command-line client for ImageRepo, for people who don't use curl.

    python -m imagerepo.client register alice alice@example.com
    python -m imagerepo.client login alice
    python -m imagerepo.client upload cat.jpg dog.png --description "pets"
    python -m imagerepo.client list --mine
    python -m imagerepo.client download 7            # into ./outputs/

The server is `--server`, else $IMAGEREPO_URL, else http://127.0.0.1:5666. Tokens are kept per
server in $IMAGEREPO_CLIENT_CONFIG (default ~/.config/imagerepo/client.json, mode 0600).
Any failure prints one line on stderr and exits with status 1.

    session.py   server, tokens, requests (refresh and retry once), error lines
    commands.py  one function per command
    files.py     streamed uploads, downloads under a safe name in the output directory
    output.py    progress on stderr, text or --json on stdout
    cli.py       arguments and main()

The client talks to the server over HTTP only: it must never import the server's modules (so
it needs nothing but `requests`), and never write outside the output directory it was given.
"""

try:
    import requests  # noqa: F401  (its one dependency: the `client` extra, which the server does not need)
except ModuleNotFoundError:
    raise SystemExit("imagerepo-client needs the 'client' extra: pip install 'imagerepo[client]'") from None

from .cli import main

__all__ = ["main"]

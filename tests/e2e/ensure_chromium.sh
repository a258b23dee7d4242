#!/bin/sh
# Headless Chromium for the browser tests (tests/e2e), from Debian's packages, installed when
# missing. Playwright (from PyPI) drives it over the DevTools protocol, so no chromedriver is needed.
# Run by `make test`; the e2e tests run it too, and fail (never skip) when it cannot install.
set -eu
CHROMIUM=${IMAGEREPO_CHROMIUM:-/usr/bin/chromium}
if [ -x "$CHROMIUM" ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure_chromium: $CHROMIUM is missing; install Debian's chromium package (apt-get install chromium)" \
         "or point IMAGEREPO_CHROMIUM at a Chromium binary" >&2
    exit 1
fi
echo "ensure_chromium: installing chromium (apt-get)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends chromium >&2
[ -x "$CHROMIUM" ]

"""The client's address behind a reverse proxy.

Behind nginx every connection comes from nginx; the client's address travels in
X-Forwarded-For, a header anybody can also send. werkzeug's ProxyFix believes the last `hops`
entries of it; this wrapper lets it do so only for requests whose peer is a trusted proxy
(IMAGEREPO_TRUSTED_PROXIES). A Unix-socket peer (REMOTE_ADDR empty) is trusted: only a local
process can connect there. The access-key failure limits and the audit trail then count real
clients instead of one shared proxy address.
"""

from __future__ import annotations

import ipaddress

from werkzeug.middleware.proxy_fix import ProxyFix


class TrustedProxyFix:
    def __init__(self, wsgi_app, hops: int, trusted: tuple[str, ...]):
        self.wsgi_app = wsgi_app
        self.behind_proxy = ProxyFix(wsgi_app, x_for=hops, x_proto=hops)
        self.trust_any = "*" in trusted
        self.networks = [ipaddress.ip_network(entry, strict=False) for entry in trusted if entry != "*"]

    def trusts(self, peer: str) -> bool:
        if self.trust_any or peer == "":
            return True
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        if address.version == 6 and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)

    def __call__(self, environ, start_response):
        if self.trusts(environ.get("REMOTE_ADDR", "")):
            return self.behind_proxy(environ, start_response)
        return self.wsgi_app(environ, start_response)

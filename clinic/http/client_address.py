"""The address a request comes from, behind the clinic's HTTPS proxy or not.

Behind a proxy every request's TCP peer is the proxy, so a limit keyed on the peer is one limit
for every visitor. The proxy names the client in ``X-Forwarded-For`` (appending the address it
got the request from); a client can write anything there itself, so the header is read only
when the peer is one of ``TRUSTED_PROXIES``, and then from the right: the right-most address
that is not itself a trusted proxy is the client (what a client wrote further left is ignored).
"""

import ipaddress
from typing import Any, Optional, Sequence


def _address(text: str) -> Optional[Any]:
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


def _trusted(address: Any, proxies: Sequence[Any]) -> bool:
    return address is not None and any(address in network for network in proxies)


def client_address(peer: str, forwarded_for: Optional[str], proxies: Sequence[Any]) -> str:
    """The client's address: ``peer`` unless it is a trusted proxy, else from ``forwarded_for``."""
    address = _address(peer or "")
    if not proxies or not _trusted(address, proxies) or not forwarded_for:
        return peer or ""
    hops = [h for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        found = _address(hop)
        if found is None:  # garbage where a proxy would have written an address: stop here
            return str(address)
        if not _trusted(found, proxies):
            return str(found)
        address = found
    return str(address)


def of_request(request: Any) -> str:
    """``client_address`` of a Sanic request, with the app's ``TRUSTED_PROXIES``."""
    settings = request.app.ctx.settings
    forwarded = ",".join(request.headers.getall("x-forwarded-for", []))  # several headers: one list
    return client_address(request.ip, forwarded, settings.trusted_proxies)

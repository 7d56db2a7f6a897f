"""Where a request comes from: the loopback rule of the dev sign-in and the dev codec access."""

from __future__ import annotations

import re

from fastapi import Request

from runtime.settings import is_loopback_host

_FORWARDED_FOR = re.compile(r"""for\s*=\s*"?\[?([^\]";,]*)""", re.IGNORECASE)
_PORT_SUFFIX = re.compile(r":\d+$")


def _forwarded_addresses(request: Request) -> list[str]:
    """Every address the proxy headers claim the request came from."""
    addresses: list[str] = []
    for value in request.headers.getlist("x-forwarded-for"):
        addresses += [part.strip() for part in value.split(",")]
    addresses += [value.strip() for value in request.headers.getlist("x-real-ip")]
    for value in request.headers.getlist("forwarded"):
        claimed = _FORWARDED_FOR.findall(value)
        # A Forwarded header that names no `for` hides where the request came from.
        addresses += [part.strip() for part in claimed] if claimed else [""]
    return [
        address if address.count(":") > 1 else _PORT_SUFFIX.sub("", address)
        for address in addresses
    ]


def made_on_this_machine(request: Request) -> bool:
    """True when the socket peer and every address a proxy header names are loopback."""
    peer = request.client.host if request.client else ""
    claimed = _forwarded_addresses(request)
    return is_loopback_host(peer) and all(is_loopback_host(a) for a in claimed)

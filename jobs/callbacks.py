"""Vetting a callback URL, so a webhook cannot be aimed at the service's own network (SSRF).

A URL is vetted when its job is accepted (a 422 for the client) and again before each
delivery attempt, which then connects to the very address vetted (``Target.address``):
a DNS answer that changes in between (rebinding) cannot move the request elsewhere.
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048
DEFAULT_PORTS = {"http": 80, "https": 443}


class CallbackRefused(ValueError):
    """The callback URL may not be used; the message says why, for the client."""


@dataclass(frozen=True)
class Target:
    """Where a delivery goes: the URL's parts and the one vetted address to connect to."""

    url: str
    scheme: str
    host: str
    port: int
    path: str
    address: str


def vet_callback_url(url: str, allowed_hosts=(), allow_private: bool = False) -> Target:
    """The target of ``url``, or CallbackRefused.

    Only http(s), no credentials; the host must be in ``allowed_hosts`` when that is set (an entry
    ``.example.com`` admits its subdomains); every address the name resolves to must be public
    unless ``allow_private`` (tests, or receivers on the service's own network).
    """
    if not isinstance(url, str) or not url.strip():
        raise CallbackRefused("'callback_url' must be a non-empty string.")
    if len(url) > MAX_URL_LENGTH:
        raise CallbackRefused(f"'callback_url' is longer than {MAX_URL_LENGTH} characters.")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise CallbackRefused("'callback_url' is not a valid URL.") from None
    if parts.scheme not in DEFAULT_PORTS:
        raise CallbackRefused("'callback_url' must be an http or https URL.")
    if parts.username is not None or parts.password is not None:
        raise CallbackRefused("'callback_url' may not carry credentials.")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise CallbackRefused("'callback_url' has no host.")
    if allowed_hosts and not _host_allowed(host, allowed_hosts):
        raise CallbackRefused(f"callback host {host!r} is not in this service's allowed webhook hosts.")
    port = port or DEFAULT_PORTS[parts.scheme]
    address = _vetted_address(host, port, allow_private)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(url=url.strip(), scheme=parts.scheme, host=host, port=port, path=path, address=address)


def _host_allowed(host: str, allowed_hosts) -> bool:
    return any(host == entry or (entry.startswith(".") and host.endswith(entry)) for entry in allowed_hosts)


def _vetted_address(host: str, port: int, allow_private: bool) -> str:
    """The first address ``host`` resolves to, once every one of them is acceptable."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        raise CallbackRefused(f"callback host {host!r} does not resolve.") from None
    addresses = [str(info[4][0]) for info in infos]
    for address in addresses:
        if not is_acceptable(address, allow_private):
            raise CallbackRefused(f"callback host {host!r} resolves to {address}, which is not a public address.")
    return addresses[0]


def is_acceptable(address: str, allow_private: bool = False) -> bool:
    """Public unicast; with ``allow_private`` also private and loopback (never unspecified or multicast)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_unspecified or ip.is_multicast:
        return False
    if allow_private:
        return True
    return ip.is_global and not (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved)

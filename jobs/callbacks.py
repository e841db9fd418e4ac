"""Vetting a callback URL, so a webhook cannot be aimed at the service's own network (SSRF).

A URL is vetted when its job is accepted (a 422 for the client) and again before each
delivery attempt, which then connects to the very address vetted (``Target.address``):
a DNS answer that changes in between (rebinding) cannot move the request elsewhere.

Which addresses may be reached is ``ADDRESS_RULES``, one table (also in docs/failures.md,
"Webhook address rules"); the most specific row containing an address decides. No setting
can widen ``REFUSED`` rows: ``WEBHOOK_ALLOW_PRIVATE`` admits exactly the ``PRIVATE`` ones.
"""

import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import idna

MAX_URL_LENGTH = 2048
DEFAULT_PORTS = {"http": 80, "https": 443}

PUBLIC = "public"  # always admitted
PRIVATE = "private"  # admitted only with WEBHOOK_ALLOW_PRIVATE
REFUSED = "refused"  # never admitted, whatever the settings
EMBEDDED = "embedded"  # an IPv6 form carrying an IPv4 address: the IPv4 address's row decides

_net = ipaddress.ip_network
ADDRESS_RULES = (
    (_net("0.0.0.0/0"), PUBLIC, "public IPv4"),
    (_net("0.0.0.0/8"), REFUSED, "'this network' (includes the unspecified 0.0.0.0)"),
    (_net("10.0.0.0/8"), PRIVATE, "private (RFC 1918)"),
    (_net("100.64.0.0/10"), REFUSED, "shared address space of carrier-grade NAT (RFC 6598), not an intranet"),
    (_net("127.0.0.0/8"), PRIVATE, "loopback"),
    (_net("169.254.0.0/16"), REFUSED, "link-local, including the cloud metadata address 169.254.169.254"),
    (_net("172.16.0.0/12"), PRIVATE, "private (RFC 1918)"),
    (_net("192.0.0.0/24"), REFUSED, "IETF protocol assignments (RFC 6890)"),
    (_net("192.0.2.0/24"), REFUSED, "documentation (TEST-NET-1)"),
    (_net("192.88.99.0/24"), REFUSED, "6to4 relay anycast (deprecated)"),
    (_net("192.168.0.0/16"), PRIVATE, "private (RFC 1918)"),
    (_net("198.18.0.0/15"), REFUSED, "benchmarking (RFC 2544)"),
    (_net("198.51.100.0/24"), REFUSED, "documentation (TEST-NET-2)"),
    (_net("203.0.113.0/24"), REFUSED, "documentation (TEST-NET-3)"),
    (_net("224.0.0.0/4"), REFUSED, "multicast"),
    (_net("240.0.0.0/4"), REFUSED, "reserved (class E)"),
    (_net("255.255.255.255/32"), REFUSED, "broadcast"),
    (_net("::/0"), REFUSED, "not IPv6 global unicast (outside 2000::/3)"),
    (_net("::/128"), REFUSED, "unspecified"),
    (_net("::1/128"), PRIVATE, "loopback"),
    (_net("::/96"), EMBEDDED, "IPv4-compatible (deprecated)"),
    (_net("::ffff:0:0/96"), EMBEDDED, "IPv4-mapped"),
    (_net("64:ff9b::/96"), EMBEDDED, "NAT64 (RFC 6052)"),
    (_net("64:ff9b:1::/48"), REFUSED, "local-use NAT64 (RFC 8215): where the IPv4 address sits is local"),
    (_net("100::/64"), REFUSED, "discard-only (RFC 6666)"),
    (_net("2000::/3"), PUBLIC, "public IPv6 (global unicast)"),
    (_net("2001::/32"), REFUSED, "Teredo: its IPv4 address cannot be vetted"),
    (_net("2001:db8::/32"), REFUSED, "documentation"),
    (_net("2002::/16"), EMBEDDED, "6to4"),
    (_net("fc00::/7"), PRIVATE, "unique local (ULA)"),
    (_net("fd00:ec2::254/128"), REFUSED, "cloud metadata (AWS IPv6)"),
    (_net("fe80::/10"), REFUSED, "link-local"),
    (_net("fec0::/10"), REFUSED, "site-local (deprecated)"),
    (_net("ff00::/8"), REFUSED, "multicast"),
)
_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
_NUMERIC_LABEL = re.compile(r"(0x[0-9a-f]*|[0-9]+)")
_FORBIDDEN_CHAR = re.compile(r"[\x00-\x20\x7f-\x9f]|\s")


class CallbackRefused(ValueError):
    """The callback URL may not be used; the message says why, for the client.

    ``permanent``: the URL itself is wrong, so no later attempt can succeed (a refused or
    unresolvable address may change with DNS)."""

    def __init__(self, message: str, permanent: bool = True):
        super().__init__(message)
        self.permanent = permanent


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

    Only http(s), no credentials, no control characters or spaces; a non-ASCII host name is
    IDNA-encoded and non-ASCII in the path is percent-encoded (``Target.url`` is that ASCII
    form). The host must be in ``allowed_hosts`` when that is set (an entry ``.example.com``
    admits its subdomains); every address the name resolves to must be admitted by
    ``ADDRESS_RULES``.
    """
    if not isinstance(url, str) or not url:
        raise CallbackRefused("'callback_url' must be a non-empty string.")
    if len(url) > MAX_URL_LENGTH:
        raise CallbackRefused(f"'callback_url' is longer than {MAX_URL_LENGTH} characters.")
    if forbidden := _FORBIDDEN_CHAR.search(url):
        raise CallbackRefused(
            f"'callback_url' contains a space or control character ({forbidden.group()!r}); percent-encode it."
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise CallbackRefused("'callback_url' is not a valid URL (its host or port cannot be read).") from None
    if parts.scheme not in DEFAULT_PORTS:
        raise CallbackRefused("'callback_url' must be an http or https URL.")
    if parts.username is not None or parts.password is not None:
        raise CallbackRefused("'callback_url' may not carry credentials.")
    if port == 0:
        raise CallbackRefused("'callback_url' has port 0, which nothing can listen on.")
    host = canonical_host(parts.hostname or "")
    if allowed_hosts and not _host_allowed(host, allowed_hosts):
        raise CallbackRefused(f"callback host {host!r} is not in this service's allowed webhook hosts.")
    port = port or DEFAULT_PORTS[parts.scheme]
    address = _vetted_address(host, port, allow_private)
    path = _ascii(parts.path or "/") + (f"?{_ascii(parts.query)}" if parts.query else "")
    netloc = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
    return Target(
        url=f"{parts.scheme}://{netloc}{path}", scheme=parts.scheme, host=host, port=port, path=path, address=address
    )


def canonical_host(host: str) -> str:
    """The host in the form DNS and the Host header take: an IP literal as written, a name lowercased
    and IDNA-encoded; CallbackRefused for anything that can be neither."""
    host = host.rstrip(".")
    if not host:
        raise CallbackRefused("'callback_url' has no host.")
    if ":" in host:
        if "%" in host:
            raise CallbackRefused(
                f"callback host {host!r} names a network interface (zone index); that is never allowed."
            )
        try:
            return str(ipaddress.IPv6Address(host))
        except ValueError:
            raise CallbackRefused(f"callback host {host!r} is not a valid IPv6 address.") from None
    if not host.isascii():
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except idna.IDNAError as error:
            raise CallbackRefused(f"callback host {host!r} is not a valid internationalized name: {error}.") from None
    host = host.lower()
    labels = host.split(".")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):  # no top-level domain is numeric: an IPv4 address, or nothing
        try:
            return str(ipaddress.IPv4Address(host))
        except ValueError:
            raise CallbackRefused(f"callback host {host!r} is not a valid IPv4 address (write a.b.c.d).") from None
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise CallbackRefused(f"callback host {host!r} is not a valid host name.")
    return host


def _ascii(text: str) -> str:
    """Non-ASCII characters percent-encoded as UTF-8, as browsers send them; the rest untouched."""
    return "".join(char if char.isascii() else quote(char) for char in text)


def _host_allowed(host: str, allowed_hosts) -> bool:
    return any(host == entry or (entry.startswith(".") and host.endswith(entry)) for entry in allowed_hosts)


def _vetted_address(host: str, port: int, allow_private: bool) -> str:
    """The first address ``host`` resolves to, once every one of them is acceptable."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        raise CallbackRefused(f"callback host {host!r} does not resolve.", permanent=False) from None
    addresses = [str(info[4][0]) for info in infos]
    for address in addresses:
        if not is_acceptable(address, allow_private):
            _, _, reason = address_rule(address)
            raise CallbackRefused(
                f"callback host {host!r} resolves to {address}, which is not a public address ({reason}).",
                permanent=False,
            )
    return addresses[0]


def address_rule(address: str) -> tuple:
    """The row of ``ADDRESS_RULES`` that decides ``address``: the most specific one containing it,
    or, for an IPv6 form carrying an IPv4 address, the IPv4 address's row (its reason names the form)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    network, verdict, reason = max(
        (row for row in ADDRESS_RULES if row[0].version == ip.version and ip in row[0]),
        key=lambda row: row[0].prefixlen,
    )
    if verdict != EMBEDDED or not isinstance(ip, ipaddress.IPv6Address):
        return network, verdict, reason
    assert isinstance(ip, ipaddress.IPv6Address)  # only IPv6 rows embed an IPv4 address
    inner_network, inner_verdict, inner_reason = address_rule(str(embedded_ipv4(ip)))
    return inner_network, inner_verdict, f"{inner_reason}, in its {reason} IPv6 form"


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address:
    """The IPv4 address inside an IPv4-compatible, IPv4-mapped, NAT64 (/96) or 6to4 address."""
    value = int(ip)
    if ip in _net("2002::/16"):
        return ipaddress.IPv4Address((value >> 80) & 0xFFFFFFFF)
    return ipaddress.IPv4Address(value & 0xFFFFFFFF)


def is_acceptable(address: str, allow_private: bool = False) -> bool:
    """Whether a delivery may connect to ``address``: a ``PUBLIC`` row, or a ``PRIVATE`` one with ``allow_private``."""
    _, verdict, _ = address_rule(address)
    return verdict == PUBLIC or (verdict == PRIVATE and allow_private)

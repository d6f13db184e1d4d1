"""Where a unit's webhook may be POSTed, and a POST that goes only there (SSRF).

A receiver registered through the API by a tenant's admin could otherwise make the platform
POST to itself (127.0.0.1, the database port), the cloud's metadata service (169.254.169.254)
or any host of the private network. Refused, unless the deployment allows private targets
(`LIENWATCH_WEBHOOK_ALLOW_PRIVATE`, for receivers on its own LAN): addresses that are loopback,
link-local, private, multicast, unspecified, reserved or otherwise not public, IPv4 and IPv6,
IPv4 inside IPv6 (mapped, 6to4, NAT64) and every IPv4 spelling the resolver reads
(`2130706433`, `0x7f.1`, `0177.0.0.1`). Whatever the setting: schemes other than http(s),
credentials in the URL and IPv6 zones.

`url_refusal` checks a URL as written; `resolved_refusal` also every address its host resolves
to now (registration); `pinned_post` resolves once at delivery, refuses when any address is
refused and connects to the address it checked, so a name that resolves elsewhere a moment
later (DNS rebinding) changes nothing, and it follows no redirect (a 3xx is a failed attempt).
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from urllib.parse import SplitResult, urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_DIGITS = {8: set("01234567"), 10: set("0123456789"), 16: set("0123456789abcdefABCDEF")}


class TargetRefusedError(ValueError):
    """A webhook URL or the address it resolves to is not a target the platform POSTs to."""


def legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The address the C resolver (inet_aton) reads in `host`: 1-4 dot-separated numbers, each
    decimal, octal (leading 0) or hex (0x), the last one filling the bytes left; None when
    `host` is no such spelling."""
    parts = host.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    values = []
    for part in parts:
        if part[:2].lower() == "0x":
            base, digits = 16, part[2:]
        elif len(part) > 1 and part[0] == "0":
            base, digits = 8, part[1:]
        else:
            base, digits = 10, part
        if not digits or not set(digits) <= _DIGITS[base]:
            return None
        values.append(int(digits, base))
    *head, last = values
    if any(v > 0xFF for v in head) or last >= 256 ** (4 - len(head)):
        return None
    number = 0
    for value in head:
        number = number * 256 + value
    return ipaddress.IPv4Address(number * 256 ** (4 - len(head)) + last)


def address_refusal(address: Address) -> str | None:
    """Why the platform must not POST to `address`, or None for a public one."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = address.ipv4_mapped or address.sixtofour
        if inner is None and address in _NAT64:
            inner = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if inner is not None:
            why = address_refusal(inner)
            return None if why is None else f"{address} carries {why}"
    kinds = (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("site-local", isinstance(address, ipaddress.IPv6Address) and address.is_site_local),
        ("multicast", address.is_multicast),
        ("unspecified", address.is_unspecified),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        ("non-public", not address.is_global),
    )
    for kind, matches in kinds:
        if matches:
            return f"{address}, a {kind} address"
    return None


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return legacy_ipv4(host)


def _split(url: str) -> tuple[SplitResult, str, int]:
    """The URL's parts, host and port; TargetRefusedError for what no setting allows."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefusedError(f"not a usable URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise TargetRefusedError("only http and https URLs")
    if "@" in parts.netloc:
        raise TargetRefusedError("credentials in the URL")
    host = parts.hostname
    if not host:
        raise TargetRefusedError("no host")
    if "%" in host:
        raise TargetRefusedError("an IPv6 zone in the host")
    return parts, host, port or (443 if scheme == "https" else 80)


def url_refusal(url: str, allow_private: bool = False) -> str | None:
    """Why `url` as written is refused, or None."""
    try:
        _, host, _ = _split(url)
    except TargetRefusedError as exc:
        return str(exc)
    if allow_private:
        return None
    literal = _literal(host)
    if literal is not None:
        why = address_refusal(literal)
        return None if why is None else f"host {host} is {why}"
    return None  # a name: `resolved_refusal` and `pinned_post` check what it resolves to


def resolve(host: str, port: int) -> list[Address]:
    """Every address `host` resolves to now; OSError when it does not resolve."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in found]


def _resolved_refusal(host: str, addresses: list[Address]) -> str | None:
    for address in addresses:
        why = address_refusal(address)
        if why is not None:
            return f"host {host} resolves to {why}"
    return None


def resolved_refusal(url: str, allow_private: bool = False) -> str | None:
    """`url_refusal`, then the same for every address the host resolves to now. A host that
    does not resolve now passes: delivery checks it again."""
    why = url_refusal(url, allow_private)
    if why is not None or allow_private:
        return why
    _, host, port = _split(url)
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError):
        return None
    return _resolved_refusal(host, addresses)


class _PinnedHTTP(http.client.HTTPConnection):
    """HTTP to `host` (its Host header) over a connection to the checked `address`."""

    def __init__(self, host: str, port: int, address: Address, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = str(address)

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to `host` (SNI and certificate checked for it) over a connection to `address`."""

    def __init__(self, host: str, port: int, address: Address, timeout: float) -> None:
        self._tls = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self._tls)
        self._address = str(address)

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)


def pinned_post(
    url: str, body: bytes, headers: dict[str, str], timeout_s: float, *, allow_private: bool
) -> int:
    """POSTs `body` to `url` and returns the HTTP status (a redirect is not followed).
    TargetRefusedError for a refused URL or resolved address; OSError when no answer came."""
    why = url_refusal(url, allow_private)
    if why is not None:
        raise TargetRefusedError(why)
    parts, host, port = _split(url)
    addresses = resolve(host, port)
    if not addresses:
        raise OSError(f"{host} resolves to no address")
    if not allow_private:
        why = _resolved_refusal(host, addresses)
        if why is not None:
            raise TargetRefusedError(why)
    pinned = _PinnedHTTPS if parts.scheme.lower() == "https" else _PinnedHTTP
    conn = pinned(host, port, addresses[0], timeout_s)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request("POST", target, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return int(response.status)
    except http.client.HTTPException as exc:  # a garbled answer: no answer
        raise OSError(f"bad HTTP answer: {exc!r}") from exc
    finally:
        conn.close()

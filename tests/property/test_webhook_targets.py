"""The webhook target check (alerts.delivery.targets) on generated input: IPv4 in every spelling
the C resolver reads, IPv6 with IPv4 inside, schemes and credentials. The resolver's own parser
(inet_aton) is the oracle for the spellings."""

from __future__ import annotations

import ipaddress
import socket

from hypothesis import example, given
from hypothesis import strategies as st

from alerts.delivery.targets import address_refusal, legacy_ipv4, url_refusal

ipv4 = st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address)
ipv6 = st.integers(0, 2**128 - 1).map(ipaddress.IPv6Address)
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _number(value: int, style: str) -> str:
    return {"dec": str(value), "hex": hex(value), "oct": "0" + oct(value)[2:]}[style]


@st.composite
def spellings(draw: st.DrawFn) -> tuple[ipaddress.IPv4Address, str]:
    """An IPv4 address and one way to write it: 1 to 4 parts, each decimal, hex or octal."""
    address = draw(ipv4)
    value = int(address)
    parts = draw(st.integers(1, 4))
    octets = list(address.packed)
    head = octets[: parts - 1]
    last = int.from_bytes(bytes(octets[parts - 1 :]), "big")
    styles = st.sampled_from(["dec", "hex", "oct"])
    numbers = [_number(octet, draw(styles)) for octet in head] + [_number(last, draw(styles))]
    assert value == int(address)
    return address, ".".join(numbers)


@given(st.text(alphabet="0123456789abcdefxX.", max_size=24))
@example("0x")
@example("1..2")
@example("08")
def test_the_ipv4_spellings_read_as_the_c_resolver_reads_them(text: str) -> None:
    try:
        expected: ipaddress.IPv4Address | None = ipaddress.IPv4Address(socket.inet_aton(text))
    except OSError:
        expected = None
    assert legacy_ipv4(text) == expected


@given(spellings())
@example((ipaddress.IPv4Address("127.0.0.1"), "2130706433"))
@example((ipaddress.IPv4Address("169.254.169.254"), "0xa9.0376.43518"))
def test_an_address_in_any_spelling_is_judged_as_the_address(
    case: tuple[ipaddress.IPv4Address, str],
) -> None:
    address, spelled = case
    refused = url_refusal(f"http://{spelled}:8080/hook")
    assert (refused is None) == (address_refusal(address) is None)
    assert url_refusal(f"http://{spelled}:8080/hook", allow_private=True) is None


@given(ipv4)
def test_only_public_unicast_ipv4_passes(address: ipaddress.IPv4Address) -> None:
    public = address.is_global and not address.is_multicast
    assert (address_refusal(address) is None) == public


@given(ipv4)
def test_ipv4_inside_ipv6_is_judged_as_the_ipv4(address: ipaddress.IPv4Address) -> None:
    inner = address_refusal(address)
    mapped = ipaddress.IPv6Address(f"::ffff:{address}")
    nat64 = ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) + int(address))
    sixtofour = ipaddress.IPv6Address((0x2002 << 112) | (int(address) << 80))
    for wrapped in (mapped, nat64, sixtofour):
        assert (address_refusal(wrapped) is None) == (inner is None), wrapped
        assert (url_refusal(f"https://[{wrapped}]/") is None) == (inner is None)


@given(ipv6)
def test_an_ipv6_literal_is_judged_as_the_address(address: ipaddress.IPv6Address) -> None:
    assert (url_refusal(f"http://[{address}]:80/") is None) == (address_refusal(address) is None)
    if address.ipv4_mapped is None and address.sixtofour is None and address not in NAT64:
        kinds = (address.is_multicast, address.is_reserved, address.is_site_local)
        public = address.is_global and not any(kinds)
        assert (address_refusal(address) is None) == public


def test_the_addresses_an_attacker_reaches_for_are_refused() -> None:
    for bad in [
        "127.0.0.1", "127.255.255.254", "0.0.0.0", "10.1.2.3", "172.16.0.1", "172.31.255.255",
        "192.168.0.1", "169.254.169.254", "100.64.0.1", "224.0.0.251", "239.255.255.250",
        "240.0.0.1", "255.255.255.255", "198.18.0.1", "::", "::1", "fe80::1", "fc00::1",
        "fd12:3456::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "2002:a9fe:a9fe::1",
        "64:ff9b::7f00:1", "fec0::1",
    ]:  # fmt: skip
        assert address_refusal(ipaddress.ip_address(bad)) is not None, bad
    for good in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"]:
        assert address_refusal(ipaddress.ip_address(good)) is None, good


@given(st.from_regex(r"[a-z][a-z0-9+.-]{0,10}", fullmatch=True), st.booleans())
def test_only_http_and_https_schemes_pass(scheme: str, allow_private: bool) -> None:
    refused = url_refusal(f"{scheme}://8.8.8.8/hook", allow_private)
    assert (refused is None) == (scheme in ("http", "https"))


@given(
    st.text(alphabet="abcdefgh123:%", min_size=0, max_size=8),
    st.sampled_from(["8.8.8.8", "hooks.example.com", "10.0.0.1"]),
    st.booleans(),
)
def test_credentials_are_refused_whatever_the_setting(
    userinfo: str, host: str, allow_private: bool
) -> None:
    refused = url_refusal(f"https://{userinfo}@{host}/hook", allow_private)
    assert refused is not None and "credentials" in refused


def test_names_pass_as_written_and_zones_never() -> None:
    assert url_refusal("https://hooks.example.com/lienwatch") is None
    assert url_refusal("http://[fe80::1%25eth0]/", allow_private=True) is not None
    assert url_refusal("http://:80/") is not None
    assert url_refusal("http://8.8.8.8:99999/") is not None

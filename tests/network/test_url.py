"""Tests for syncws.url: WebSocket URL parsing (WHATWG) and protocol validation."""

from __future__ import annotations

import dataclasses

import pytest

from syncws.errors import DOMSyntaxError
from syncws.url import WebSocketURL, parse_ws_url, validate_protocols


@pytest.mark.parametrize(
    "url, href",
    [
        ("ws://example.com", "ws://example.com/"),
        ("ws://example.com/", "ws://example.com/"),
        ("wss://example.com/chat", "wss://example.com/chat"),
        ("http://x", "ws://x/"),
        ("https://x/y", "wss://x/y"),
        ("HTTPS://X/Y", "wss://x/Y"),
        ("WS://EXAMPLE.COM/Path", "ws://example.com/Path"),
        ("wss://example.com:443/", "wss://example.com/"),
        ("ws://example.com:80/", "ws://example.com/"),
        ("ws://example.com:443/", "ws://example.com:443/"),
        ("wss://example.com:80/", "wss://example.com:80/"),
        ("ws://example.com:0080/", "ws://example.com/"),
        ("ws://example.com:/", "ws://example.com/"),
        ("ws://example.com:8080", "ws://example.com:8080/"),
        ("ws://example.com:65535/", "ws://example.com:65535/"),
        ("ws://[::1]:8080/", "ws://[::1]:8080/"),
        ("ws://[0:0:0:0:0:0:0:1]/", "ws://[::1]/"),
        ("ws://[2001:DB8:0:0:1:0:0:1]/", "ws://[2001:db8::1:0:0:1]/"),
        ("ws://[::ffff:192.0.2.1]/", "ws://[::ffff:c000:201]/"),
        ("ws://127.0.0.1:9000/x", "ws://127.0.0.1:9000/x"),
        ("ws://0x7f.1/", "ws://127.0.0.1/"),
        ("ws://2130706433/", "ws://127.0.0.1/"),
        ("ws://0177.0.0.1/", "ws://127.0.0.1/"),
        ("ws://b\u00fccher.example/", "ws://xn--bcher-kva.example/"),
        ("ws://B\u00dcCHER.example/", "ws://xn--bcher-kva.example/"),
        # The IANA IDN test domain "example.test" in Russian.
        ("ws://пример.испытание/", "ws://xn--e1afmkfd.xn--80akhbyknj4f/"),
        ("ws://b%C3%BCcher.example/", "ws://xn--bcher-kva.example/"),
        ("ws://ex%61mple.com/", "ws://example.com/"),
        ("ws://example.com./", "ws://example.com./"),
        ("ws://under_score.example/", "ws://under_score.example/"),
        # The URL standard's lenient bits for special schemes.
        ("ws:example.com", "ws://example.com/"),
        ("ws:\\\\example.com\\a\\b", "ws://example.com/a/b"),
        ("  ws://example.com/ \x00", "ws://example.com/"),
        ("ws://exa\tmple.com/pa\nth\r", "ws://example.com/path"),
        # Paths: dot segments and percent-encoding.
        ("ws://h/a/../b", "ws://h/b"),
        ("ws://h/a/./b/.", "ws://h/a/b/"),
        ("ws://h/a/%2e%2E", "ws://h/"),
        ("ws://h/..", "ws://h/"),
        ("ws://h/a b\"<>`{}^", "ws://h/a%20b%22%3C%3E%60%7B%7D%5E"),
        ("ws://h/caf\u00e9", "ws://h/caf%C3%A9"),
        ("ws://h/%41%zz", "ws://h/%41%zz"),  # existing escapes and stray % are kept
        ("ws://h/\ud800", "ws://h/%EF%BF%BD"),  # lone surrogate -> U+FFFD
        # Queries.
        ("ws://h?", "ws://h/?"),
        ("ws://h/?a=1&b=2", "ws://h/?a=1&b=2"),
        ("ws://h/?q=a b\"'<>`{}", "ws://h/?q=a%20b%22%27%3C%3E`{}"),
        ("ws://h/?\u00e9/?", "ws://h/?%C3%A9/?"),
        # Credentials.
        ("ws://user:pass@h/", "ws://user:pass@h/"),
        ("ws://user@h/", "ws://user@h/"),
        ("ws://user:@h/", "ws://user@h/"),
        ("ws://:pass@h/", "ws://:pass@h/"),
        ("ws://@h/", "ws://h/"),
        ("ws://a@b:c:d@h/", "ws://a%40b:c%3Ad@h/"),
        ("ws://us er:p\u00e4ss@h/", "ws://us%20er:p%C3%A4ss@h/"),
    ],
)
def test_valid_urls(url: str, href: str) -> None:
    parsed = parse_ws_url(url)
    assert parsed.href == href
    assert str(parsed) == href
    assert parse_ws_url(href) == parsed  # serialization is a fixed point


@pytest.mark.parametrize(
    "url",
    [
        # Fragments, even empty ones (web-platform-tests websockets/Create-*).
        "ws://example.com/#",
        "ws://example.com/#x",
        "ws://example.com#",
        "wss://example.com/?q#frag",
        # Schemes.
        "ftp://example.com/",
        "file:///tmp/x",
        "mailto:a@b",
        "about:blank",
        "javascript:alert(1)",
        "localhost:8080",
        # Not absolute (there is no document base URL to resolve against).
        "",
        "   ",
        "/path",
        "example.com",
        "//example.com/",
        "?q",
        # Hosts.
        "ws://",
        "ws:///",
        # Three slashes: the URL standard would skip them (host "path"); syncws refuses.
        "ws:///path",
        "wss:////example.com/",
        "ws://:8080/",
        "ws://user:pass@/",
        "ws://ex ample.com/",
        "ws://ex%20ample.com/",
        "ws://a<b/",
        "ws://a^b/",
        "ws://a|b/",
        "ws://a%2Fb/",
        "ws://a[b/",
        "ws://[::1/",
        "ws://[::1]x/",
        "ws://[::1%25eth0]/",
        "ws://[:::1]/",
        "ws://[1:2:3:4:5:6:7:8:9]/",
        "ws://[example.com]/",
        "ws://1.2.3.256/",
        "ws://1.2.3.4.5/",
        "ws://foo.1/",
        "ws://foo.0x/",
        "ws://09.1/",
        "ws://\u2603\u2603..com/",  # the idna codec rejects empty labels in non-ASCII names
        # Ports.
        "ws://example.com:65536/",
        "ws://example.com:99999999999/",
        "ws://example.com:-1/",
        "ws://example.com:8o/",
        "ws://example.com:1:2/",
        "ws://example.com: 80/",
        "ws://example.com:\u0661/",  # Arabic-Indic digit one
    ],
)
def test_invalid_urls(url: str) -> None:
    with pytest.raises(DOMSyntaxError) as info:
        parse_ws_url(url)
    assert info.value.name == "SyntaxError"
    assert isinstance(info.value, ValueError)


def test_error_messages_say_why() -> None:
    with pytest.raises(DOMSyntaxError, match="fragment"):
        parse_ws_url("ws://example.com/#")
    with pytest.raises(DOMSyntaxError, match="scheme 'ftp'"):
        parse_ws_url("ftp://x")
    with pytest.raises(DOMSyntaxError, match="port"):
        parse_ws_url("ws://x:65536")


def test_three_slashes_are_a_missing_host_not_a_host_made_of_the_path() -> None:
    import syncws

    with pytest.raises(DOMSyntaxError, match="missing host"):
        syncws.WebSocket("ws:///path", connect=False)


def test_ipv4_and_ipv6_corners() -> None:
    with pytest.raises(DOMSyntaxError, match="invalid IPv4"):
        parse_ws_url("ws://1..2/")  # an empty part in an address that ends in a number
    assert parse_ws_url("ws://[1:2:3:4:5:6:7:8]/").host == "[1:2:3:4:5:6:7:8]"  # no zero run


def test_long_numbers_are_syntax_errors_or_ports() -> None:
    """Found by fuzzing: int() refuses decimal strings of over 4300 digits (Python 3.11+),
    which escaped as a plain ValueError instead of DOMSyntaxError."""
    assert parse_ws_url("ws://x:" + "0" * 5000 + "8080/").port == 8080  # leading zeros are fine
    assert parse_ws_url("ws://x:0/").port == 0
    assert parse_ws_url("ws://x:000/").port == 0
    with pytest.raises(DOMSyntaxError, match="out of range"):
        parse_ws_url("ws://x:" + "9" * 5000 + "/")
    with pytest.raises(DOMSyntaxError, match="out of range"):
        parse_ws_url("ws://x:0065536/")
    with pytest.raises(DOMSyntaxError, match="out of range"):
        parse_ws_url("ws://" + "1" * 5000 + "/")  # an IPv4 number
    with pytest.raises(DOMSyntaxError, match="out of range"):
        parse_ws_url("ws://1." + "2" * 30 + "/")


@pytest.mark.parametrize("value", [None, b"ws://x/", 42, ["ws://x/"]])
def test_non_str_url_is_a_type_error(value: object) -> None:
    with pytest.raises(TypeError):
        parse_ws_url(value)  # type: ignore[arg-type]


def test_components() -> None:
    url = parse_ws_url("WSS://User:p%40ss@Example.COM:8443/chat/room?x=1&y")
    assert url.scheme == "wss"
    assert url.secure is True
    assert url.host == "example.com"
    assert url.hostname == "example.com"
    assert url.port == 8443
    assert url.path == "/chat/room"
    assert url.query == "x=1&y"
    assert url.resource_name == "/chat/room?x=1&y"
    assert url.username == "User"
    assert url.password == "p%40ss"
    assert url.decoded_password == "p@ss"
    assert url.href == "wss://User:p%40ss@example.com:8443/chat/room?x=1&y"
    assert url.origin == "wss://example.com:8443"
    assert url.host_header == "example.com:8443"
    assert url.redacted == "wss://User:***@example.com:8443/chat/room?x=1&y"
    assert "p%40ss" not in repr(url)


def test_default_port_components() -> None:
    url = parse_ws_url("ws://example.com")
    assert (url.scheme, url.secure, url.port, url.path, url.query) == ("ws", False, 80, "/", None)
    assert url.default_port
    assert url.resource_name == "/"
    assert url.origin == "ws://example.com"
    assert url.host_header == "example.com"
    assert url.redacted == url.href == "ws://example.com/"
    assert parse_ws_url("https://example.com").port == 443


def test_empty_query_is_kept_in_the_resource_name() -> None:
    url = parse_ws_url("ws://h/p?")
    assert url.query == ""
    assert url.resource_name == "/p?"


def test_ipv6_components() -> None:
    url = parse_ws_url("ws://[::1]:8080/x")
    assert url.host == "[::1]"
    assert url.hostname == "::1"
    assert url.host_header == "[::1]:8080"
    assert url.origin == "ws://[::1]:8080"
    assert parse_ws_url("wss://[::1]/").host_header == "[::1]"


def test_idn_components() -> None:
    url = parse_ws_url("wss://b\u00fccher.example:444/")
    assert url.hostname == "xn--bcher-kva.example"
    assert url.origin == "wss://xn--bcher-kva.example:444"


def test_decoded_credentials() -> None:
    url = parse_ws_url("ws://J%C3%BCrgen:a%3Ab%20c@h/")
    assert url.decoded_username == "J\u00fcrgen"
    assert url.decoded_password == "a:b c"
    assert parse_ws_url("ws://h/").decoded_username == ""


def test_url_object_is_frozen_and_hashable() -> None:
    url = parse_ws_url("ws://h/")
    with pytest.raises(dataclasses.FrozenInstanceError):
        url.port = 1  # type: ignore[misc]
    assert {url: 1}[parse_ws_url("ws://H:80")] == 1
    assert isinstance(url, WebSocketURL)


# --- protocols --------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "protocols, expected",
    [
        (None, []),
        ([], []),
        ((), []),
        ("echo", ["echo"]),
        (["chat", "superchat"], ["chat", "superchat"]),
        (("a", "b"), ["a", "b"]),
        (iter(["x"]), ["x"]),
        (["!#$%&'*+-.^_`|~09AZaz"], ["!#$%&'*+-.^_`|~09AZaz"]),
        (["v1.json.api", "graphql-ws"], ["v1.json.api", "graphql-ws"]),
    ],
)
def test_valid_protocols(protocols: object, expected: list) -> None:
    assert validate_protocols(protocols) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "protocols",
    [
        "",
        [""],
        ["echo", ""],
        ["echo", "echo"],
        ["echo", "eCho"],
        ["a b"],
        ["a,b"],
        ["a\u00e9"],
        ["\u0000"],
        ["(x)"],
        ["a/b"],
        ['"q"'],
        ["x\n"],
        ["a:b"],
        ["{}"],
    ],
)
def test_invalid_protocols(protocols: object) -> None:
    with pytest.raises(DOMSyntaxError):
        validate_protocols(protocols)  # type: ignore[arg-type]


@pytest.mark.parametrize("protocols", [1, b"echo", bytearray(b"x"), [b"echo"], ["a", 1], [None]])
def test_protocols_type_errors(protocols: object) -> None:
    with pytest.raises(TypeError):
        validate_protocols(protocols)  # type: ignore[arg-type]

"""Shared fixtures: syncws's own test server (the pytest plugin) and a thread-leak check."""

from __future__ import annotations

import pytest

from helpers import syncws_threads, wait_no_syncws_threads


def _plugin_installed() -> bool:
    """True when pip installed syncws, whose pytest11 entry point already loads the plugin."""
    from importlib.metadata import entry_points

    eps = entry_points()
    group = eps.select(group="pytest11") if hasattr(eps, "select") else eps.get("pytest11", [])
    return any(ep.name == "syncws" for ep in group)


if not _plugin_installed():
    pytest_plugins = ["syncws.testing"]


@pytest.fixture(autouse=True)
def no_leaked_threads(request):
    """Every test must leave no syncws client thread behind once its sockets are closed."""
    before = set(syncws_threads())
    yield
    if request.node.get_closest_marker("allow_thread_leak"):
        return
    leaked = [t for t in wait_no_syncws_threads() if t not in before]
    assert not leaked, f"syncws threads still running after the test: {[t.name for t in leaked]}"


# -- real proxies (tests/proxy_support.py), started once per run and only when asked for ------


@pytest.fixture(scope="session")
def tinyproxy():
    from proxy_support import http_proxy

    with http_proxy() as proxy:
        yield proxy


@pytest.fixture(scope="session")
def tinyproxy_auth():
    from proxy_support import PROXY_AUTH, http_proxy

    with http_proxy(auth=PROXY_AUTH) as proxy:
        yield proxy


@pytest.fixture(scope="session")
def nginx_https():
    from proxy_support import https_proxy

    with https_proxy() as proxy:
        yield proxy


@pytest.fixture(scope="session")
def dante():
    from proxy_support import socks5_proxy

    with socks5_proxy(server="dante") as proxy:
        yield proxy


@pytest.fixture(scope="session")
def dante4():
    from proxy_support import socks4_proxy

    with socks4_proxy() as proxy:
        yield proxy


@pytest.fixture(scope="session")
def microsocks():
    from proxy_support import socks5_proxy

    with socks5_proxy(server="microsocks") as proxy:
        yield proxy


@pytest.fixture(scope="session")
def microsocks_auth():
    from proxy_support import SOCKS_AUTH, socks5_proxy

    with socks5_proxy(auth=SOCKS_AUTH) as proxy:
        yield proxy

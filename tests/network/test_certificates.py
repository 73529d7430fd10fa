"""Certificates as Python users expect: SSL_CERT_FILE/SSL_CERT_DIR, errors that say which CAs
were trusted, and the CLI's --cafile/--insecure. Real TLS with trustme certificates made here."""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import sys
from typing import Any, Iterator

import pytest

import syncws

trustme = pytest.importorskip("trustme")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TIMEOUT = 10.0
OPTS: Any = dict(proxy=None, timeout=TIMEOUT)


@pytest.fixture(scope="module")
def ca() -> Any:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_file(ca: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def tls_server(ws_server_factory: Any, ca: Any) -> Any:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return ws_server_factory(ssl_context=context)


@pytest.fixture(autouse=True)
def no_trust_variables(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    yield


def echo_once(url: str, **options: Any) -> str:
    with syncws.connect(url, **OPTS, **options) as ws:
        ws.send("over tls")
        return str(ws.recv(TIMEOUT))


def test_default_trust_is_certifi_and_the_error_says_so(tls_server: Any) -> None:
    import certifi

    with pytest.raises(ssl.SSLCertVerificationError) as info:
        echo_once(tls_server.url)
    message = str(info.value)
    assert "certificate verification failed for 127.0.0.1" in message
    assert f"certifi's CA bundle ({certifi.where()})" in message
    assert "ssl=ssl.create_default_context(cafile=...)" in message
    assert "SSL_CERT_FILE" in message
    assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)  # OpenSSL's own
    assert info.value.verify_code == info.value.__cause__.verify_code
    assert isinstance(info.value, OSError)


def test_ssl_cert_file_is_trusted_instead_of_certifi(
    tls_server: Any, ca_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", ca_file)
    assert echo_once(tls_server.url) == "over tls"


def test_ssl_cert_dir_is_trusted_instead_of_certifi(
    tls_server: Any, ca_file: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command to hash a CA directory")
    subject_hash = subprocess.run(
        [openssl, "x509", "-hash", "-noout", "-in", ca_file],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    shutil.copy(ca_file, tmp_path / f"{subject_hash}.0")  # the name OpenSSL looks up
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))
    assert echo_once(tls_server.url) == "over tls"


def test_a_failure_under_ssl_cert_file_names_that_file(
    tls_server: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    monkeypatch.setenv("SSL_CERT_FILE", str(other))
    with pytest.raises(ssl.SSLCertVerificationError) as info:
        echo_once(tls_server.url)
    assert f"trusted: the CAs of SSL_CERT_FILE={other}" in str(info.value)
    assert "certifi's" not in str(info.value)


def test_ssl_cert_file_naming_no_file_fails_the_connection(
    tls_server: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "missing.pem"
    monkeypatch.setenv("SSL_CERT_FILE", str(missing))
    with pytest.raises(FileNotFoundError, match="SSL_CERT_FILE="):
        echo_once(tls_server.url)


def test_a_failure_with_the_users_context_says_it_was_theirs(tls_server: Any) -> None:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    trustme.CA().configure_trust(context)  # some other CA
    with pytest.raises(ssl.SSLCertVerificationError) as info:
        echo_once(tls_server.url, ssl=context)
    assert "trusted: the ssl= context you passed" in str(info.value)


def test_an_explicit_context_wins_over_the_variables(
    tls_server: Any, ca: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    monkeypatch.setenv("SSL_CERT_FILE", str(other))
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(context)
    assert echo_once(tls_server.url, ssl=context) == "over tls"


# -- the command line ----------------------------------------------------------------------


def run_cli(*args: str, stdin: str = "hello\n") -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR", "http_proxy", "https_proxy", "all_proxy",
                 "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "syncws", *args],
        input=stdin, capture_output=True, text=True, timeout=30, env=env,
    )


def test_cli_without_trust_options_fails_with_the_hint(tls_server: Any) -> None:
    result = run_cli(tls_server.url)
    assert result.returncode == 1
    assert "certificate verification failed for 127.0.0.1" in result.stderr
    assert "certifi's CA bundle" in result.stderr


def test_cli_cafile_trusts_that_ca(tls_server: Any, ca_file: str) -> None:
    result = run_cli(tls_server.url, "--cafile", ca_file)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["< 'hello'"]
    assert "WARNING" not in result.stderr


def test_cli_insecure_connects_with_a_loud_warning(tls_server: Any) -> None:
    result = run_cli(tls_server.url, "--insecure")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["< 'hello'"]
    assert "WARNING: --insecure: the server's certificate is NOT verified" in result.stderr


def test_cli_cafile_that_cannot_be_read_is_a_usage_error(tmp_path: Any) -> None:
    result = run_cli("wss://127.0.0.1:9/", "--cafile", str(tmp_path / "nope.pem"))
    assert result.returncode == 2
    assert "--cafile" in result.stderr and "Traceback" not in result.stderr


def test_cli_cafile_and_insecure_exclude_each_other(ca_file: str) -> None:
    result = run_cli("wss://127.0.0.1:9/", "--cafile", ca_file, "--insecure")
    assert result.returncode == 2
    assert "not allowed with argument" in result.stderr

"""Which certificate authorities ``wss://`` trusts by default, and errors that say so.

Without ``ssl=``, syncws verifies servers (and ``https://`` proxies) against certifi's CA
bundle, unless ``SSL_CERT_FILE`` or ``SSL_CERT_DIR`` is set: then against those, as
``ssl.create_default_context()``, ``requests``-style tools and httpx do, so that a corporate
CA installed the usual way is trusted without code changes. A failed verification says which
CAs were used and how to pass ``ssl=``.
"""

from __future__ import annotations

import os
import ssl
import threading
from typing import Dict, Optional, Tuple

__all__ = ["default_ssl_context", "describe_default_trust", "explain_verification_failure"]

_ENV_FILE = "SSL_CERT_FILE"
_ENV_DIR = "SSL_CERT_DIR"

# One context per trust source, made on first use and shared (a context is thread-safe and
# costly to build: certifi's bundle holds some 150 certificates).
_contexts: Dict[Tuple[Optional[str], Optional[str]], ssl.SSLContext] = {}
_contexts_lock = threading.Lock()


def _environment_trust() -> Tuple[Optional[str], Optional[str]]:
    """``(SSL_CERT_FILE, SSL_CERT_DIR)``, each ``None`` when unset or empty."""
    return os.environ.get(_ENV_FILE) or None, os.environ.get(_ENV_DIR) or None


def default_ssl_context() -> ssl.SSLContext:
    """A verifying client context: ``SSL_CERT_FILE``/``SSL_CERT_DIR`` if set, else certifi.

    A variable naming a file or directory that does not exist raises ``FileNotFoundError``
    (which fails the connection) rather than silently trusting something else.
    """
    key = _environment_trust()
    with _contexts_lock:
        context = _contexts.get(key)
        if context is None:
            context = _make_context(*key)
            _contexts[key] = context
    return context


def _make_context(cafile: Optional[str], capath: Optional[str]) -> ssl.SSLContext:
    if cafile is None and capath is None:
        import certifi

        return ssl.create_default_context(cafile=certifi.where())
    for name, path, exists in ((_ENV_FILE, cafile, os.path.isfile), (_ENV_DIR, capath, os.path.isdir)):
        if path is not None and not exists(path):
            raise FileNotFoundError(f"{name}={path!r} names no {'file' if name == _ENV_FILE else 'directory'}")
    return ssl.create_default_context(cafile=cafile, capath=capath)


def describe_default_trust() -> str:
    """Which CAs the default context trusts, for messages: the variables or certifi's path."""
    cafile, capath = _environment_trust()
    if cafile is None and capath is None:
        import certifi

        return f"certifi's CA bundle ({certifi.where()})"
    parts = [f"{name}={value}" for name, value in ((_ENV_FILE, cafile), (_ENV_DIR, capath)) if value]
    return "the CAs of " + " and ".join(parts)


def explain_verification_failure(
    error: ssl.SSLCertVerificationError, host: str, *, user_context: bool
) -> ssl.SSLCertVerificationError:
    """The same error with a message that says which CAs were trusted and what to do.

    The result is still an ``ssl.SSLCertVerificationError`` (so ``except ssl.SSLError`` and
    ``except OSError`` keep working) with the original's ``verify_code`` and
    ``verify_message``; raise it ``from error``.
    """
    reason = error.verify_message or error.reason or str(error)
    if user_context:
        trusted = "the ssl= context you passed"
        advice = "check that it trusts the CA that issued the server's certificate"
    else:
        trusted = describe_default_trust()
        advice = (
            "pass ssl=ssl.create_default_context(cafile=...) for a private CA, "
            "ssl=ssl.create_default_context() for the system's CAs, "
            "or set SSL_CERT_FILE/SSL_CERT_DIR"
        )
    explained = ssl.SSLCertVerificationError(
        error.errno,
        f"certificate verification failed for {host}: {reason}; trusted: {trusted}; {advice}",
    )
    explained.verify_code = error.verify_code
    explained.verify_message = error.verify_message
    explained.reason = error.reason
    explained.library = error.library
    return explained

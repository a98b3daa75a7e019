"""Broker URLs: which ones the collector can use, and their secrets kept out of everything the server emits."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

MASK = "***"

#: Schemes whose kombu transport does what the collector needs: remote-control broadcasts and
#: events (fanout), and a queue depth. Celery supports remote control on Redis and RabbitMQ only.
REDIS_SCHEMES = frozenset({"redis", "rediss", "sentinel"})
SOCKET_SCHEMES = frozenset({"redis+socket"})
AMQP_SCHEMES = frozenset({"amqp", "amqps", "pyamqp"})
SUPPORTED_SCHEMES = REDIS_SCHEMES | SOCKET_SCHEMES | AMQP_SCHEMES

# scheme://user:password@host — also inside error messages and multi-URL strings.
_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^:/@\s;]*):(?P<pw>[^@/\s;]+)@")

# Query parameters that carry a secret: ?password=, ?sentinel_password=, ?token=, ?api_key= ...
_SECRET_KEY = (
    r"[A-Za-z0-9_.\-]*"
    r"(?:pass|pwd|secret|token|credential|api[_\-]?key|access[_\-]?key|private[_\-]?key|auth)"
    r"[A-Za-z0-9_.\-]*"
)
_SECRET_PARAM = re.compile(rf"(?P<key>(?:^|(?<=[?&;])){_SECRET_KEY}=)(?P<value>[^&#\s;'\"]*)", re.IGNORECASE)
_SECRET_PARAM_IN_TEXT = re.compile(rf"(?P<key>[?&]{_SECRET_KEY}=)(?P<value>[^&#\s;'\"]+)", re.IGNORECASE)


def mask_url(url: str) -> str:
    """Return *url* with its password and secret query parameters replaced by ``***`` (user and host are kept)."""
    if not url:
        return url
    # Celery accepts several broker URLs separated by ';' for failover.
    if ";" in url:
        return ";".join(mask_url(part) for part in url.split(";"))
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return mask_text(url)
    if "://" not in url:
        return mask_text(url)
    query = _SECRET_PARAM.sub(lambda m: f"{m['key']}{MASK}" if m["value"] else m["key"], parts.query)
    if parts.password is None:
        netloc = parts.netloc
    else:
        user = parts.username or ""
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{user}:{MASK}@{host}"
        if port is not None:
            netloc += f":{port}"
    # Built by hand: urlunsplit turns redis+socket:///path into redis+socket:/path.
    masked = f"{parts.scheme}://{netloc}{parts.path}"
    if query or "?" in url:
        masked += f"?{query}"
    if parts.fragment:
        masked += f"#{parts.fragment}"
    return masked


def mask_text(text: str) -> str:
    """Mask ``scheme://user:password@`` credentials and secret query parameters appearing in free text."""
    text = _CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    return _SECRET_PARAM_IN_TEXT.sub(lambda m: f"{m['key']}{MASK}", text)


def check_broker_url(url: str) -> None:
    """Raise ValueError (its message free of secrets) unless every ``;``-separated URL is one the collector can use.

    A broker that is merely down is not an error here: that is what the status reports.
    """
    for part in url.split(";"):
        _check_one(part)


def _check_one(url: str) -> None:
    masked = mask_url(url)
    shown = masked if MASK in masked else url
    shown = shown if len(shown) <= 120 else shown[:117] + "..."
    if not url or any(c.isspace() for c in url):
        raise ValueError(f"not a broker URL: {shown!r}")
    scheme, sep, _ = url.partition("://")
    if not sep or not scheme:
        raise ValueError(f"not a broker URL (expected scheme://host...): {shown!r}")
    if scheme.lower() not in SUPPORTED_SCHEMES:
        raise ValueError(
            f"unsupported broker scheme {scheme!r} in {shown!r} (supported: {', '.join(sorted(SUPPORTED_SCHEMES))})"
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"malformed broker URL {shown!r}: {exc}") from None
    kind = scheme.lower()
    if kind in SOCKET_SCHEMES:
        if parts.hostname or not parts.path or parts.path == "/":
            raise ValueError(f"{kind}:// needs the socket's path and no host, e.g. redis+socket:///run/redis.sock")
        return
    if not parts.hostname:
        raise ValueError(f"broker URL {shown!r} has no host (write it out, e.g. {kind}://127.0.0.1)")
    if port == 0:
        raise ValueError(f"broker URL {shown!r}: port 0 is not a broker's port")
    if kind in REDIS_SCHEMES and parts.path.strip("/") and not parts.path.strip("/").isdigit():
        raise ValueError(f"broker URL {shown!r}: the path must be a Redis database number, e.g. /0")

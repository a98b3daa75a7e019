"""Start-up checks that turn a file or port the server cannot use into one line naming the setting.

gRPC reports both a busy port and an unusable certificate as "Failed to bind", and uvicorn exits the
process on a busy port: so the TLS files are checked with :mod:`ssl` before anything binds, and the
cause of a failed bind is found by binding a plain socket the same way.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from .config import SettingsError, option

__all__ = ["ListenError", "ServerTLS", "bind_error", "bind_listener", "check_bindable", "load_server_tls"]


class ListenError(OSError):
    """An address the server cannot listen on; the message is one line naming the setting and the cause."""


@dataclass(frozen=True)
class ServerTLS:
    """PEM bytes of the server's certificate chain and key, and of the CA for client certificates."""

    cert: bytes
    key: bytes
    client_ca: bytes | None = None


def _read(field: str, path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise SettingsError(f"{option(field)}: cannot read {path!r}: {exc.strerror}") from None


def _check_certificates(field: str, path: str, data: bytes) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cadata=data.decode("ascii"))
    except (ssl.SSLError, UnicodeDecodeError, ValueError):
        raise SettingsError(f"{option(field)}: {path!r} holds no PEM certificate") from None


def _refuse_password() -> bytes:
    # Without a callback OpenSSL would prompt on the terminal for an encrypted key.
    raise ValueError("encrypted")


def load_server_tls(cert: str | None, key: str | None, client_ca: str | None = None) -> ServerTLS | None:
    """Read and check the TLS files (None without a certificate); raises :class:`SettingsError`."""
    if not cert or not key:
        return None
    cert_pem = _read("tls_cert", cert)
    key_pem = _read("tls_key", key)
    ca_pem = _read("tls_client_ca", client_ca) if client_ca else None
    _check_certificates("tls_cert", cert, cert_pem)
    if client_ca and ca_pem is not None:
        _check_certificates("tls_client_ca", client_ca, ca_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key, password=_refuse_password)
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc) or "key values mismatch" in str(exc):
            raise SettingsError(
                f"{option('tls_key')}: {key!r} is not the key of {option('tls_cert')} {cert!r}"
            ) from None
        raise SettingsError(f"{option('tls_key')}: {key!r} holds no usable PEM private key") from None
    except (ValueError, OSError):
        raise SettingsError(
            f"{option('tls_key')}: {key!r} is encrypted or unreadable; give an unencrypted PEM key"
        ) from None
    return ServerTLS(cert_pem, key_pem, ca_pem)


def bind_listener(
    field: str, host: str, port: int, *, socket_type: type[socket.socket] = socket.socket
) -> socket.socket:
    """A listening-ready TCP socket bound to *host*:*port*; raises :class:`ListenError` naming *field*.

    ``socket_type`` lets a server bind a socket subclass of its own (the bridge's accept gate).
    """
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ListenError(f"{option(field)}: cannot resolve {host!r}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    try:
        sock = socket_type(family, kind, proto)
    except OSError as exc:
        raise ListenError(f"{option(field)}: cannot listen on {host}:{port}: {exc.strerror}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.set_inheritable(True)
    except OSError as exc:
        sock.close()
        raise ListenError(f"{option(field)}: cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


def check_bindable(field: str, host: str, port: int) -> None:
    """Raise :class:`ListenError` naming *field* if *host*:*port* cannot be bound right now.

    Asked before gRPC binds, because gRPC's own failure is a log line of the C core plus "Failed to bind".
    """
    if not port:
        return
    with bind_listener(field, host, port):
        pass


def bind_error(field: str, host: str, port: int) -> ListenError:
    """A failed gRPC bind as one line: the cause found by binding a plain socket the same way."""
    try:
        check_bindable(field, host, port)
    except ListenError as exc:
        return exc
    return ListenError(f"{option(field)}: cannot listen on {host}:{port}: refused by the gRPC runtime")

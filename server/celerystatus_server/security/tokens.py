"""Bearer tokens, stored only as SHA-256 hashes and checked in constant time.

Sources (both may be used; entries add up):

* a file, one ``<sha256-hex> <role> [name]`` per line, ``#`` starts a comment;
* ``CELERY_STATUS_TOKENS=sha256hex:role[:name],...``.

Tokens are random secrets, not passwords, so a plain SHA-256 is enough to keep
the configuration from being a credential itself; a slow hash would only make
every request slower.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .principal import ROLES

_HEX = re.compile(r"^[0-9a-f]{64}$")
ENV_TOKENS = "CELERY_STATUS_TOKENS"
ENV_TOKENS_FILE = "CELERY_STATUS_TOKENS_FILE"
#: Longest token accepted from a caller; anything longer is rejected unhashed.
MAX_TOKEN_LENGTH = 4096


class TokenError(ValueError):
    """The token configuration cannot be used (reported at startup)."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class TokenEntry:
    digest: bytes
    role: str
    name: str


def _entry(digest_hex: str, role: str, name: str, where: str) -> TokenEntry:
    digest_hex = digest_hex.strip().lower()
    if not _HEX.match(digest_hex):
        raise TokenError(f"{where}: expected a SHA-256 hex digest (64 hex digits), got {digest_hex[:12]!r}...")
    if role not in ROLES:
        raise TokenError(f"{where}: unknown role {role!r} (expected one of {', '.join(ROLES)})")
    return TokenEntry(bytes.fromhex(digest_hex), role, name or f"token-{digest_hex[:8]}")


class TokenStore:
    """The configured tokens; :meth:`verify` maps a presented token to (name, role)."""

    def __init__(self, entries: Iterable[TokenEntry] = ()) -> None:
        self._entries: tuple[TokenEntry, ...] = tuple(entries)
        names = [e.name for e in self._entries]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise TokenError(f"token names must be unique: {', '.join(duplicates)}")

    def __len__(self) -> int:
        return len(self._entries)

    def __bool__(self) -> bool:
        return bool(self._entries)

    def with_token(self, token: str, role: str, name: str) -> TokenStore:
        """A copy that also accepts ``token`` (used for the in-process bridge's own credential)."""
        return TokenStore((*self._entries, _entry(hash_token(token), role, name, name)))

    @classmethod
    def parse_file_text(cls, text: str, source: str = "tokens file") -> list[TokenEntry]:
        entries = []
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) not in (2, 3):
                raise TokenError(f"{source}:{number}: expected '<sha256-hex> <role> [name]'")
            entries.append(_entry(parts[0], parts[1], parts[2] if len(parts) == 3 else "", f"{source}:{number}"))
        return entries

    @classmethod
    def parse_env_text(cls, text: str) -> list[TokenEntry]:
        entries = []
        for index, item in enumerate(part.strip() for part in text.split(",")):
            if not item:
                continue
            parts = item.split(":")
            if len(parts) not in (2, 3):
                raise TokenError(f"{ENV_TOKENS} item {index + 1}: expected 'sha256hex:role[:name]'")
            entries.append(_entry(parts[0], parts[1], parts[2] if len(parts) == 3 else "", f"{ENV_TOKENS}[{index}]"))
        return entries

    @classmethod
    def load(cls, path: str | Path | None = None, env_value: str | None = None) -> TokenStore:
        entries: list[TokenEntry] = []
        if path:
            try:
                text = Path(path).read_text(encoding="utf-8")
            except OSError as exc:
                raise TokenError(f"cannot read the tokens file {str(path)!r}: {exc.strerror}") from None
            entries += cls.parse_file_text(text, str(path))
        if env_value:
            entries += cls.parse_env_text(env_value)
        return cls(entries)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], path: str | None = None) -> TokenStore:
        return cls.load(path or environ.get(ENV_TOKENS_FILE), environ.get(ENV_TOKENS))

    def verify(self, token: str) -> tuple[str, str] | None:
        """(name, role) of the entry whose hash matches ``token``, else None.

        Every entry is compared, with :func:`hmac.compare_digest`, whatever
        matched before: the time taken says nothing about which entry, or how
        much of a hash, matched.
        """
        if not token or len(token) > MAX_TOKEN_LENGTH:
            return None
        presented = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        found: TokenEntry | None = None
        for entry in self._entries:
            if hmac.compare_digest(presented, entry.digest):
                found = entry
        return None if found is None else (found.name, found.role)


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` value; None if absent or another scheme."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    value = value.strip()
    return value or None

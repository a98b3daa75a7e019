"""One place that turns credentials into a principal, for gRPC and HTTP alike."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .principal import ADMIN, ANONYMOUS_NAME, ROLES, VIEWER, Principal, role_at_least
from .ratelimit import Budget, RateLimiter, StreamLimiter
from .redaction import Redactor
from .tokens import TokenError, TokenStore

if TYPE_CHECKING:
    from ..config import Settings


class AuthError(Exception):
    """Authentication failed (``forbidden`` False) or the identity has no role (``forbidden`` True)."""

    def __init__(self, message: str, *, forbidden: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.forbidden = forbidden


def load_cert_roles(path: str | Path) -> dict[str, str]:
    """``CN role`` lines (``#`` comments) from the client-certificate roles file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise TokenError(f"cannot read the client certificate roles file {str(path)!r}: {exc.strerror}") from None
    roles: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        common_name, _, role = line.rpartition(" ")
        common_name, role = common_name.strip(), role.strip()
        if not common_name or role not in ROLES:
            raise TokenError(f"{path}:{number}: expected '<common name> <role>' with role one of {', '.join(ROLES)}")
        roles[common_name] = role
    return roles


@dataclass
class SecurityPolicy:
    """Credentials, budgets and redaction shared by the servers of one process."""

    tokens: TokenStore = field(default_factory=TokenStore)
    #: Client certificate common name -> role; consulted only when the server requires client certificates.
    cert_roles: Mapping[str, str] = field(default_factory=dict)
    #: Client certificates are required (gRPC mTLS); any verified certificate then identifies its caller.
    client_certs: bool = False
    limiter: RateLimiter = field(default_factory=RateLimiter)
    streams: StreamLimiter = field(default_factory=StreamLimiter)
    redactor: Redactor = field(default_factory=Redactor)
    #: Without credentials configured, anonymous callers see arguments (``--show-args``).
    anonymous_sees_args: bool = False
    #: Principals not rate limited: the bridge, which limits its own callers.
    rate_exempt: frozenset[str] = frozenset()
    #: Whether credentials are required; computed from what the operator configured.
    auth_required: bool = False

    @classmethod
    def build(
        cls,
        *,
        tokens: TokenStore | None = None,
        cert_roles: Mapping[str, str] | None = None,
        client_certs: bool = False,
        limiter: RateLimiter | None = None,
        streams: StreamLimiter | None = None,
        redactor: Redactor | None = None,
        anonymous_sees_args: bool = False,
        rate_exempt: Iterable[str] = (),
    ) -> SecurityPolicy:
        tokens = tokens or TokenStore()
        return cls(
            tokens=tokens,
            cert_roles=dict(cert_roles or {}),
            client_certs=client_certs,
            limiter=limiter or RateLimiter(),
            streams=streams or StreamLimiter(),
            redactor=redactor or Redactor(),
            anonymous_sees_args=anonymous_sees_args,
            rate_exempt=frozenset(rate_exempt),
            auth_required=bool(tokens) or client_certs,
        )

    def with_internal_token(self, token: str, name: str) -> SecurityPolicy:
        """Also accept ``token`` as an admin that is not rate limited; ``auth_required`` is unchanged."""
        return SecurityPolicy(
            tokens=self.tokens.with_token(token, ADMIN, name),
            cert_roles=self.cert_roles,
            client_certs=self.client_certs,
            limiter=self.limiter,
            streams=self.streams,
            redactor=self.redactor,
            anonymous_sees_args=self.anonymous_sees_args,
            rate_exempt=self.rate_exempt | {name},
            auth_required=self.auth_required,
        )

    def anonymous(self, peer: str) -> Principal:
        return Principal(ANONYMOUS_NAME, ADMIN if self.anonymous_sees_args else VIEWER, True, peer)

    def authenticate(
        self,
        token: str | None,
        *,
        peer: str,
        cert_common_name: str | None = None,
        malformed: str | None = None,
    ) -> Principal:
        """The caller's principal, or :class:`AuthError`.

        A token, when sent, must be valid even on a server that does not require
        one: a typo should fail loudly, not silently downgrade to anonymous.
        """
        if malformed:
            raise AuthError(malformed)
        if token is not None:
            found = self.tokens.verify(token)
            if found is None:
                raise AuthError("invalid bearer token")
            name, role = found
            return Principal(name, role, False, peer)
        if cert_common_name is not None and self.client_certs:
            cert_role = self.cert_roles.get(cert_common_name) if self.cert_roles else VIEWER
            if cert_role is None:
                raise AuthError(f"client certificate {cert_common_name!r} has no role on this server", forbidden=True)
            return Principal(f"cert:{cert_common_name}", cert_role, False, peer)
        if self.auth_required:
            raise AuthError("authentication required: send 'authorization: Bearer <token>'")
        return self.anonymous(peer)

    def authorize(self, principal: Principal, needed: str = VIEWER) -> None:
        if not role_at_least(principal.role, needed):
            raise AuthError(f"role {principal.role!r} may not do this (needs {needed})", forbidden=True)

    def rate_limited(self, principal: Principal) -> bool:
        return principal.anonymous or principal.name not in self.rate_exempt


def policy_from_settings(settings: Settings) -> SecurityPolicy:
    """Load tokens and certificate roles named by ``settings``; raises :class:`TokenError` on bad files."""
    tokens = TokenStore.load(settings.tokens_file, settings.tokens)
    cert_roles = load_cert_roles(settings.client_cert_roles) if settings.client_cert_roles else {}
    try:
        redactor = Redactor(settings.allow_arg_patterns, settings.allow_argsrepr)
        limiter = RateLimiter(
            Budget(settings.rate_limit, settings.rate_burst),
            Budget(settings.fresh_rate_limit, settings.fresh_burst),
        )
    except ValueError as exc:
        raise TokenError(str(exc)) from None
    return SecurityPolicy.build(
        tokens=tokens,
        cert_roles=cert_roles,
        client_certs=bool(settings.tls_client_ca),
        limiter=limiter,
        streams=StreamLimiter(settings.max_streams_per_principal, settings.max_streams),
        redactor=redactor,
        anonymous_sees_args=settings.show_args,
    )

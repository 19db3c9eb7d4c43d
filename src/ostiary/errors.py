"""The OAuth error tree: one class per registered error code.

OAuthError                                                   (GuardError: the guard's name for it)
 +-- InvalidRequest, InvalidClient, InvalidGrant, UnauthorizedClient,
 |   UnsupportedGrantType, InvalidScope, InvalidTarget            RFC 6749 §5.2, RFC 8707
 +-- AccessDenied, UnsupportedResponseType, ServerError,
 |   TemporarilyUnavailable                                        RFC 6749 §4.1.2.1
 +-- UnsupportedTokenType                                          RFC 7009 §2.2.1
 +-- InvalidToken (+ MissingToken), InsufficientScope              RFC 6750 §3.1
 +-- TemporarilyUnavailable +-- IssuerUnavailable                  the guard cannot reach the issuer
 +-- InvalidRedirectUri, InvalidClientMetadata                     RFC 7591 §3.2.2
 +-- LoginRequired, ConsentRequired, InteractionRequired, ...      OIDC Core §3.1.2.6

PageError      shown to the user on an error page, never sent to a client (no trusted redirect URI)
RedirectError  an OAuthError for the client's validated redirect URI (RFC 6749 §4.1.2.1, RFC 9207)

The web layer alone turns these into HTTP (one renderer: web/errors.py, by the kind each route
declares); protocol code, the guard and the routes only raise them. Nothing here imports past the
standard library, so the guard (`ostiary.resource`) uses this tree with a plain `pip install ostiary`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


class OAuthError(Exception):
    """An error with a registered OAuth code, a status and a human-readable description."""

    error: ClassVar[str] = "invalid_request"
    status_code: ClassVar[int] = 400

    def __init__(self, description: str | None = None) -> None:
        super().__init__(description or self.error)
        self.description = description

    def as_dict(self) -> dict[str, str]:
        body = {"error": self.error}
        if self.description:
            body["error_description"] = self.description
        return body


class InvalidRequest(OAuthError):
    error = "invalid_request"


class InvalidClient(OAuthError):
    error = "invalid_client"
    status_code = 401


class ClientAuthThrottled(InvalidClient):
    """invalid_client again from the same client_id and address too soon: 429 with Retry-After."""

    status_code = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed client authentications; retry after {retry_after} s")
        self.retry_after = retry_after


class RegistrationThrottled(OAuthError):
    """Too many anonymous registrations from one address: 429 with Retry-After."""

    error = "temporarily_unavailable"
    status_code = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many registrations from this address; retry after {retry_after} s")
        self.retry_after = retry_after


class InvalidGrant(OAuthError):
    error = "invalid_grant"


class UnauthorizedClient(OAuthError):
    error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"


class InvalidScope(OAuthError):
    error = "invalid_scope"


class InvalidTarget(OAuthError):
    error = "invalid_target"


class AccessDenied(OAuthError):
    error = "access_denied"
    status_code = 403


class UnsupportedResponseType(OAuthError):
    error = "unsupported_response_type"


class UnsupportedTokenType(OAuthError):
    error = "unsupported_token_type"


class ServerError(OAuthError):
    error = "server_error"
    status_code = 500


class TemporarilyUnavailable(OAuthError):
    error = "temporarily_unavailable"
    status_code = 503


class IssuerUnavailable(TemporarilyUnavailable):
    """The guard could not fetch keys or an introspection answer (down, slow or nonsense)."""


class InvalidToken(OAuthError):
    error = "invalid_token"
    status_code = 401


class MissingToken(InvalidToken):
    """No access token at all: RFC 6750 §3.1 says the challenge then carries no error code."""


class InsufficientScope(OAuthError):
    """``scope``: the scope the request needs (RFC 6750 §3: the challenge may name it)."""

    error = "insufficient_scope"
    status_code = 403

    def __init__(self, description: str | None = None, scope: tuple[str, ...] = ()) -> None:
        super().__init__(description)
        self.scope = scope


class InvalidRedirectUri(OAuthError):
    error = "invalid_redirect_uri"


class InvalidClientMetadata(OAuthError):
    error = "invalid_client_metadata"


class LoginRequired(OAuthError):
    error = "login_required"


class ConsentRequired(OAuthError):
    error = "consent_required"


class InteractionRequired(OAuthError):
    error = "interaction_required"


class UnmetAuthenticationRequirements(OAuthError):
    """OpenID Connect Core Error Code unmet_authentication_requirements 1.0: the level asked for (an
    essential `acr`, OIDC Core §5.5.1.1) cannot be met for this user."""

    error = "unmet_authentication_requirements"


class AccountSelectionRequired(OAuthError):
    error = "account_selection_required"


class InvalidRequestObject(OAuthError):
    error = "invalid_request_object"


class RequestNotSupported(OAuthError):
    error = "request_not_supported"


class RequestUriNotSupported(OAuthError):
    error = "request_uri_not_supported"


class RegistrationNotSupported(OAuthError):
    error = "registration_not_supported"


class NotFound(OAuthError):
    """Not an OAuth code: a missing resource on a management endpoint."""

    error = "not_found"
    status_code = 404


GuardError = OAuthError  # what the resource-server guard raises (ostiary.resource): the same tree


class PageError(Exception):
    """Shown to the user on an error page with ``status``; the client is not told (no trusted redirect URI)."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


@dataclass(frozen=True, slots=True)
class RedirectTarget:
    redirect_uri: str
    response_mode: str
    state: str | None


class RedirectError(Exception):
    """An OAuthError to send back to the client's (validated) redirect URI; ``client_id``: whose it is
    (a route that raises it leaves the renderer to decide whether that client may be sent errors)."""

    def __init__(self, error: OAuthError, target: RedirectTarget, client_id: str | None = None) -> None:
        super().__init__(error.description or error.error)
        self.error = error
        self.target = target
        self.client_id = client_id

"""Rendering pages: Jinja2 (autoescaped), security headers, cookies, scope descriptions."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from ..server.consent import claim_token, consented_claims
from ..server.redirect_uris import form_action_source
from ..smart.scopes import describe_scope

__all__ = ["INTERACTION_COOKIE", "SESSION_COOKIE", "clear_cookie", "cookie_name", "describe_claims",
           "describe_consent", "describe_scopes", "get_cookie", "page", "set_cookie"]

SESSION_COOKIE = "ostiary_session"
INTERACTION_COOKIE = "ostiary_interaction"

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("ostiary.web", "templates"),
    autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
    trim_blocks=True, lstrip_blocks=True,
)

SCOPE_TEXT: dict[str, tuple[str, str]] = {
    "openid": ("Confirm who you are", "Your account identifier"),
    "profile": ("See your name and basic profile", "Name, username, picture, locale"),
    "email": ("See your email address", ""),
    "address": ("See your postal address", ""),
    "phone": ("See your phone number", ""),
    "offline_access": ("Keep access when you are not using it", "The app stays connected until you remove it"),
}


CLAIM_TEXT: dict[str, str] = {
    "name": "Your full name", "given_name": "Your first name", "family_name": "Your last name",
    "middle_name": "Your middle name", "nickname": "Your nickname", "preferred_username": "Your username",
    "profile": "Your profile page", "picture": "Your picture", "website": "Your website",
    "gender": "Your gender", "birthdate": "Your date of birth", "zoneinfo": "Your time zone",
    "locale": "Your language", "updated_at": "When your profile last changed",
    "email": "Your email address", "email_verified": "Whether your email address is verified",
    "address": "Your postal address", "phone_number": "Your phone number",
    "phone_number_verified": "Whether your phone number is verified", "fhirUser": "Your health record identity",
}


def describe_claims(claims: Iterable[str]) -> list[dict[str, str]]:
    """Claims asked for one by one, in words, with their names (the consent page's checkboxes)."""
    return [{"claim": c, "text": CLAIM_TEXT.get(c, c)} for c in claims]


def describe_consent(tokens: Iterable[str]) -> list[dict[str, str]]:
    """A stored consent (scopes and quoted claim names) in the words the consent page used."""
    tokens = sorted(tokens)
    claims = sorted(consented_claims(tokens))
    scopes = [t for t in tokens if t not in {claim_token(c) for c in claims}]
    return describe_scopes(scopes) + [{"scope": d["claim"], "text": d["text"], "detail": ""}
                                      for d in describe_claims(claims)]


def describe_scopes(scopes: Iterable[str], whose: str = "your") -> list[dict[str, str]]:
    """Scopes in words people understand; unknown scopes are shown as they are."""
    out = []
    for scope in scopes:
        text, detail = SCOPE_TEXT.get(scope) or describe_scope(scope, whose=whose) or (f"Use “{scope}”", "")
        out.append({"scope": scope, "text": text, "detail": detail})
    return out


def page(request: Request, template: str, context: Mapping[str, Any], *, status: int = 200,
         form_target: str | None = None, frame_origins: Sequence[str] = ()) -> Response:
    # Passkeys need the browser's WebAuthn API: static/passkeys.js and its options requests, same origin only.
    passkeys_on = getattr(getattr(request.app.state, "provider", None), "passkeys", None) is not None
    return _html(request.app.state.settings, template, context, status=status, form_target=form_target,
                 frame_origins=frame_origins, passkeys_on=passkeys_on)


def _html(settings: Any, template: str, context: Mapping[str, Any], *, status: int = 200,
          form_target: str | None = None, frame_origins: Sequence[str] = (), passkeys_on: bool = False) -> Response:
    """A page with its Content-Security-Policy (its nonce); the other security headers, the same on every
    answer, are added by web/security_headers.py."""
    nonce = secrets.token_urlsafe(16)
    html = _env.get_template(template).render(
        **context, brand=settings.branding, nonce=nonce, static_url="/static", passkeys_on=passkeys_on,
        password_reset=settings.smtp.host is not None,  # the login page's "Forgot your password?" link
        upstream_providers=settings.federation,  # the login page's "Sign in with ..." buttons
    )
    csp = [
        "default-src 'none'", f"style-src 'self' 'nonce-{nonce}'", "img-src 'self' https: data:",
        "frame-ancestors 'none'", "base-uri 'none'",
    ]
    if form_target is not None:  # the form_post response page submits itself to the client, and only there
        csp += [f"script-src 'nonce-{nonce}'", f"form-action {form_action_source(form_target)}"]
    elif passkeys_on:
        csp += ["script-src 'self'", "connect-src 'self'"]
    if frame_origins:  # the signed-out page frames the clients' front-channel logout URIs, and only those
        csp.append("frame-src " + " ".join(dict.fromkeys(frame_origins)))
    return HTMLResponse(html, status_code=status, headers={"Content-Security-Policy": "; ".join(csp)})


def _secure(request: Request) -> bool:
    """Under TLS: the issuer is https, also behind a TLS-terminating proxy that speaks http to us."""
    return bool(request.app.state.settings.issuer.startswith("https://"))


def cookie_name(request: Request, name: str) -> str:
    """Under TLS a `__Host-` cookie (RFC 6265bis §4.1.3.2): Secure, Path=/, no Domain, so no sibling host can set it."""
    return "__Host-" + name if _secure(request) else name


def get_cookie(request: Request, name: str) -> str | None:
    return request.cookies.get(cookie_name(request, name))


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    """Every cookie has Path=/: browsers drop a `__Host-` cookie with any other path."""
    response.set_cookie(cookie_name(request, name), value, max_age=max_age, path="/", httponly=True,
                        secure=_secure(request), samesite="lax")


def clear_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(cookie_name(request, name), path="/", httponly=True, secure=_secure(request),
                           samesite="lax")


def render_error_page(settings: Any, error: str, description: str, status: int) -> Response:
    """The error page (web/errors.py renders every error of a page route with it)."""
    return _html(settings, "error.html", {"error": error, "description": description}, status=status)

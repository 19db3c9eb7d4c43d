"""Framework-free request objects and the strict form parsing every OAuth endpoint shares."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from ..errors import InvalidRequest

__all__ = ["MAX_FORM_BYTES", "EndpointRequest", "parse_form"]

MAX_FORM_BYTES = 64 * 1024
MAX_FIELDS = 64
FORM_TYPE = "application/x-www-form-urlencoded"


@dataclass(frozen=True, slots=True)
class EndpointRequest:
    """A parsed request to a form-based endpoint (token, introspection, revocation)."""

    endpoint_url: str
    form: Mapping[str, str]
    repeated: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    authorization: str | None = None
    client_address: str = ""  # the client's IP address (behind trusted proxies: the one they name)

    def get(self, name: str) -> str | None:
        return self.form.get(name)


def _pairs(body: bytes, content_type: str | None) -> list[tuple[str, str]]:
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    if mime != FORM_TYPE:
        raise InvalidRequest(f"the request body must be {FORM_TYPE}")
    if len(body) > MAX_FORM_BYTES:
        raise InvalidRequest("the request body is too large")
    try:
        text = body.decode("ascii")
        pairs = parse_qsl(text, keep_blank_values=False, errors="strict", max_num_fields=MAX_FIELDS)
    except UnicodeDecodeError:
        raise InvalidRequest("the request body is not valid URL-encoded UTF-8") from None
    except ValueError:
        raise InvalidRequest("too many parameters") from None
    for name, value in pairs:
        if "\x00" in name or "\x00" in value:
            raise InvalidRequest("NUL characters are not allowed")
    return pairs


def parse_form(
    body: bytes, content_type: str | None, *, repeatable: frozenset[str] = frozenset()
) -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    """Parse an application/x-www-form-urlencoded body (RFC 6749 §3.2, §4.4.2).

    Empty values count as absent (RFC 6749 §3.1); a parameter given twice is invalid_request
    (RFC 6749 §3.1) unless it is in ``repeatable`` (RFC 8707 `resource`). Raises InvalidRequest.
    """
    form: dict[str, str] = {}
    repeated: dict[str, list[str]] = {}
    for name, value in _pairs(body, content_type):
        if name in repeatable:
            repeated.setdefault(name, []).append(value)
            form.setdefault(name, value)
        elif name in form:
            raise InvalidRequest(f"parameter {name!r} is repeated")
        else:
            form[name] = value
    return form, {k: tuple(v) for k, v in repeated.items()}


def parse_form_noting_repeats(body: bytes, content_type: str | None) -> tuple[dict[str, str], set[str]]:
    """Like parse_form, but returns the names given more than once instead of raising, for the
    authorization endpoint, which must know whether the client and redirect URI can be trusted
    before it decides how to report the error (RFC 6749 §4.1.2.1)."""
    form: dict[str, str] = {}
    repeated: set[str] = set()
    for name, value in _pairs(body, content_type):
        if name in form:
            repeated.add(name)
        form[name] = value
    return form, repeated

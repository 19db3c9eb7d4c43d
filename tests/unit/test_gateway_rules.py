"""The gateway's path rules (item 2), configuration checks (item 10) and in-memory rate limit (item 5)."""

from __future__ import annotations

import pytest

from ostiary.gateway.config import GatewayConfigError, RateLimit, load_config, parse_config
from ostiary.gateway.paths import PathRefused, check_path, match_route, upstream_path
from ostiary.gateway.ratelimit import MemoryLimiter

BASE = {"issuer": "http://127.0.0.1:8000", "routes": [
    {"path": "/notes", "upstream": "http://127.0.0.1:8001", "audience": "https://notes.example.com",
     "scopes": {"GET": "notes:read", "POST": "notes:write"}},
    {"path": "/notes/admin", "upstream": "http://127.0.0.1:8002/base", "audience": "https://notes.example.com",
     "scopes": {"*": ["notes:admin", "notes:read"]}, "strip_prefix": True},
]}


@pytest.mark.parametrize("raw", [b"/a/../b", b"/a/./b", b"/a/%2e%2E", b"/a/%2F", b"/a/%5C", b"/a\\b", b"/a//b",
                                 b"/a/%00", b"/a/%zz", b"/a/%ff", b"/a/%0d%0a", b"a/b", b"//a"])
def test_item2_ambiguous_paths_are_refused(raw: bytes) -> None:
    with pytest.raises(PathRefused):
        check_path(raw)


def test_item2_prefix_matches_on_segment_boundaries_and_the_longest_wins() -> None:
    routes = parse_config(BASE).routes
    names = {p: (r.path if (r := match_route(routes, check_path(p))) else None)
             for p in (b"/notes", b"/notes/", b"/notes/1", b"/notes-admin", b"/notes/admin/x", b"/notes/administer",
                       b"/note")}
    assert names == {b"/notes": "/notes", b"/notes/": "/notes", b"/notes/1": "/notes", b"/notes-admin": None,
                     b"/notes/admin/x": "/notes/admin", b"/notes/administer": "/notes", b"/note": None}


def test_item2_the_raw_checked_path_is_forwarded_and_strip_prefix_keeps_the_rest() -> None:
    routes = parse_config(BASE).routes
    assert upstream_path(routes[0], check_path(b"/notes/a%20b"), "") == b"/notes/a%20b"
    assert upstream_path(routes[1], check_path(b"/notes/admin/x%2Ay"), "/base") == b"/base/x%2Ay"
    assert upstream_path(routes[1], check_path(b"/notes/admin"), "/base") == b"/base/"


def test_item2_head_follows_get_and_star_allows_any_method() -> None:
    notes, admin = parse_config(BASE).routes
    assert notes.scopes_for("HEAD") == ("notes:read",) and notes.scopes_for("DELETE") is None
    assert admin.scopes_for("DELETE") == ("notes:admin", "notes:read")
    assert admin.scopes_for("OPTIONS") is None  # "*" never covers OPTIONS: it is answered only as a preflight


@pytest.mark.parametrize(("change", "message"), [
    ({"issuer": "ftp://x"}, "<config>: issuer: must be an absolute http or https URL"),
    ({"routes": []}, "<config>: routes: must list at least one route"),
    ({"extra": 1}, "<config>: extra: unknown setting"),
    ({"rate_limit_backend": "memcached://x"}, "rate_limit_backend: must be \"memory\" or a redis:// URL"),
])
def test_item10_top_level_errors_name_the_key_and_reason(change: dict[str, object], message: str) -> None:
    with pytest.raises(GatewayConfigError) as err:
        parse_config({**BASE, **change})
    assert message in str(err.value)


@pytest.mark.parametrize(("route", "message"), [
    ({"path": "/_ostiary/x"}, "routes[0].path: /_ostiary is reserved"),
    ({"path": "/a/%2e%2e"}, "routes[0].path: encoded dots"),
    ({"scopes": {"GET": 3}}, "routes[0].scopes.GET: must be a scope string"),
    ({"scopes": {"FETCH": "a"}}, "routes[0].scopes.FETCH: unknown method"),
    ({"rate_limit": {"requests": 0, "per_seconds": 1}}, "routes[0].rate_limit.requests: must be at least 1"),
    ({"rate_limit": {"requests": 1, "per_seconds": True}}, "routes[0].rate_limit.per_seconds: must be a number"),
    ({"cors": {"origins": ["https://a.example/path"]}}, "routes[0].cors.origins"),
    ({"upstream": "http://u/?q"}, "routes[0].upstream"),
    ({"timeout": "1"}, "routes[0].timeout: must be of type int or float"),
])
def test_item10_route_errors_name_the_key_path(route: dict[str, object], message: str) -> None:
    with pytest.raises(GatewayConfigError) as err:
        parse_config({**BASE, "routes": [{**BASE["routes"][0], **route}]})  # type: ignore[dict-item]
    assert message in str(err.value)


def test_item10_a_prefix_routed_twice_is_refused() -> None:
    with pytest.raises(GatewayConfigError, match=r"routes\[1\]\.path: /notes is already routed"):
        parse_config({**BASE, "routes": [BASE["routes"][0], {**BASE["routes"][0], "path": "/notes/"}]})


def test_item10_syntax_errors_name_the_file_and_line(tmp_path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text('issuer = "http://x"\n\n[[routes]\n')
    with pytest.raises(GatewayConfigError) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}: line 3, column")


async def test_item5_memory_window_counts_exactly_and_reopens() -> None:
    now = [100.0]
    limiter = MemoryLimiter(clock=lambda: now[0])
    limit = RateLimit(3, 60.0)
    verdicts = [await limiter.hit("k", limit) for _ in range(4)]
    assert [v.allowed for v in verdicts] == [True, True, True, False]
    assert verdicts[3].fields("r", 60.0)["retry-after"] == "60"
    assert (await limiter.hit("other", limit)).allowed  # keys do not share a budget
    now[0] += 60.0
    assert (await limiter.hit("k", limit)).remaining == 2


@pytest.mark.parametrize(("internal", "message"), [
    ({"issuer": "http://127.0.0.1:8000", "key_file": "k.pem"}, "internal_jwt.issuer: must differ"),
    ({"issuer": "https://gw.internal", "key_file": "k.pem", "lifetime": 61}, "internal_jwt.lifetime: must be between"),
    (None, "routes[0].internal_jwt: needs an [internal_jwt] table"),
])
def test_item4_internal_jwt_is_short_lived_and_never_the_authorization_servers(
        internal: dict[str, object] | None, message: str) -> None:
    data = {**BASE, "routes": [{**BASE["routes"][0], "internal_jwt": True}]}
    if internal is not None:
        data["internal_jwt"] = internal
    with pytest.raises(GatewayConfigError) as err:
        parse_config(data)
    assert message in str(err.value)


async def test_item7_forward_auth_answers_only_trusted_proxies_and_own_paths_are_never_proxied() -> None:
    import httpx

    from ostiary.gateway.app import Gateway

    gateway = Gateway(parse_config(BASE))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway, client=("192.0.2.7", 4000)),
                                     base_url="http://gw") as outsider:
            r = await outsider.get("/_ostiary/auth", headers={"X-Original-Method": "GET", "X-Original-URI": "/notes"})
            assert r.status_code == 403 and r.json()["error"] == "access_denied"  # not a proxy we trust
            assert (await outsider.get("/_ostiary/anything")).status_code == 404
            assert (await outsider.get("/_ostiary/jwks.json")).status_code == 404  # no internal JWT configured
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway, client=("127.0.0.1", 4000)),
                                     base_url="http://gw") as proxy:
            r = await proxy.get("/_ostiary/auth/nginx", headers={"X-Original-Method": "GET",
                                                                 "X-Original-URI": "/notes/%2e%2e/x"})
            assert r.status_code == 403 and r.headers["x-ostiary-status"] == "400"  # nginx: the real status aside
            r = await proxy.get("/_ostiary/auth", headers={"X-Forwarded-Method": "DELETE",
                                                           "X-Forwarded-Uri": "/notes/1?x=1"})
            assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD, POST"
            missing = await proxy.get("/_ostiary/auth")
            assert missing.status_code == 400
    finally:
        await gateway.aclose()


async def test_item2_options_is_a_cors_preflight_or_405_even_on_a_star_route() -> None:
    import httpx

    from ostiary.gateway.app import Gateway

    data = {**BASE, "routes": [{**BASE["routes"][1], "cors": {"origins": ["https://app.example"]}}]}
    gateway = Gateway(parse_config(data))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://gw") as client:
            preflight = await client.options("/notes/admin/x", headers={
                "Origin": "https://app.example", "Access-Control-Request-Method": "DELETE",
                "Access-Control-Request-Headers": "authorization"})
            assert preflight.status_code == 204
            assert preflight.headers["access-control-allow-origin"] == "https://app.example"
            other_origin = await client.options("/notes/admin/x", headers={
                "Origin": "https://evil.example", "Access-Control-Request-Method": "DELETE"})
            assert other_origin.status_code == 405 and "access-control-allow-origin" not in other_origin.headers
            assert (await client.options("/notes/admin/x")).status_code == 405
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway, client=("127.0.0.1", 1)),
                                     base_url="http://gw") as proxy:
            r = await proxy.get("/_ostiary/auth", headers={"X-Original-Method": "OPTIONS",
                                                           "X-Original-URI": "/notes/admin/x"})
            assert r.status_code == 405  # forward-auth never lets a proxy pass OPTIONS on
    finally:
        await gateway.aclose()

"""nginx (auth_request) and Caddy (forward_auth) in front of the recording upstream, asking a real gateway.

The configurations are the ones docs/gateway.md shows, with ports and directories filled in; the tests start
each proxy on a free loopback port with its own temporary directories, as the current user.
"""

from __future__ import annotations

import getpass
import os
import shutil
from pathlib import Path

from tests.e2e._gateway import Process, _spawn, _wait
from tests.e2e._server import free_port

NGINX = "/usr/sbin/nginx"
CADDY = shutil.which("caddy")

NGINX_SITE = """
    # forward-auth: every request is checked by the Ostiary gateway first
    location = /_ostiary_auth {
        internal;
        proxy_pass http://ostiary/_ostiary/auth/nginx;
        proxy_pass_request_body off;
        proxy_set_header Content-Length "";
        proxy_set_header X-Original-Method $request_method;
        proxy_set_header X-Original-URI $request_uri;
        proxy_set_header X-Real-IP $remote_addr;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
    }

    # nginx passes only 2xx, 401 and 403 from auth_request: the gateway answers every other refusal
    # as 403 with X-Ostiary-Status, and this restores the real status (429 with Retry-After)
    location @ostiary_refused {
        default_type application/json;
        add_header WWW-Authenticate $ostiary_www_authenticate always;
        add_header Retry-After $ostiary_retry_after always;
        add_header RateLimit-Policy $ostiary_ratelimit_policy always;
        add_header RateLimit $ostiary_ratelimit always;
        if ($ostiary_status = 429) { return 429 '{"error":"rate_limited"}\\n'; }
        if ($ostiary_status = 400) { return 400 '{"error":"invalid_request"}\\n'; }
        if ($ostiary_status = 404) { return 404 '{"error":"not_found"}\\n'; }
        if ($ostiary_status = 405) { return 405 '{"error":"method_not_allowed"}\\n'; }
        if ($ostiary_status = 413) { return 413 '{"error":"invalid_request"}\\n'; }
        if ($ostiary_status = 503) { return 503 '{"error":"temporarily_unavailable"}\\n'; }
        return 403 '{"error":"forbidden"}\\n';
    }

    location / {
        auth_request /_ostiary_auth;
        auth_request_set $ostiary_client_id $upstream_http_x_ostiary_client_id;
        auth_request_set $ostiary_subject $upstream_http_x_ostiary_subject;
        auth_request_set $ostiary_scope $upstream_http_x_ostiary_scope;
        auth_request_set $ostiary_status $upstream_http_x_ostiary_status;
        auth_request_set $ostiary_retry_after $upstream_http_retry_after;
        auth_request_set $ostiary_www_authenticate $upstream_http_www_authenticate;
        auth_request_set $ostiary_ratelimit_policy $upstream_http_ratelimit_policy;
        auth_request_set $ostiary_ratelimit $upstream_http_ratelimit;
        error_page 403 = @ostiary_refused;

        # the identity is the gateway's: these replace any caller-sent field of the same name
        # (nginx drops fields with underscores, such as X_Ostiary_Subject, by default)
        proxy_set_header X-Ostiary-Client-Id $ostiary_client_id;
        proxy_set_header X-Ostiary-Subject $ostiary_subject;
        proxy_set_header X-Ostiary-Scope $ostiary_scope;
        proxy_set_header Authorization "";
        proxy_set_header Cookie "";
        proxy_set_header X-Forwarded-For $remote_addr;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header X-Forwarded-Host $host;
        proxy_set_header Forwarded "";
        proxy_set_header X-Real-IP "";
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_pass http://api;
    }
"""


def nginx_config(workdir: Path, port: int, gateway: int, upstream: int) -> str:
    run_as = f"user {getpass.getuser()};\n" if os.geteuid() == 0 else ""
    temp = "\n".join(f"    {kind}_temp_path {workdir}/{kind};" for kind in
                     ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return f"""{run_as}worker_processes 1;
daemon off;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
{temp}
    upstream api {{ server 127.0.0.1:{upstream}; keepalive 32; }}
    upstream ostiary {{ server 127.0.0.1:{gateway}; keepalive 32; }}
    server {{
        listen 127.0.0.1:{port};
{NGINX_SITE}
    }}
}}
"""


def start_nginx(workdir: Path, gateway: Process, upstream: Process) -> Process:
    port = free_port()
    conf = workdir / "nginx.conf"
    conf.write_text(nginx_config(workdir, port, gateway.port, upstream.port))
    cmd = [NGINX, "-e", str(workdir / "error.log"), "-p", str(workdir), "-c", str(conf)]
    return _wait(_spawn(cmd, workdir, "nginx", port), "/_ostiary/health")


CADDY_SITE = """
    # forward-auth: Caddy copies any non-2xx answer of the gateway to the client as it is (429 included)
    forward_auth 127.0.0.1:{gateway} {{
        uri /_ostiary/auth
        copy_headers X-Ostiary-Client-Id X-Ostiary-Subject X-Ostiary-Scope
    }}
    reverse_proxy 127.0.0.1:{upstream} {{
        header_up -Authorization
        header_up -Cookie
        header_up -X_Ostiary_Client_Id
        header_up -X_Ostiary_Subject
        header_up -X_Ostiary_Scope
    }}
"""


def caddy_config(port: int, gateway: int, upstream: int) -> str:
    site = CADDY_SITE.format(gateway=gateway, upstream=upstream)
    return f"{{\n    admin off\n    auto_https off\n}}\n\nhttp://127.0.0.1:{port} {{\n{site}}}\n"


def start_caddy(workdir: Path, gateway: Process, upstream: Process) -> Process:
    assert CADDY is not None
    port = free_port()
    conf = workdir / "Caddyfile"
    conf.write_text(caddy_config(port, gateway.port, upstream.port))
    env = {"HOME": str(workdir), "XDG_DATA_HOME": str(workdir), "XDG_CONFIG_HOME": str(workdir)}
    cmd = [CADDY, "run", "--adapter", "caddyfile", "--config", str(conf)]
    return _wait(_spawn(cmd, workdir, "caddy", port, env), "/_ostiary/health")


__all__ = ["CADDY", "CADDY_SITE", "NGINX", "NGINX_SITE", "start_caddy", "start_nginx"]

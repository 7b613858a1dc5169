"""The TLS endpoint: Debian's nginx on the SSL port (443), proxying to the API service, under runit.

The master runs as root to bind 443 and read the key; its workers run as www-data. Everything it
writes (pid, spooled bodies) stays under the frontend's directory, so several frontends share a host.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from chef_backend.supervision.runit import ServiceSpec

from .api_service import local_address
from .layout import NGINX_WORKER_USER, Layout
from .server_rb import ServerConfig

NAME = "nginx"
NGINX = "/usr/sbin/nginx"

TEMPLATE = """\
# Rendered by chef-server-ctl reconfigure: edits are overwritten. Settings go in chef-server.rb.
daemon off;
user {worker_user};
worker_processes {workers};
pid {pid};
error_log stderr;
events {{
    worker_connections 1024;
}}
http {{
    access_log {access_log};
    client_body_temp_path {temp}/client_body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    server_tokens off;
    # Cookbook files go through the API; the API answers 413 itself above its own limit.
    client_max_body_size 250m;
    upstream chef_server_api {{
        server {api};
        keepalive 32;
    }}
    server {{
        listen {listen} ssl;
        server_name {fqdn};
        ssl_certificate {certificate};
        ssl_certificate_key {certificate_key};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:SSL:4m;
        location / {{
            proxy_pass http://chef_server_api;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-Proto https;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_read_timeout 300s;
            proxy_redirect off;
        }}
        # The API down or restarting (runit brings it back) is an outage, not a gateway fault: Chef's 503, which
        # clients retry, rather than nginx's 502 page.
        error_page 502 504 =503 @api_unavailable;
        location @api_unavailable {{
            default_type application/json;
            return 503 '{{"error":["The Chef server API is unavailable; retry shortly."]}}';
        }}
    }}
    server {{
        listen {plain_listen};
        server_name {fqdn};
        return 301 https://$host{ssl_suffix}$request_uri;
    }}
}}
"""


def listen_directive(address: str, port: int) -> str:
    """nginx's `listen` argument: the port alone for a wildcard, IPv6 addresses in brackets."""
    if address in ("0.0.0.0", "*", ""):
        return str(port)
    if ":" in address:
        return f"[{address}]:{port}"
    return f"{address}:{port}"


def render(config: ServerConfig, layout: Layout, certificate: Path, certificate_key: Path, workers: int = 2) -> str:
    """nginx.conf: TLS on the SSL port, everything proxied to the API service."""
    api_host = local_address(config.haproxy.listen)
    return TEMPLATE.format(
        worker_user=NGINX_WORKER_USER, workers=workers, pid=layout.nginx_dir / "nginx.pid",
        access_log=layout.log_dir(NAME) / "access.log", temp=layout.nginx_temp,
        api=listen_directive(api_host, config.api_port),
        listen=listen_directive(config.haproxy.listen, config.ssl_port),
        plain_listen=listen_directive(config.haproxy.listen, config.non_ssl_port),
        ssl_suffix="" if config.ssl_port == 443 else f":{config.ssl_port}",
        fqdn=config.fqdn, certificate=certificate, certificate_key=certificate_key,
    )


def service_spec(layout: Layout, log_user: str) -> ServiceSpec:
    """nginx in the foreground (`daemon off`); `sv hup nginx` reloads its configuration."""
    conf = shlex.quote(str(layout.nginx_conf))
    run = f"#!/bin/sh\nexec 2>&1\nexec {NGINX} -e stderr -c {conf}\n"
    return ServiceSpec(name=NAME, run_script=run, log_dir=layout.log_dir(NAME), log_user=log_user,
                       file_maxbytes=104857600, num_to_keep=10)

"""chef-server-ctl reconfigure's pure pieces: chef-server.rb, the file layout, and what it renders for the API
service and nginx (table tests; nginx's own `-t` checks the rendered configuration when nginx is installed)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509

from chef_backend.config import rbparser
from chef_backend.config.settings import load_text
from chef_backend.ctl.gen_server_config import fill
from chef_backend.frontend.cli import FrontendError
from chef_backend.frontend.settings import FrontendConfigError, FrontendSettings
from chef_server.ctl import api_service, certificate, knife_config, load_balancer, nginx, server_rb
from chef_server.ctl.layout import Layout

# What gen-server-config prints for a backend with the defaults.
SERVER_RB = fill(load_text(""), "fe1.example.com", '"127.0.0.11", "127.0.0.12"', "s3cret")


def values(text: str = SERVER_RB) -> dict:
    return {a.key: a.value for a in rbparser.parse(text)}


def config(text: str = SERVER_RB, listen: str = "127.0.0.21") -> server_rb.ServerConfig:
    base = FrontendSettings(dir=Path("/srv/fe"), listen=listen)
    return server_rb.from_server_rb_values(values(text), "chef-server.rb", base)


LAYOUT = Layout(dir=Path("/srv/fe"), etc=Path("/srv/etc/opscode"))


def test_gen_server_config_output_is_read() -> None:
    c = config()
    assert c.fqdn == "fe1.example.com"
    assert c.haproxy.members == ("127.0.0.11", "127.0.0.12")
    assert (c.db_superuser, c.db_superuser_password) == ("chef_pgsql", "s3cret")
    assert (c.ssl_certificate, c.ssl_certificate_key, c.ssl_port, c.non_ssl_port) == (None, None, 443, 80)
    assert (c.api_user, c.api_port, c.api_workers, c.db_name) == ("opscode", 8000, 2, "opscode_chef")


def test_erchef_settings_are_honoured() -> None:
    c = config(SERVER_RB + "opscode_erchef['port'] = 18000\nopscode_erchef['workers'] = 4\n"
                           "opscode_erchef['user'] = 'root'\nopscode_erchef['db_name'] = 'other_chef'\n")
    assert (c.api_user, c.api_port, c.api_workers, c.db_name) == ("root", 18000, 4, "other_chef")
    s = api_service.settings(c, LAYOUT)
    assert (s.listen_port, s.workers) == (18000, 4) and "dbname=other_chef" in s.db_conninfo.split()
    assert "server 127.0.0.21:18000;" in nginx.render(c, LAYOUT, Path("/c.crt"), Path("/c.key"))


def test_nginx_settings_are_honoured() -> None:
    c = config(SERVER_RB + "nginx['ssl_certificate'] = '/etc/ssl/fe.crt'\n"
                           "nginx['ssl_certificate_key'] = '/etc/ssl/fe.key'\nnginx['ssl_port'] = 8443\n")
    assert (c.ssl_certificate, c.ssl_certificate_key, c.ssl_port) == (Path("/etc/ssl/fe.crt"),
                                                                     Path("/etc/ssl/fe.key"), 8443)


@pytest.mark.parametrize(("extra", "message"), [
    ("fqdn 'two words'\n", "fqdn must be the frontend's host name"),
    ("postgresql['db_superuser'] = ''\n", "postgresql['db_superuser'] must name"),
    ("postgresql['db_superuser_password'] = nil\n", "postgresql['db_superuser_password'] must be set"),
    ("nginx['ssl_certificate'] = '/a.crt'\n", "set both nginx['ssl_certificate'] and nginx['ssl_certificate_key']"),
    ("nginx['ssl_certificate'] = 'a.crt'\nnginx['ssl_certificate_key'] = 'a.key'\n", "must be an absolute path"),
    ("nginx['ssl_port'] = 70000\n", "nginx['ssl_port'] must be a port number"),
    ("nginx['non_ssl_port'] = 'x'\n", "nginx['non_ssl_port'] must be a port number"),
    ("opscode_erchef['port'] = 0\n", "opscode_erchef['port'] must be a port number"),
    ("opscode_erchef['workers'] = 0\n", "opscode_erchef['workers'] must be 1..64"),
    ("opscode_erchef['user'] = 'Bad User'\n", "opscode_erchef['user'] must be a lower-case name"),
    ("opscode_erchef['db_name'] = 'x; DROP'\n", "opscode_erchef['db_name'] must be a lower-case name"),
    ("use_chef_backend false\n", "does not set `use_chef_backend true`"),
    ("haproxy['local_postgresql_port'] = 'x'\n", "haproxy['local_postgresql_port'] must be a port number"),
])
def test_bad_chef_server_rb_is_one_clear_error(extra: str, message: str) -> None:
    with pytest.raises(FrontendConfigError) as info:
        config(SERVER_RB + extra)
    assert message in str(info.value) and str(info.value).startswith("chef-server.rb")


def test_listen_option_overrides_and_is_checked(tmp_path: Path) -> None:
    rb = tmp_path / "chef-server.rb"
    rb.write_text(SERVER_RB)
    assert server_rb.load(rb, tmp_path, "127.0.0.29").haproxy.listen == "127.0.0.29"
    assert server_rb.load(rb, tmp_path).haproxy.listen == "0.0.0.0"
    with pytest.raises(FrontendConfigError, match="--listen: haproxy\\['listen'\\] must be an address"):
        server_rb.load(rb, tmp_path, "a b")


@pytest.mark.parametrize(("path", "want"), [
    (LAYOUT.api_config, "/srv/fe/chef-server-api/config.json"),
    (LAYOUT.nginx_conf, "/srv/fe/nginx/nginx.conf"),
    (LAYOUT.pivotal_key, "/srv/etc/opscode/pivotal.pem"),
    (LAYOUT.log_dir("nginx"), "/srv/fe/log/nginx"),
    (LAYOUT.runit.service_dir, "/srv/fe/service"),
    (LAYOUT.runit.sv_dir, "/srv/fe/sv"),
    (LAYOUT.generated_certificate("fe1.example.com")[0], "/srv/fe/nginx/ca/fe1.example.com.crt"),
    (LAYOUT.generated_certificate("fe1.example.com")[1], "/srv/fe/nginx/ca/fe1.example.com.key"),
])
def test_layout(path: Path, want: str) -> None:
    assert str(path) == want


@pytest.mark.parametrize(("listen", "host"), [("127.0.0.21", "127.0.0.21"), ("0.0.0.0", "127.0.0.1"),
                                              ("::", "127.0.0.1"), ("10.0.0.5", "10.0.0.5")])
def test_api_settings_reach_postgresql_through_the_local_haproxy(listen: str, host: str) -> None:
    s = api_service.settings(config(listen=listen), LAYOUT)
    assert (s.listen_host, s.listen_port, s.workers) == (host, 8000, 2)
    assert s.pivotal_key_path == "/srv/etc/opscode/pivotal.pem"
    for part in (f"host={host}", "port=5432", "dbname=opscode_chef", "user=chef_pgsql", "password=s3cret"):
        assert part in s.db_conninfo.split()


def test_api_run_script_drops_root_and_does_not_rewrite_the_key() -> None:
    spec = api_service.service_spec(LAYOUT, "/opt/chef-backend/embedded/bin/python", "opscode")
    lines = spec.run_script.splitlines()
    assert lines[0] == "#!/bin/sh" and "export CHEF_SERVER_PIVOTAL_KEY_PATH=" in lines
    assert lines[-1] == ("exec /usr/bin/chpst -u opscode:opscode /opt/chef-backend/embedded/bin/python "
                         "-m chef_server.server --config /srv/fe/chef-server-api/config.json")
    assert (spec.name, spec.log_dir, spec.log_user) == ("chef-server-api", Path("/srv/fe/log/chef-server-api"),
                                                        "opscode")


@pytest.mark.parametrize(("address", "port", "want"), [
    ("127.0.0.21", 443, "127.0.0.21:443"), ("0.0.0.0", 443, "443"), ("::1", 8443, "[::1]:8443"), ("*", 443, "443"),
])
def test_nginx_listen_directive(address: str, port: int, want: str) -> None:
    assert nginx.listen_directive(address, port) == want


@pytest.mark.parametrize(("listen", "lines"), [
    ("127.0.0.21", ["listen 127.0.0.21:443 ssl;", "server 127.0.0.21:8000;", "listen 127.0.0.21:80;"]),
    ("0.0.0.0", ["listen 443 ssl;", "server 127.0.0.1:8000;", "listen 80;"]),
])
def test_nginx_conf_proxies_tls_to_the_api(listen: str, lines: list[str]) -> None:
    text = nginx.render(config(listen=listen), LAYOUT, Path("/c.crt"), Path("/c.key"))
    stripped = [line.strip() for line in text.splitlines()]
    for line in [*lines, "ssl_certificate /c.crt;", "ssl_certificate_key /c.key;", "server_name fe1.example.com;",
                 "proxy_set_header X-Forwarded-Proto https;", "pid /srv/fe/nginx/nginx.pid;", "daemon off;",
                 "client_body_temp_path /srv/fe/nginx/tmp/client_body;", "return 301 https://$host$request_uri;"]:
        assert line in stripped, line


def test_self_signed_certificate_names_the_fqdn_and_address() -> None:
    cert_pem, key_pem = certificate.self_signed("fe1.example.com", "127.0.0.21")
    cert = x509.load_pem_x509_certificate(cert_pem)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["fe1.example.com"]
    assert [str(a) for a in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.21"]
    assert b"PRIVATE KEY" in key_pem
    assert certificate.self_signed("fe1.example.com", "0.0.0.0")[0]  # a wildcard is still an address


@pytest.mark.skipif(not shutil.which("nginx") or os.geteuid() != 0, reason="needs Debian's nginx, as root")
def test_nginx_accepts_the_rendered_configuration(tmp_path: Path) -> None:
    layout = Layout(dir=tmp_path / "fe", etc=tmp_path / "etc")
    cert, key = layout.generated_certificate("fe1.example.com")
    certificate.ensure(cert, key, "fe1.example.com", "127.0.0.21")
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (layout.nginx_temp / sub).mkdir(parents=True)
    layout.log_dir("nginx").mkdir(parents=True)
    layout.nginx_conf.write_text(nginx.render(config(), layout, cert, key))
    result = subprocess.run(["nginx", "-t", "-e", "stderr", "-c", str(layout.nginx_conf)], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    assert not certificate.ensure(cert, key, "fe1.example.com", "127.0.0.21")  # kept on the next reconfigure


def test_conninfo_quotes_the_password() -> None:
    from psycopg.conninfo import conninfo_to_dict

    c = config(SERVER_RB.replace("= 's3cret'", "= \"a b'c\\\\d\""))
    assert conninfo_to_dict(api_service.db_conninfo(c))["password"] == "a b'c\\d"


def test_nginx_answers_503_while_the_api_is_down() -> None:
    text = nginx.render(config(), LAYOUT, Path("/c.crt"), Path("/c.key"))
    stripped = [line.strip() for line in text.splitlines()]
    assert "error_page 502 504 =503 @api_unavailable;" in stripped
    assert any(line.startswith("return 503 '{\"error\":[") for line in stripped)


def test_a_shared_certificate_names_every_address() -> None:
    cert_pem, _ = certificate.self_signed("chef.example.com", "127.0.0.30", "127.0.0.21", None, "not-an-ip")
    names = x509.load_pem_x509_certificate(cert_pem).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert [str(a) for a in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.30", "127.0.0.21"]


LB = load_balancer.LoadBalancer(dir=Path("/srv/lb"), address="127.0.0.30", port=443,
                                frontends=(("frontend-1", "127.0.0.21"), ("frontend-2", "127.0.0.22")))


def test_load_balancer_passes_tls_through_to_the_frontends_that_answer_status() -> None:
    stripped = [line.strip() for line in load_balancer.render(LB).splitlines()]
    for line in ["mode tcp", "bind 127.0.0.30:443", "balance roundrobin", "option httpchk",
                 "http-check send meth GET uri /_status ver HTTP/1.1 hdr Host 127.0.0.30",
                 "http-check expect status 200", "default-server check check-ssl verify none inter 1s fall 2 rise 2",
                 "timeout check 5s",
                 "server frontend-1 127.0.0.21:443", "server frontend-2 127.0.0.22:443",
                 "stats socket /srv/lb/haproxy.sock mode 600", "user haproxy"]:
        assert line in stripped, line
    assert LB.url == "https://127.0.0.30"
    with pytest.raises(FrontendError):
        load_balancer.render(load_balancer.LoadBalancer(dir=Path("/srv/lb"), address="::1", port=8443, frontends=()))


def test_load_balancer_counts_only_checked_frontends_as_up() -> None:
    rows = [{"pxname": "chef_frontends", "svname": "frontend-1", "status": "UP", "check_status": "L7OK"},
            {"pxname": "chef_frontends", "svname": "frontend-2", "status": "UP", "check_status": "INI"},
            {"pxname": "chef_frontends", "svname": "BACKEND", "status": "UP", "check_status": ""},
            {"pxname": "chef_server", "svname": "FRONTEND", "status": "OPEN", "check_status": ""}]
    assert load_balancer.up_frontends(rows) == ["frontend-1"]


@pytest.mark.skipif(not shutil.which("haproxy"), reason="needs Debian's haproxy")
def test_haproxy_accepts_the_load_balancer_configuration(tmp_path: Path) -> None:
    lb = load_balancer.LoadBalancer(dir=tmp_path, address="127.0.0.30", port=443, frontends=LB.frontends)
    (tmp_path / "haproxy.cfg").write_text(load_balancer.render(lb))
    result = subprocess.run(["haproxy", "-c", "-f", str(tmp_path / "haproxy.cfg")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_knife_and_client_configuration() -> None:
    kit = knife_config.KnifeKit(directory=Path("/srv/chef"), server_url="https://127.0.0.30", org="demo",
                                user="admin")
    knife = knife_config.render_knife_rb(kit).splitlines()
    assert "node_name              'admin'" in knife
    assert "client_key             '/srv/chef/admin.pem'" in knife
    assert "chef_server_url        'https://127.0.0.30/organizations/demo'" in knife
    assert "validation_client_name 'demo-validator'" in knife
    assert "validation_key         '/srv/chef/demo-validator.pem'" in knife
    assert "trusted_certs_dir      '/srv/chef/trusted_certs'" in knife
    client = knife_config.render_client_rb(kit)
    assert "node_name" not in client and "validation_key         '/srv/chef/demo-validator.pem'" in client
    assert knife_config._ruby_string("it's") == "'it\\'s'"


def test_the_api_searches_through_the_local_haproxy_where_it_listens() -> None:
    assert api_service.settings(config(), LAYOUT).search_url == "http://127.0.0.21:9200"
    c = config(SERVER_RB + "haproxy['local_elasticsearch_port'] = 19200\n", listen="0.0.0.0")
    assert api_service.settings(c, LAYOUT).search_url == "http://127.0.0.1:19200"


def test_pivotal_rb_points_knife_at_this_frontend_as_the_superuser() -> None:
    from chef_server.ctl.knife_config import render_pivotal_rb

    text = render_pivotal_rb("https://127.0.0.21", Path("/etc/opscode/pivotal.pem"))
    assert "node_name        'pivotal'" in text and "chef_server_url  'https://127.0.0.21'" in text
    assert "client_key       '/etc/opscode/pivotal.pem'" in text and ":verify_none" in text

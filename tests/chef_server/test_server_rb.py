"""chef-server.rb → the API and TLS settings of a frontend, and the TLS endpoint's HAProxy config (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from chef_server.ctl import https
from chef_server.ctl.server_rb import ServerConfigError, parse

GENERATED = """\
fqdn "chef.example.com"
use_chef_backend true
chef_backend_members ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
haproxy['remote_postgresql_port'] = 5432
postgresql['external'] = true
postgresql['vip'] = '127.0.0.1'
postgresql['db_superuser'] = 'chef_pgsql'
postgresql['db_superuser_password'] = 'pw'
bookshelf['storage_type'] = :sql
"""


def test_what_gen_server_config_writes():
    s = parse(GENERATED, default_fqdn="ignored")
    assert (s.fqdn, s.db_host, s.db_port, s.db_user, s.db_password, s.db_name) == (
        "chef.example.com", "127.0.0.1", 5432, "chef_pgsql", "pw", "opscode_chef")
    assert (s.api_listen, s.api_port, s.api_workers, s.api_user) == ("127.0.0.1", 8000, 2, "opscode")
    assert (s.tls_listen, s.ssl_port, s.non_ssl_port, s.ssl_certificate) == ("0.0.0.0", 443, 80, None)
    assert "password='pw'" in s.conninfo() and "dbname='opscode_chef'" in s.conninfo()


def test_a_loopback_frontend_keeps_to_its_address():
    s = parse(GENERATED + "haproxy['listen'] = '127.0.0.22'\n", default_fqdn="x")
    assert (s.api_listen, s.tls_listen) == ("127.0.0.22", "127.0.0.22")


def test_conninfo_quotes_values():
    s = parse(GENERATED.replace("= 'pw'", "= \"a b'c\""), default_fqdn="x")
    assert "password='a b\\'c'" in s.conninfo()


@pytest.mark.parametrize("extra,message", [
    ("nginx['ssl_port'] = 70000\n", "port"),
    ("nginx['ssl_certificate'] = '/x.crt'\n", "both"),
    ("opscode_erchef['workers'] = 0\n", "workers"),
    ("opscode_erchef['port'] = 'http'\n", "port"),
])
def test_bad_settings_are_named(extra, message):
    with pytest.raises(ServerConfigError, match=message):
        parse(GENERATED + extra, default_fqdn="x")


def test_missing_password():
    with pytest.raises(ServerConfigError, match="db_superuser_password"):
        parse(GENERATED.replace("postgresql['db_superuser_password'] = 'pw'\n", ""), default_fqdn="x")


def test_tls_endpoint_config():
    s = parse(GENERATED + "haproxy['listen'] = '127.0.0.21'\nnginx['ssl_port'] = 8443\n", default_fqdn="x")
    text = https.render(s, Path("/var/opt/opscode/https/server.pem"))
    assert "bind 127.0.0.21:8443 ssl crt /var/opt/opscode/https/server.pem" in text
    assert "bind 127.0.0.21:80\n" in text and "redirect scheme https" in text
    assert "server api 127.0.0.21:8000 check" in text
    assert "X-Forwarded-Proto https" in text


def test_self_signed_certificate_names_the_host():
    cert, key = https.self_signed("chef.example.com", "127.0.0.21")
    parsed = x509.load_pem_x509_certificate(cert)
    names = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["chef.example.com"]
    assert [str(a) for a in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.21"]
    assert key.startswith(b"-----BEGIN RSA PRIVATE KEY-----")

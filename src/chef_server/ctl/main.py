"""chef-server-ctl: user, org, membership and key commands with Chef's names, flags and outputs.

Like Chef's, it signs its requests as the superuser (pivotal) with the key reconfigure wrote
(/etc/opscode/pivotal.pem by default). `reconfigure` and the service verbs (`status`, `start`, `stop`,
`restart`, `tail`) work on this host's services: reconfigure.py and services.py.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg

from chef_backend.frontend.cli import FrontendError
from chef_backend.frontend.settings import FrontendConfigError

from .. import config
from . import backup, reconfigure, server_admins, server_rb, services
from .client import ApiError, ChefClient
from .layout import DEFAULT_DIR, SERVICES, Layout
from .reindex import NoSuchOrg
from .reindex import reindex as reindex_orgs


def _summary(data: dict) -> str:
    """knife's aligned "key: value" listing."""
    if not data:
        return ""
    width = max(len(k) for k in data) + 1
    lines = []
    for key in sorted(data):
        value = data[key]
        if isinstance(value, list):
            value = ", ".join(map(str, value))
        lines.append(f"{key + ':':<{width}} {value if value is not None else ''}")
    return "\n".join(lines)


def _write_key(path: str | None, pem: str) -> None:
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(pem)
    else:
        print(pem, end="" if pem.endswith("\n") else "\n")


def _confirm(question: str, yes: bool) -> bool:
    if yes:
        return True
    answer = input(f"{question} (Y/N) ")
    return answer.strip().lower() in ("y", "yes")


def _add_to_group(api: ChefClient, org: str, group: str, user: str) -> None:
    current = api.get(f"/organizations/{org}/groups/{group}")
    users = list(current.get("users", []))
    if user not in users:
        users.insert(0, user)
    api.put(f"/organizations/{org}/groups/{group}", {"groupname": group, "actors": {
        "users": users, "clients": current.get("clients", []), "groups": current.get("groups", [])}})


def user_create(api: ChefClient, a: argparse.Namespace) -> int:
    fields = list(a.fields)
    password = getpass.getpass("Please enter the user's password: ") if a.prompt_for_password else \
        (fields.pop() if fields else None)
    if password is None or len(fields) not in (4, 5):
        raise SystemExit("usage: chef-server-ctl user-create USER_NAME FIRST_NAME [MIDDLE_NAME] LAST_NAME EMAIL "
                         "PASSWORD")
    user_name, email = fields[0], fields[-1]
    first, middle, last = (fields[1], None, fields[2]) if len(fields) == 4 else fields[1:4]
    a.user_name = user_name
    body = {"username": user_name, "first_name": first, "last_name": last, "email": email,
            "display_name": f"{first} {last}", "password": password, "create_key": True}
    if middle:
        body["middle_name"] = middle
    result = api.post("/users", body)
    _write_key(a.filename, result["chef_key"]["private_key"])
    if a.orgname:
        api.post(f"/organizations/{a.orgname}/users", {"username": a.user_name})
        for group in ("admins", "billing-admins"):
            _add_to_group(api, a.orgname, group, a.user_name)
    return 0


def user_list(api: ChefClient, a: argparse.Namespace) -> int:
    if a.all_info:
        for name, info in api.get("/users?verbose=true").items():
            print(f"{name}:\n" + "\n".join(f"  {k}: {v}" for k, v in sorted(info.items())))
    else:
        print("\n".join(sorted(api.get("/users"))))
    return 0


def user_show(api: ChefClient, a: argparse.Namespace) -> int:
    user = api.get(f"/users/{a.user_name}")
    if a.with_orgs:
        user["organizations"] = [o["organization"]["name"] for o in api.get(f"/users/{a.user_name}/organizations")]
    print(_summary(user))
    return 0


def user_delete(api: ChefClient, a: argparse.Namespace) -> int:
    if not _confirm(f"Do you want to delete the user {a.user_name}?", a.yes):
        return 1
    if a.remove_from_admin_groups:
        for entry in api.get(f"/users/{a.user_name}/organizations"):
            org = entry["organization"]["name"]
            group = api.get(f"/organizations/{org}/groups/admins")
            if a.user_name in group.get("users", []):
                api.put(f"/organizations/{org}/groups/admins", {"groupname": "admins", "actors": {
                    "users": [u for u in group["users"] if u != a.user_name], "clients": group.get("clients", []),
                    "groups": group.get("groups", [])}})
    api.delete(f"/users/{a.user_name}")
    return 0


def _put_user(api: ChefClient, name: str, changes: dict) -> None:
    user = api.get(f"/users/{name}")
    user.pop("public_key", None)
    api.put(f"/users/{name}", {**user, **changes})


def password(api: ChefClient, a: argparse.Namespace) -> int:
    secret = a.password if a.password is not None else getpass.getpass(f"Enter the new password for {a.user_name}: ")
    _put_user(api, a.user_name, {"password": secret})
    print("Password updated.")
    return 0


def user_edit(api: ChefClient, a: argparse.Namespace) -> int:
    """Edit the user's JSON in $EDITOR (vi), then save it."""
    user = api.get(f"/users/{a.user_name}")
    user.pop("public_key", None)
    with tempfile.NamedTemporaryFile("w+", suffix=".json") as fh:
        json.dump(user, fh, indent=2, sort_keys=True)
        fh.flush()
        subprocess.run([os.environ.get("EDITOR", "vi"), fh.name], check=True)
        fh.seek(0)
        edited = json.load(fh)
    if edited != user:
        api.put(f"/users/{a.user_name}", edited)
        print(f"Saved {a.user_name}.")
    return 0


def org_create(api: ChefClient, a: argparse.Namespace) -> int:
    result = api.post("/organizations", {"name": a.org_name, "full_name": a.org_full_name})
    if a.association_user:
        api.post(f"/organizations/{a.org_name}/users", {"username": a.association_user})
        for group in ("admins", "billing-admins"):
            _add_to_group(api, a.org_name, group, a.association_user)
    _write_key(a.filename, result["private_key"])
    return 0


def org_list(api: ChefClient, a: argparse.Namespace) -> int:
    orgs = api.get("/organizations")
    for name in sorted(orgs):
        print(f"{name}: {orgs[name]}" if a.with_uri else name)
    return 0


def org_show(api: ChefClient, a: argparse.Namespace) -> int:
    print(_summary(api.get(f"/organizations/{a.org_name}")))
    return 0


def org_delete(api: ChefClient, a: argparse.Namespace) -> int:
    if not _confirm(f"Do you want to delete the organization {a.org_name}?", a.yes):
        return 1
    print(_summary(api.delete(f"/organizations/{a.org_name}")))
    return 0


def org_user_add(api: ChefClient, a: argparse.Namespace) -> int:
    try:
        api.post(f"/organizations/{a.org_name}/users", {"username": a.user_name})
    except ApiError as exc:
        if exc.status != 409 or not a.admin:
            raise
    if a.admin:
        _add_to_group(api, a.org_name, "admins", a.user_name)
        print(f"User {a.user_name} is added to admins and billing-admins group")
        _add_to_group(api, a.org_name, "billing-admins", a.user_name)
    return 0


def org_user_remove(api: ChefClient, a: argparse.Namespace) -> int:
    if a.force:
        group = api.get(f"/organizations/{a.org_name}/groups/admins")
        if a.user_name in group.get("users", []):
            api.put(f"/organizations/{a.org_name}/groups/admins", {"groupname": "admins", "actors": {
                "users": [u for u in group["users"] if u != a.user_name], "clients": group.get("clients", []),
                "groups": group.get("groups", [])}})
    api.delete(f"/organizations/{a.org_name}/users/{a.user_name}")
    return 0


def _key_body(a: argparse.Namespace) -> dict:
    body: dict = {"name": a.key_name or "default", "expiration_date": a.expiration_date}
    if a.public_key_path:
        with open(a.public_key_path) as fh:
            body["public_key"] = fh.read()
    else:
        body["create_key"] = True
    return body


def _add_key(api: ChefClient, path: str, a: argparse.Namespace) -> int:
    body = _key_body(a)
    result = api.post(path, body)
    if "private_key" in result:
        print(result["private_key"], end="")
    else:
        print(f"New key '{body['name']}' added.")
    return 0


def _list_keys(api: ChefClient, path: str, a: argparse.Namespace) -> int:
    for entry in api.get(path):
        if a.verbose:
            key = api.get(f"{path}/{entry['name']}")
            print(f"\nname: {key['name']}\nexpired: {str(entry['expired']).lower()}\n"
                  f"expiration_date: {key['expiration_date']}\npublic_key:\n{key['public_key']}")
        else:
            print(f"\nname: {entry['name']}\nexpired: {str(entry['expired']).lower()}")
    return 0


def _delete_key(api: ChefClient, path: str, name: str) -> int:
    api.delete(f"{path}/{name}")
    print(f"Key '{name}' deleted.")
    return 0


def reindex(_api, args) -> int:
    """Rebuild search documents from PostgreSQL (ctl/reindex.py)."""
    try:
        reindex_orgs(args.settings.db_conninfo, None if args.all else args.org, wait=not args.no_wait)
    except NoSuchOrg as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    return 0


def _key_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-p", "--public-key-path", help="use this public key instead of generating one")
    p.add_argument("-e", "--expiration-date", default="infinity", help="YYYY-MM-DDTHH:MM:SSZ or infinity")
    p.add_argument("-k", "--key-name", help="the key's name (default: default)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chef-server-ctl", description=__doc__.splitlines()[0])
    parser.add_argument("--server-url", help="API base URL (default: this frontend's API service)")
    parser.add_argument("--key", help="the superuser's private key (default: the configured pivotal key)")
    parser.add_argument("--user", help="sign as this user (default: the configured superuser)")
    parser.add_argument("--dir", default=str(DEFAULT_DIR),
                        help=f"the frontend's directory, whose settings the API commands use (default {DEFAULT_DIR})")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def local(name: str, func, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--dir", default=argparse.SUPPRESS, help=f"the frontend's directory (default {DEFAULT_DIR})")
        p.set_defaults(local=func)
        return p

    p = local("reconfigure", reconfigure.reconfigure,
              "render and start HAProxy, the API service and the TLS endpoint from chef-server.rb")
    p.add_argument("--config", default=str(server_rb.DEFAULT_CONFIG),
                   help=f"chef-server.rb from chef-backend-ctl gen-server-config (default {server_rb.DEFAULT_CONFIG}); "
                        "the superuser's key is written beside it")
    p.add_argument("--listen", metavar="ADDR",
                   help="address every service binds (default haproxy['listen'], 0.0.0.0; the API then on 127.0.0.1)")
    p.add_argument("--workers", type=int, help="API worker processes (default opscode_erchef['workers'], 2)")
    p.add_argument("--tries", type=int, default=10, help="checks, 2 s apart, for exactly one UP backend")
    for name, func, text in (("status", services.status, "show the services' state and the leader HAProxy routes to"),
                             ("start", services.start, "start the services (or one)"),
                             ("stop", services.stop, "stop the services (or one)"),
                             ("restart", services.restart, "restart the services (or one)"),
                             ("tail", services.tail, "follow the services' logs (or one's)")):
        local(name, func, text).add_argument("service", nargs="?", choices=SERVICES, metavar="SERVICE",
                                             help=f"one of {', '.join(SERVICES)}")

    p = sub.add_parser("user-create", help="create a user (prints or writes its private key)")
    p.add_argument("fields", nargs="+", metavar="USER_NAME FIRST_NAME [MIDDLE_NAME] LAST_NAME EMAIL PASSWORD")
    p.add_argument("-f", "--filename", help="write the private key to FILE instead of printing it")
    p.add_argument("-o", "--orgname", help="associate the user with ORG as an admin")
    p.add_argument("-p", "--prompt-for-password", action="store_true")
    p.set_defaults(run=user_create)

    p = sub.add_parser("user-list", help="list users")
    p.add_argument("-a", "--all-info", action="store_true")
    p.set_defaults(run=user_list)

    p = sub.add_parser("user-show", help="show a user")
    p.add_argument("user_name")
    p.add_argument("-l", "--with-orgs", action="store_true")
    p.set_defaults(run=user_show)

    p = sub.add_parser("user-delete", help="delete a user")
    p.add_argument("user_name")
    p.add_argument("-R", "--remove-from-admin-groups", action="store_true")
    p.add_argument("-y", "--yes", action="store_true")
    p.set_defaults(run=user_delete)

    p = sub.add_parser("password", help="set a user's password")
    p.add_argument("user_name")
    p.add_argument("password", nargs="?", help="the new password (prompted for when omitted)")
    p.set_defaults(run=password)

    p = sub.add_parser("user-edit", help="edit a user's JSON in $EDITOR")
    p.add_argument("user_name")
    p.set_defaults(run=user_edit)

    p = sub.add_parser("org-create", help="create an organization (prints or writes its validator key)")
    p.add_argument("org_name")
    p.add_argument("org_full_name")
    p.add_argument("-a", "--association-user", help="make this user an admin of the new org")
    p.add_argument("-f", "--filename", help="write the validator key to FILE instead of printing it")
    p.set_defaults(run=org_create)

    p = sub.add_parser("org-list", help="list organizations")
    p.add_argument("-w", "--with-uri", action="store_true")
    p.add_argument("-a", "--all-orgs", action="store_true")
    p.set_defaults(run=org_list)

    p = sub.add_parser("org-show", help="show an organization")
    p.add_argument("org_name")
    p.set_defaults(run=org_show)

    p = sub.add_parser("org-delete", help="delete an organization")
    p.add_argument("org_name")
    p.add_argument("-y", "--yes", action="store_true")
    p.set_defaults(run=org_delete)

    p = sub.add_parser("org-user-add", help="add a user to an organization")
    p.add_argument("org_name")
    p.add_argument("user_name")
    p.add_argument("--admin", action="store_true", help="also add the user to the admins group")
    p.set_defaults(run=org_user_add)

    p = sub.add_parser("org-user-remove", help="remove a user from an organization")
    p.add_argument("org_name")
    p.add_argument("user_name")
    p.add_argument("--force", action="store_true", help="remove the user from the admins group first")
    p.set_defaults(run=org_user_remove)

    p = sub.add_parser("add-client-key", help="add a key to a client")
    p.add_argument("org_name")
    p.add_argument("client_name")
    _key_options(p)
    p.set_defaults(run=lambda api, a: _add_key(api, f"/organizations/{a.org_name}/clients/{a.client_name}/keys", a))

    p = sub.add_parser("add-user-key", help="add a key to a user")
    p.add_argument("user_name")
    _key_options(p)
    p.set_defaults(run=lambda api, a: _add_key(api, f"/users/{a.user_name}/keys", a))

    p = sub.add_parser("list-client-keys", help="list a client's keys")
    p.add_argument("org_name")
    p.add_argument("client_name")
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(run=lambda api, a: _list_keys(api, f"/organizations/{a.org_name}/clients/{a.client_name}/keys",
                                                 a))

    p = sub.add_parser("list-user-keys", help="list a user's keys")
    p.add_argument("user_name")
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(run=lambda api, a: _list_keys(api, f"/users/{a.user_name}/keys", a))

    p = sub.add_parser("delete-client-key", help="delete a client's key")
    p.add_argument("org_name")
    p.add_argument("client_name")
    p.add_argument("key_name")
    p.set_defaults(run=lambda api, a: _delete_key(
        api, f"/organizations/{a.org_name}/clients/{a.client_name}/keys", a.key_name))

    p = sub.add_parser("delete-user-key", help="delete a user's key")
    p.add_argument("user_name")
    p.add_argument("key_name")
    p.set_defaults(run=lambda api, a: _delete_key(api, f"/users/{a.user_name}/keys", a.key_name))
    p = sub.add_parser("reindex", help="rebuild search documents from the database (the API keeps serving)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("org", nargs="?", help="the organization")
    which.add_argument("-a", "--all", action="store_true", help="every organization")
    p.add_argument("--no-wait", action="store_true", help="queue the work and return")
    p.set_defaults(run=reindex)

    p = sub.add_parser("backup", help="dump every organization's objects, cookbook files, users and keys (the API "
                                      "keeps serving)")
    p.add_argument("--file", metavar="PATH", help=f"where (default {backup.DEFAULT_DIR}/chef-server-backup-TIME.dump)")
    p.set_defaults(db=backup.run_backup)
    p = sub.add_parser("restore", help="restore a backup into an empty cluster, then rebuild search")
    p.add_argument("path", metavar="PATH")
    p.add_argument("--yes", action="store_true", help="do not ask (required when stdin is not a terminal)")
    p.add_argument("--force", action="store_true",
                   help="replace a database that holds organizations or users (everything in it is dropped)")
    p.add_argument("--no-wait", action="store_true", help="queue the reindex and return")
    p.set_defaults(db=backup.run_restore)

    p = sub.add_parser("grant-server-admin-permissions",
                       help="let a user list, read, create, update and delete users (the server-admins group)")
    p.add_argument("user_name")
    p.set_defaults(db=server_admins.run_grant)
    p = sub.add_parser("remove-server-admin-permissions", help="take a user out of the server-admins group")
    p.add_argument("user_name")
    p.set_defaults(db=server_admins.run_remove)
    sub.add_parser("list-server-admins", help="list the server-admins group's users").set_defaults(
        db=server_admins.run_list)
    return parser


def run_local(args: argparse.Namespace) -> int:
    """reconfigure and the service verbs: root, and one-line errors."""
    if os.geteuid() != 0:
        print(f"ERROR: chef-server-ctl {args.command} must run as root", file=sys.stderr)
        return 1
    try:
        return int(args.local(args))
    except (FrontendError, FrontendConfigError) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1


def load_settings(directory: str) -> config.Settings:
    """The API service's settings of the frontend in `directory` ($CHEF_SERVER_CONFIG and variables first)."""
    reconfigured = Layout(Path(directory), Path("/etc/opscode")).api_config
    return config.load(None if os.environ.get("CHEF_SERVER_CONFIG") or not reconfigured.exists()
                       else str(reconfigured))


def run_db(args: argparse.Namespace) -> int:
    """backup, restore and the server-admins commands: straight to the database, one-line errors."""
    try:
        return int(args.db(args, load_settings(args.dir)))
    except (backup.BackupError, server_admins.ServerAdminError) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError, psycopg.Error) as exc:
        print(f"ERROR: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "local", None):
        return run_local(args)
    if getattr(args, "db", None):
        return run_db(args)
    settings = load_settings(args.dir)
    host = "127.0.0.1" if settings.listen_host in ("0.0.0.0", "") else settings.listen_host
    server_url = args.server_url or os.environ.get("CHEF_SERVER_URL") or f"http://{host}:{settings.listen_port}"
    key_path = args.key or settings.pivotal_key_path
    try:
        with open(key_path) as fh:
            key = fh.read()
    except OSError as exc:
        print(f"chef-server-ctl: cannot read the superuser key {key_path}: {exc.strerror}", file=sys.stderr)
        return 1
    api = ChefClient(server_url, args.user or settings.superuser_name, key)
    args.settings = settings  # commands that read the database directly (reindex) use this frontend's
    try:
        return args.run(api, args)
    except ApiError as exc:
        print(f"ERROR: {exc.message} (HTTP {exc.status})", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

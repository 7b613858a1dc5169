"""Authorization decisions (pure): a requestor's effective ids against an object's ACEs, erchef's quirks,
and the ACL bodies of the `_acl` endpoints.

The data comes from storage/acls.py in one query per check; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .errors import ChefError, bad_request, error_body, forbidden

PERMS = ("create", "read", "update", "delete", "grant")


@dataclass(frozen=True)
class Subject:
    """What a decision needs to know about the requestor beyond its ids."""

    superuser: bool = False
    validator: bool = False


def allowed(aces: Mapping[str, Iterable[str]], effective: Iterable[str], perm: str) -> bool:
    """Whether any of the requestor's effective ids (itself, its groups) holds `perm` in the ACEs."""
    return not set(aces.get(perm, ())).isdisjoint(effective)


def decide(subject: Subject, perm: str, aces: Mapping[str, Iterable[str]], effective: Iterable[str],
           container: str | None = None) -> bool:
    """erchef's decision: the superuser may do anything; a validator may only create clients (whatever the
    ACLs say); everyone else by the ACL."""
    if subject.superuser:
        return True
    if subject.validator:
        return container == "clients" and perm == "create"
    return allowed(aces, effective, perm)


def denied(perm: str) -> ChefError:
    """erchef's 403."""
    return forbidden(f"missing {perm} permission")


def check_constraints(subject: Subject, perm: str, current_groups: list[str], new_groups: list[str]) -> None:
    """erchef's ACL constraint: only the superuser may take the admins group out of a grant ACE that has it
    (an org must not lock its admins out)."""
    if subject.superuser or perm != "grant":
        return
    if "admins" in current_groups and "admins" not in new_groups:
        raise forbidden("Admin group cannot be removed from the Grant ACE")


def acl_body(acl: Mapping[str, Mapping[str, list[str]]], granular: bool) -> dict:
    """GET …/_acl: `actors` joins clients and users; `?detail=granular` lists them apart with empty actors."""
    body = {}
    for perm in PERMS:
        part = acl[perm]
        if granular:
            body[perm] = {"actors": [], "users": part["users"], "clients": part["clients"], "groups": part["groups"]}
        else:
            body[perm] = {"actors": part["clients"] + part["users"], "groups": part["groups"]}
    return body


def _names(value: object, field: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad_request(f"Field '{field}' is not a valid array of strings")
    return value


@dataclass(frozen=True)
class AcePut:
    """A PUT …/_acl/<perm> body: either `actors` (users or clients by name) or `users` and `clients` apart."""

    groups: list[str]
    actors: list[str]
    users: list[str] | None = None
    clients: list[str] | None = None


def parse_put(perm: str, body: Mapping) -> AcePut:
    """The ACE of a PUT body, or erchef's 400."""
    part = body.get(perm)
    if not isinstance(part, Mapping):
        raise bad_request(f"Field '{perm}' missing")
    for field in ("actors", "groups"):
        if field not in part:
            raise bad_request(f"Field '{perm}.{field}' missing")
    actors, groups = _names(part["actors"], "actors"), _names(part["groups"], "groups")
    users = _names(part["users"], "users") if "users" in part else None
    clients = _names(part["clients"], "clients") if "clients" in part else None
    if (users is None) != (clients is None):
        present, absent = ("users", "clients") if clients is None else ("clients", "users")
        raise bad_request(f"Field '{present}' requires '{absent}' to be present")
    if users is not None and actors:
        raise bad_request("The 'actors' field must be empty when 'users' and 'clients' are given")
    return AcePut(groups=groups, actors=actors, users=users, clients=clients)


def split_actors(actors: list[str], users: set[str], clients: set[str]) -> tuple[list[str], list[str]]:
    """Legacy `actors` as (users, clients): a name must be exactly one of them (erchef's 400 and 422)."""
    both = [a for a in actors if a in users and a in clients]
    if both:
        raise ChefError(422, error_body(
            "The following actor(s) exist as both clients and users within this organization: "
            + ", ".join(both) + ". To perform this update, supply separate 'clients' and 'users' fields in your "
            "request, and use an empty array for the value of 'actors'."))
    unknown = [a for a in actors if a not in users and a not in clients]
    if unknown:
        raise bad_request(f"The actor(s) {', '.join(unknown)} do not exist in this organization as clients or users.")
    return [a for a in actors if a in users], [a for a in actors if a in clients]


def missing(kind: str, names: list[str], found: Iterable[str]) -> None:
    """erchef's 400 for users, clients or groups of an ACE that do not exist."""
    found = set(found)
    absent = [n for n in names if n not in found]
    if absent:
        raise bad_request(f"The {kind}(s) {', '.join(absent)} do not exist in this organization.")

"""The schema, as an ordered list of migrations. Append only: a migration never changes once released."""

from __future__ import annotations

from .schema_cookbooks import MIGRATIONS as COOKBOOK_MIGRATIONS

MIGRATIONS: list[tuple[int, str]] = [
    (1, """
CREATE TABLE users (
    id text PRIMARY KEY,
    authz_id text NOT NULL UNIQUE,
    username text NOT NULL UNIQUE,
    email text UNIQUE,
    external_authentication_uid text,
    recovery_authentication_enabled boolean NOT NULL DEFAULT false,
    superuser boolean NOT NULL DEFAULT false,
    serialized_object jsonb NOT NULL DEFAULT '{}',
    hashed_password text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE orgs (
    id text PRIMARY KEY,
    authz_id text NOT NULL UNIQUE,
    name text NOT NULL UNIQUE,
    full_name text NOT NULL,
    acl jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE clients (
    id text PRIMARY KEY,
    org_id text NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    authz_id text NOT NULL UNIQUE,
    name text NOT NULL,
    validator boolean NOT NULL DEFAULT false,
    admin boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, name)
);
-- One row per key of an actor (a user or a client: owner_id is users.id or clients.id).
CREATE TABLE keys (
    owner_id text NOT NULL,
    key_name text NOT NULL,
    public_key text NOT NULL,
    expires_at timestamptz,              -- NULL: never ("infinity")
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner_id, key_name)
);
CREATE TABLE org_user_associations (
    org_id text NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    user_id text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX org_user_associations_user ON org_user_associations(user_id);
CREATE TABLE org_user_invites (
    id text PRIMARY KEY,
    org_id text NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    user_id text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    last_updated_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, user_id)
);
-- Authorization data recorded now, enforced by a later part: groups and containers of an org.
CREATE TABLE groups (
    id text PRIMARY KEY,
    org_id text REFERENCES orgs(id) ON DELETE CASCADE,   -- NULL: a server-wide group
    authz_id text NOT NULL UNIQUE,
    name text NOT NULL,
    acl jsonb NOT NULL DEFAULT '{}',
    UNIQUE (org_id, name)
);
CREATE TABLE group_members (
    group_id text NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    member_type text NOT NULL CHECK (member_type IN ('user', 'client', 'group')),
    member_id text NOT NULL,
    PRIMARY KEY (group_id, member_type, member_id)
);
CREATE INDEX group_members_member ON group_members(member_id);
CREATE TABLE containers (
    id text PRIMARY KEY,
    org_id text NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    authz_id text NOT NULL UNIQUE,
    name text NOT NULL,
    acl jsonb NOT NULL DEFAULT '{}',
    UNIQUE (org_id, name)
);
-- Server-wide secrets every frontend needs (the pivotal superuser's private key).
CREATE TABLE server_secrets (
    name text PRIMARY KEY,
    value text NOT NULL
);
-- Frontends cache requestors' keys: any change to who may sign tells every listener to forget them.
CREATE FUNCTION chef_notify_auth_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('chef_auth', TG_TABLE_NAME);
    RETURN NULL;
END $$;
CREATE TRIGGER users_auth_change AFTER INSERT OR UPDATE OR DELETE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION chef_notify_auth_change();
CREATE TRIGGER orgs_auth_change AFTER INSERT OR DELETE ON orgs
    FOR EACH STATEMENT EXECUTE FUNCTION chef_notify_auth_change();
CREATE TRIGGER clients_auth_change AFTER INSERT OR UPDATE OR DELETE ON clients
    FOR EACH STATEMENT EXECUTE FUNCTION chef_notify_auth_change();
CREATE TRIGGER keys_auth_change AFTER INSERT OR UPDATE OR DELETE ON keys
    FOR EACH STATEMENT EXECUTE FUNCTION chef_notify_auth_change();
CREATE TRIGGER assoc_auth_change AFTER INSERT OR DELETE ON org_user_associations
    FOR EACH STATEMENT EXECUTE FUNCTION chef_notify_auth_change();
CREATE TRIGGER group_members_auth_change AFTER INSERT OR DELETE ON group_members
    FOR EACH STATEMENT EXECUTE FUNCTION chef_notify_auth_change();
"""),
]

MIGRATIONS += COOKBOOK_MIGRATIONS  # cookbooks area (200-299)

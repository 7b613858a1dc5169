"""The schema, as an ordered list of migrations. Append only: a migration never changes once released."""

from __future__ import annotations

from .schema_authz import MIGRATIONS as AUTHZ_MIGRATIONS
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
    # objects helper's range (100-199): nodes, roles, environments, data bags, and the search outbox.
    (100, """
CREATE TABLE nodes (
    id text PRIMARY KEY,
    org_id text NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    name text NOT NULL,
    environment text NOT NULL,
    policy_name text,
    policy_group text,
    created_by text,                      -- the requestor's id: a client may change the nodes it created
    serialized_object jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, name)
);
CREATE INDEX nodes_environment ON nodes(org_id, environment);
CREATE TABLE roles (
    id text PRIMARY KEY,
    org_id text NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    name text NOT NULL,
    created_by text,
    serialized_object jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, name)
);
CREATE TABLE environments (
    id text PRIMARY KEY,
    org_id text NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    name text NOT NULL,
    created_by text,
    serialized_object jsonb NOT NULL,     -- cookbook_versions holds the environment's pins
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, name)
);
CREATE TABLE data_bags (
    id text PRIMARY KEY,
    org_id text NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    name text NOT NULL,
    created_by text,
    UNIQUE (org_id, name)
);
CREATE TABLE data_bag_items (
    id text PRIMARY KEY,
    org_id text NOT NULL,
    bag_name text NOT NULL,
    item_name text NOT NULL,
    serialized_object jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, bag_name, item_name),
    FOREIGN KEY (org_id, bag_name) REFERENCES data_bags(org_id, name) ON DELETE CASCADE
);
-- Every change to a searchable object (or an org's deletion) leaves a row here in the same
-- transaction; frontends send the object's current state to the search engine, then delete the row.
CREATE TABLE search_outbox (
    seq bigserial PRIMARY KEY,
    kind text NOT NULL,                   -- nodes, roles, environments, clients, data_bag_items or orgs
    object_id text NOT NULL,
    org_id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE FUNCTION chef_search_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    obj record;
BEGIN
    IF TG_OP = 'DELETE' THEN obj := OLD; ELSE obj := NEW; END IF;
    IF TG_TABLE_NAME = 'orgs' THEN
        INSERT INTO search_outbox (kind, object_id, org_id) VALUES ('orgs', obj.id, obj.id);
    ELSE
        INSERT INTO search_outbox (kind, object_id, org_id) VALUES (TG_TABLE_NAME, obj.id, obj.org_id);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER nodes_search AFTER INSERT OR UPDATE OR DELETE ON nodes
    FOR EACH ROW EXECUTE FUNCTION chef_search_enqueue();
CREATE TRIGGER roles_search AFTER INSERT OR UPDATE OR DELETE ON roles
    FOR EACH ROW EXECUTE FUNCTION chef_search_enqueue();
CREATE TRIGGER environments_search AFTER INSERT OR UPDATE OR DELETE ON environments
    FOR EACH ROW EXECUTE FUNCTION chef_search_enqueue();
CREATE TRIGGER data_bag_items_search AFTER INSERT OR UPDATE OR DELETE ON data_bag_items
    FOR EACH ROW EXECUTE FUNCTION chef_search_enqueue();
CREATE TRIGGER clients_search AFTER INSERT OR UPDATE OR DELETE ON clients
    FOR EACH ROW EXECUTE FUNCTION chef_search_enqueue();
CREATE TRIGGER orgs_search AFTER DELETE ON orgs
    FOR EACH ROW EXECUTE FUNCTION chef_search_enqueue();
-- Every organization has the _default environment, from its creation on.
CREATE FUNCTION chef_default_environment() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO environments (id, org_id, name, serialized_object)
    VALUES (md5(NEW.id || '/environments/_default'), NEW.id, '_default',
            '{"name": "_default", "description": "The default Chef environment", "json_class": "Chef::Environment",
              "chef_type": "environment", "default_attributes": {}, "override_attributes": {},
              "cookbook_versions": {}}'::jsonb);
    RETURN NULL;
END $$;
CREATE TRIGGER orgs_default_environment AFTER INSERT ON orgs
    FOR EACH ROW EXECUTE FUNCTION chef_default_environment();
INSERT INTO environments (id, org_id, name, serialized_object)
SELECT md5(id || '/environments/_default'), id, '_default',
       '{"name": "_default", "description": "The default Chef environment", "json_class": "Chef::Environment",
         "chef_type": "environment", "default_attributes": {}, "override_attributes": {},
         "cookbook_versions": {}}'::jsonb
FROM orgs;
INSERT INTO search_outbox (kind, object_id, org_id) SELECT 'clients', id, org_id FROM clients;
"""),
    # Nodes get an authz id, as erchef's do (its /nodes/N/_identifiers answers it); existing nodes get one too.
    (101, """
ALTER TABLE nodes ADD COLUMN authz_id text NOT NULL UNIQUE DEFAULT replace(gen_random_uuid()::text, '-', '');
"""),
    # A node (~120 KB with ohai's attributes) is read whole on every chef-client run, by every partial search
    # and by the indexer: lz4 decompresses it several times faster than the default pglz (new values only).
    # A PostgreSQL built without lz4 keeps pglz.
    (102, """
DO $$ BEGIN
    ALTER TABLE nodes ALTER COLUMN serialized_object SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN NULL;
END $$;
"""),
]

MIGRATIONS += COOKBOOK_MIGRATIONS  # cookbooks area (200-299)
MIGRATIONS += AUTHZ_MIGRATIONS  # authorization (300-399)

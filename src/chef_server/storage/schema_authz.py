"""Authorization's schema (migrations 300-399): per-object ACLs as rows, as oc_bifrost keeps them.

Every actor (user, client), group, container, organization and object has an authz id. An ACE row
(object's authz id, permission, member's authz id) grants one permission to an actor or a group.
A check is one query: the requestor's groups through nested membership (a recursive CTE over
group_members, indexed by member) joined to the object's ACE rows (indexed by object).
"""

from __future__ import annotations

_NEW_ID = "replace(gen_random_uuid()::text, '-', '')"
# The server-wide ::server-admins group's id, as SQL (migration 301 creates the group; the API and
# chef-server-ctl's server-admin commands look it up).
SERVER_ADMINS = "md5('::server-admins')"

# Object tables whose new rows copy their container's ACL (and get their creator), and their container.
INHERITING = (("nodes", "nodes"), ("roles", "roles"), ("environments", "environments"), ("data_bags", "data"),
              ("clients", "clients"), ("cookbooks", "cookbooks"), ("cookbook_artifacts", "cookbook_artifacts"),
              ("policies", "policies"), ("policy_groups", "policy_groups"))

_TRIGGERS = "\n".join(
    f"CREATE TRIGGER {table}_acl AFTER INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION chef_object_acl('{container}');"
    for table, container in INHERITING)

_CLEANUP = "\n".join(
    f"CREATE TRIGGER {table}_acl_cleanup AFTER DELETE ON {table} FOR EACH ROW EXECUTE FUNCTION chef_forget_acl();"
    for table in [t for t, _ in INHERITING] + ["users", "groups", "containers", "orgs"])


def _backfill_from_json(table: str, org_column: str) -> str:
    """ACE rows from the jsonb `acl` column part 1 recorded (actors are user names, groups the org's)."""
    return f"""
INSERT INTO aces (authz_id, perm, member)
SELECT t.authz_id, p.key, u.authz_id
  FROM {table} t, jsonb_each(t.acl) p, jsonb_array_elements_text(p.value -> 'actors') a(name)
  JOIN users u ON u.username = a.name
UNION
SELECT t.authz_id, p.key, g.authz_id
  FROM {table} t, jsonb_each(t.acl) p, jsonb_array_elements_text(p.value -> 'groups') n(name)
  JOIN groups g ON g.name = n.name
 WHERE g.org_id = t.{org_column}
ON CONFLICT DO NOTHING;
ALTER TABLE {table} DROP COLUMN acl;"""


MIGRATIONS: list[tuple[int, str]] = [
    (300, f"""
ALTER TABLE roles ADD COLUMN authz_id text NOT NULL UNIQUE DEFAULT {_NEW_ID};
ALTER TABLE environments ADD COLUMN authz_id text NOT NULL UNIQUE DEFAULT {_NEW_ID};
ALTER TABLE data_bags ADD COLUMN authz_id text NOT NULL UNIQUE DEFAULT {_NEW_ID};
ALTER TABLE groups ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();
CREATE TABLE aces (
    authz_id text NOT NULL,            -- the object, container, group, actor or organization
    perm text NOT NULL CHECK (perm IN ('create', 'read', 'update', 'delete', 'grant')),
    member text NOT NULL,              -- an actor's (users, clients) or a group's authz id
    PRIMARY KEY (authz_id, perm, member)
);
CREATE INDEX aces_member ON aces(member);
-- Group membership is walked upwards from a member: group_members_member (migration 1) serves it.

-- A new object: its container's ACL, plus every permission for its creator (the transaction's chef.actor).
CREATE FUNCTION chef_inherit_acl(obj text, org text, container text, creator text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO aces (authz_id, perm, member)
    SELECT obj, a.perm, a.member FROM aces a JOIN containers c ON c.authz_id = a.authz_id
     WHERE c.org_id = org AND c.name = container
    ON CONFLICT DO NOTHING;
    IF creator IS NOT NULL THEN
        INSERT INTO aces (authz_id, perm, member)
        SELECT obj, p, creator FROM unnest(ARRAY['create', 'read', 'update', 'delete', 'grant']) p
        ON CONFLICT DO NOTHING;
    END IF;
END $$;
CREATE FUNCTION chef_object_acl() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM chef_inherit_acl(NEW.authz_id, NEW.org_id, TG_ARGV[0], nullif(current_setting('chef.actor', true), ''));
    IF TG_TABLE_NAME = 'clients' THEN  -- a client holds every permission on itself, a validator none
        IF NOT NEW.validator THEN
            PERFORM chef_inherit_acl(NEW.authz_id, NEW.org_id, '', NEW.authz_id);
        END IF;
    END IF;
    RETURN NULL;
END $$;
{_TRIGGERS}
-- Groups made through the API (not an org's default ones, which orgs.insert gives their own ACLs).
CREATE TRIGGER groups_acl AFTER INSERT ON groups FOR EACH ROW WHEN (NEW.org_id IS NOT NULL)
    EXECUTE FUNCTION chef_object_acl('groups');
CREATE FUNCTION chef_forget_acl() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM aces WHERE authz_id = OLD.authz_id OR member = OLD.authz_id;
    RETURN NULL;
END $$;
{_CLEANUP}
-- Backfill: orgs, groups and containers from the ACLs recorded at org creation; objects from their container.
{_backfill_from_json("orgs", "id")}
{_backfill_from_json("groups", "org_id")}
{_backfill_from_json("containers", "org_id")}
SELECT chef_inherit_acl(t.authz_id, t.org_id, 'nodes', COALESCE(u.authz_id, c.authz_id))
  FROM nodes t LEFT JOIN users u ON u.id = t.created_by LEFT JOIN clients c ON c.id = t.created_by;
SELECT chef_inherit_acl(t.authz_id, t.org_id, 'roles', COALESCE(u.authz_id, c.authz_id))
  FROM roles t LEFT JOIN users u ON u.id = t.created_by LEFT JOIN clients c ON c.id = t.created_by;
SELECT chef_inherit_acl(t.authz_id, t.org_id, 'environments', COALESCE(u.authz_id, c.authz_id))
  FROM environments t LEFT JOIN users u ON u.id = t.created_by LEFT JOIN clients c ON c.id = t.created_by;
SELECT chef_inherit_acl(t.authz_id, t.org_id, 'data', COALESCE(u.authz_id, c.authz_id))
  FROM data_bags t LEFT JOIN users u ON u.id = t.created_by LEFT JOIN clients c ON c.id = t.created_by;
SELECT chef_inherit_acl(authz_id, org_id, 'clients', CASE WHEN validator THEN NULL ELSE authz_id END) FROM clients;
SELECT chef_inherit_acl(authz_id, org_id, 'cookbooks', NULL) FROM cookbooks;
SELECT chef_inherit_acl(authz_id, org_id, 'cookbook_artifacts', NULL) FROM cookbook_artifacts;
SELECT chef_inherit_acl(authz_id, org_id, 'policies', NULL) FROM policies;
SELECT chef_inherit_acl(authz_id, org_id, 'policy_groups', NULL) FROM policy_groups;
-- Users: themselves and the superusers hold every permission on a user (its /users/U/_acl).
INSERT INTO aces (authz_id, perm, member)
SELECT u.authz_id, p, m.authz_id FROM users u, users m, unnest(ARRAY['create', 'read', 'update', 'delete', 'grant']) p
 WHERE m.id = u.id OR m.superuser
ON CONFLICT DO NOTHING;
"""),
    # Server-wide groups as erchef has them: ::server-admins (the superusers; every user's ACL names it) and,
    # per org, ::ORG_read_access_group (holding the org's users group; the org's members' ACLs grant it read).
    (301, f"""
INSERT INTO groups (id, org_id, authz_id, name) VALUES ({SERVER_ADMINS}, NULL, {_NEW_ID}, 'server-admins');
INSERT INTO group_members (group_id, member_type, member_id) SELECT {SERVER_ADMINS}, 'user', id FROM users
 WHERE superuser;
CREATE FUNCTION chef_user_acl() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO aces (authz_id, perm, member)
    SELECT NEW.authz_id, p, m.authz_id FROM users m, unnest(ARRAY['create', 'read', 'update', 'delete', 'grant']) p
     WHERE m.id = NEW.id OR m.superuser
    UNION ALL
    SELECT NEW.authz_id, p, g.authz_id FROM groups g, unnest(ARRAY['create', 'read', 'update', 'delete']) p
     WHERE g.id = {SERVER_ADMINS}
    ON CONFLICT DO NOTHING;
    IF NEW.superuser THEN
        INSERT INTO group_members (group_id, member_type, member_id) VALUES ({SERVER_ADMINS}, 'user', NEW.id)
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER users_acl AFTER INSERT ON users FOR EACH ROW EXECUTE FUNCTION chef_user_acl();
INSERT INTO aces (authz_id, perm, member)
SELECT u.authz_id, p, g.authz_id FROM users u, groups g, unnest(ARRAY['create', 'read', 'update', 'delete']) p
 WHERE g.id = {SERVER_ADMINS}
ON CONFLICT DO NOTHING;
INSERT INTO groups (id, org_id, authz_id, name)
SELECT md5(o.id || '::read_access'), NULL, {_NEW_ID}, o.name || '_read_access_group' FROM orgs o;
INSERT INTO group_members (group_id, member_type, member_id)
SELECT md5(g.org_id || '::read_access'), 'group', g.id FROM groups g WHERE g.org_id IS NOT NULL AND g.name = 'users';
INSERT INTO aces (authz_id, perm, member)
SELECT u.authz_id, 'read', g.authz_id FROM org_user_associations a JOIN users u ON u.id = a.user_id
  JOIN groups g ON g.id = md5(a.org_id || '::read_access')
ON CONFLICT DO NOTHING;
"""),
]

"""Migrations 200-299: files (bookshelf in SQL), sandboxes, cookbooks, cookbook artifacts, policies."""

from __future__ import annotations

MIGRATIONS: list[tuple[int, str]] = [
    (200, """
-- bookshelf in SQL: a file's bytes, once per (org, checksum), in chunks so large files stream.
-- A `files` row exists only once every chunk is written and the MD5 checked (one transaction).
CREATE TABLE files (
    org_id text NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    checksum text NOT NULL,
    size bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, checksum)
);
CREATE TABLE file_chunks (
    org_id text NOT NULL,
    checksum text NOT NULL,
    seq integer NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (org_id, checksum, seq),
    FOREIGN KEY (org_id, checksum) REFERENCES files(org_id, checksum) ON DELETE CASCADE
        DEFERRABLE INITIALLY DEFERRED
);
-- Checksums committed through a sandbox: what cookbook manifests may reference (erchef's checksums table).
-- References to them are checked at commit (an org's deletion cascades to both); collecting checks at once.
CREATE TABLE checksums (
    org_id text NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    checksum text NOT NULL,
    PRIMARY KEY (org_id, checksum)
);
CREATE TABLE sandboxes (
    id text PRIMARY KEY,
    org_id text NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    checksums jsonb NOT NULL,            -- [[checksum, already committed], ...]
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE cookbooks (
    id text PRIMARY KEY,
    org_id text NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    authz_id text NOT NULL,
    name text NOT NULL,
    UNIQUE (org_id, name)
);
CREATE TABLE cookbook_versions (
    id text PRIMARY KEY,
    cookbook_id text NOT NULL REFERENCES cookbooks(id) ON DELETE CASCADE,
    major bigint NOT NULL,
    minor bigint NOT NULL,
    patch bigint NOT NULL,
    frozen boolean NOT NULL DEFAULT false,
    dependencies jsonb NOT NULL DEFAULT '{}',
    recipes jsonb NOT NULL DEFAULT '[]',   -- qualified recipe names, for _recipes
    doc text NOT NULL,                     -- the cookbook version JSON as stored (without URLs)
    last_updated_by text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (cookbook_id, major, minor, patch)
);
CREATE TABLE cookbook_version_checksums (
    cookbook_version_id text NOT NULL REFERENCES cookbook_versions(id) ON DELETE CASCADE,
    org_id text NOT NULL,
    checksum text NOT NULL,
    PRIMARY KEY (cookbook_version_id, checksum),
    FOREIGN KEY (org_id, checksum) REFERENCES checksums(org_id, checksum) DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX cookbook_version_checksums_sum ON cookbook_version_checksums(org_id, checksum);
CREATE TABLE cookbook_artifacts (
    id text PRIMARY KEY,
    org_id text NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    authz_id text NOT NULL,
    name text NOT NULL,
    UNIQUE (org_id, name)
);
CREATE TABLE cookbook_artifact_versions (
    id text PRIMARY KEY,
    cookbook_artifact_id text NOT NULL REFERENCES cookbook_artifacts(id) ON DELETE CASCADE,
    identifier text NOT NULL,
    doc text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (cookbook_artifact_id, identifier)
);
CREATE TABLE cookbook_artifact_version_checksums (
    cookbook_artifact_version_id text NOT NULL REFERENCES cookbook_artifact_versions(id) ON DELETE CASCADE,
    org_id text NOT NULL,
    checksum text NOT NULL,
    PRIMARY KEY (cookbook_artifact_version_id, checksum),
    FOREIGN KEY (org_id, checksum) REFERENCES checksums(org_id, checksum) DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX cookbook_artifact_version_checksums_sum ON cookbook_artifact_version_checksums(org_id, checksum);
CREATE TABLE policies (
    id text PRIMARY KEY,
    org_id text NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    authz_id text NOT NULL,
    name text NOT NULL,
    UNIQUE (org_id, name)
);
CREATE TABLE policy_revisions (
    id text PRIMARY KEY,
    policy_id text NOT NULL REFERENCES policies(id) ON DELETE CASCADE,
    revision_id text NOT NULL,
    doc text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (policy_id, revision_id)
);
CREATE TABLE policy_groups (
    id text PRIMARY KEY,
    org_id text NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    authz_id text NOT NULL,
    name text NOT NULL,
    UNIQUE (org_id, name)
);
CREATE TABLE policy_group_revisions (
    policy_group_id text NOT NULL REFERENCES policy_groups(id) ON DELETE CASCADE,
    policy_id text NOT NULL REFERENCES policies(id) ON DELETE CASCADE,
    policy_revision_id text NOT NULL REFERENCES policy_revisions(id) ON DELETE CASCADE,
    assigned_at timestamptz NOT NULL DEFAULT clock_timestamp(),  -- a revision lists its groups in this order
    PRIMARY KEY (policy_group_id, policy_id)
);
-- The key bookshelf URLs are signed with, shared by every frontend (two random UUIDs: ~244 bits).
INSERT INTO server_secrets (name, value)
    VALUES ('bookshelf_signing_key', replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''))
    ON CONFLICT DO NOTHING;
"""),
]

"""What a handler gets: the request's parsed parts, who is asking, and the database."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import psycopg

from .authn import Requestor
from .storage.db import Database
from .validation import parse_json_object


@dataclass
class Ctx:
    method: str
    path: str
    params: dict[str, str]
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    api_version: int
    base_url: str
    db: Database
    settings: Any
    requestor: Requestor | None = None
    org_name: str | None = None
    org_id: str | None = None
    search: Any = None  # the worker's search indexer (search_index.Indexer): its engine, the flush hook
    _json: dict | None = field(default=None, repr=False)

    def json(self) -> dict:
        """The body as a JSON object (erchef's 400s when it is not one)."""
        if self._json is None:
            self._json = parse_json_object(self.body)
        return self._json

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[psycopg.AsyncConnection]:
        """A transaction that knows its creator: objects created in it grant the requestor every permission
        (the ACL triggers read `chef.actor`). A validator is no creator: the clients it makes own themselves."""
        async with self.db.transaction() as conn:
            r = self.requestor
            if r is not None and not r.validator:
                await conn.execute("SELECT set_config('chef.actor', %s, true)", (r.authz_id,))
            yield conn

    def url(self, *parts: str) -> str:
        """An absolute URL on this server, as erchef builds `uri` fields from the request's host."""
        return self.base_url + "/" + "/".join(parts)

    def org_url(self, *parts: str) -> str:
        return self.url("organizations", self.org_name or "", *parts)

    @property
    def superuser(self) -> bool:
        return self.requestor is not None and self.requestor.superuser

"""The connection pool of one API worker, and the mapping of database outages to 503."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import psycopg
import psycopg_pool
from psycopg.rows import dict_row

from ..errors import bad_request, conflict, unavailable


class Database:
    """An async pool of connections to the cluster's PostgreSQL (through the frontend's local HAProxy)."""

    def __init__(self, conninfo: str, max_size: int = 8, timeout: float = 5.0):
        self.conninfo = conninfo
        self.pool = psycopg_pool.AsyncConnectionPool(
            conninfo, min_size=1, max_size=max_size, timeout=timeout, open=False,
            kwargs={"autocommit": True, "row_factory": dict_row, "prepare_threshold": 2})
        self._checking: asyncio.Task | None = None

    async def open(self) -> None:
        await self.pool.open(wait=False)

    async def close(self) -> None:
        await self.pool.close()

    def check_soon(self) -> None:
        """Test the idle connections in the background and replace the broken ones: after a failover every
        pooled connection is dead, and only one request should learn it the hard way. Done periodically, it
        also keeps idle connections from being cut by HAProxy's tunnel timeout."""
        if self._checking is None or self._checking.done():
            self._checking = asyncio.get_running_loop().create_task(self.pool.check())

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection]:
        """A pooled connection; an unreachable or failing-over database becomes a 503 ChefError."""
        try:
            async with self.pool.connection() as conn:
                yield conn
        except (psycopg.OperationalError, psycopg_pool.PoolTimeout, psycopg.errors.ReadOnlySqlTransaction,
                psycopg.errors.AdminShutdown) as exc:
            self.check_soon()
            raise unavailable() from exc
        except psycopg.IntegrityError as exc:
            # two requests creating or renaming to the same name at once: the loser gets what it would have
            raise conflict("An object of that name already exists") from exc
        except psycopg.DataError as exc:
            # values PostgreSQL cannot store (a NUL in a string, an out-of-range number) come from the request
            raise bad_request("Invalid value in request") from exc

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[psycopg.AsyncConnection]:
        async with self.connection() as conn, conn.transaction():
            yield conn

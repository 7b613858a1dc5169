"""Chef's error bodies and codes, raised from anywhere in a request and rendered in one place."""

from __future__ import annotations


class ChefError(Exception):
    """An HTTP error answered with a JSON body (erchef's shapes: usually {"error": ["message"]})."""

    def __init__(self, status: int, body: dict, headers: dict[str, str] | None = None):
        super().__init__(status, body)
        self.status = status
        self.body = body
        self.headers = headers or {}


def error_body(message: str) -> dict:
    """erchef's usual envelope: the message inside a one-element list."""
    return {"error": [message]}


def bad_request(message: str) -> ChefError:
    return ChefError(400, error_body(message))


def unauthorized(message: str) -> ChefError:
    return ChefError(401, error_body(message))


def forbidden(message: str) -> ChefError:
    return ChefError(403, error_body(message))


def conflict(message: str) -> ChefError:
    return ChefError(409, error_body(message))


def unavailable(message: str = "The database is unavailable; retry later.") -> ChefError:
    """A backend outage (failover in progress): chef-client retries 503s, never 401/404."""
    return ChefError(503, error_body(message))

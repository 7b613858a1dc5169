"""A search request as erchef handles it (chef_index_query, chef_elasticsearch, chef_wm_search):
the query parameters -> the Elasticsearch 7 request, the errors erchef answers, and the shapes
of its answers. The caller does the I/O: it sends `es_body()` as `GET /chef/_search`, reads the
ids with `hits()`, loads those objects from the database and returns `results(...)`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from chef_server.search import lucene
from chef_server.search.document import STANDARD_TYPES
from chef_server.search.mapping import DATA_BAG_FIELD, DATABASE_FIELD, ID_FIELD, INDEX, TYPE_FIELD, database_name

DEFAULT_QUERY = "*:*"
DEFAULT_START = 0
DEFAULT_ROWS = 1000
SEARCH_PATH = f"/{INDEX}/_search"  # sent as GET with a JSON body, as erchef does


class SearchError(Exception):
    """An error answer: HTTP status and Chef's one-line message (`{"error": [message]}`)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def body(self) -> dict[str, list[str]]:
        return {"error": [self.message]}


def bad_query(query: str) -> SearchError:
    return SearchError(400, f"invalid search query: '{query}'")


def bad_param(name: str, value: str) -> SearchError:
    return SearchError(400, f"invalid '{name}' value: '{value}'")


def engine_error(status: int) -> SearchError:
    """erchef's answer when the search engine refuses a query (400) or fails (anything else)."""
    if status == 400:
        return SearchError(400, "invalid index name or query")
    return SearchError(500, "internal search error")


def no_such_data_bag(bag: str) -> SearchError:
    """For a data bag search that found nothing, when the bag does not exist either."""
    return SearchError(404, f"I don't know how to search for {bag} data objects.")


def percent_decode(value: str) -> str | None:
    """erchef decodes `%XX` once more after the HTTP layer did (so `%2A` in an already-decoded
    `q` is `*`); a `%` without two characters after it stays. None for `%` and two characters
    that are not hex (erchef crashes on those)."""
    raw = value.encode("utf-8", "surrogateescape")
    out = bytearray()
    i = 0
    while i < len(raw):
        if raw[i] == 0x25 and i + 2 < len(raw):  # '%' and two more characters
            pair = raw[i + 1:i + 3]
            if not re.fullmatch(rb"[0-9A-Fa-f]{2}", pair):
                return None
            out.append(int(pair, 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return out.decode("utf-8", "replace")


def _non_negative(name: str, value: str | None, default: int) -> int:
    if value is None:
        return default
    decoded = percent_decode(value)
    # Erlang's list_to_integer: an optional sign and digits, nothing else.
    if decoded is None or not re.fullmatch(r"[+-]?[0-9]+", decoded) or int(decoded) < 0:
        raise bad_param(name, value)
    return int(decoded)


def is_data_bag_index(index: str) -> bool:
    """Every index name other than node, role, client and environment names a data bag."""
    return index not in STANDARD_TYPES


def filter_query(org_id: str, index: str) -> str:
    """The filter erchef adds: the organization, then the type (and bag)."""
    kind = f"+{TYPE_FIELD}:{index}" if not is_data_bag_index(index) else \
        f"+{TYPE_FIELD}:data_bag_item +{DATA_BAG_FIELD}:{index}"
    return f"+{DATABASE_FIELD}:{database_name(org_id)} {kind}"


@dataclass(frozen=True)
class SearchQuery:
    """A validated search: `query` is the rewritten Lucene query the engine gets."""

    org_id: str
    index: str
    query: str
    start: int
    rows: int

    @property
    def data_bag(self) -> str | None:
        return self.index if is_data_bag_index(self.index) else None

    def es_body(self, track_total_hits: bool = False) -> dict[str, Any]:
        """The JSON body of `GET /chef/_search`. Only ids come back, sorted by id; the user's
        query must match and the organization/type filter applies. Without `track_total_hits`
        (erchef's Elasticsearch 7 path never sends it) totals stop at 10 000."""
        body: dict[str, Any] = {"stored_fields": "_id", "from": self.start, "size": self.rows}
        if track_total_hits:
            body["track_total_hits"] = True
        body["sort"] = [{ID_FIELD: {"order": "asc"}}]
        body["query"] = {"bool": {"must": {"query_string": {"query": self.query}},
                                  "filter": {"query_string": {"query": filter_query(self.org_id, self.index)}}}}
        return body


def search_query(org_id: str, index: str, q: str | None = None, start: str | None = None,
                 rows: str | None = None) -> SearchQuery:
    """The search for `GET|POST /organizations/ORG/search/INDEX?q=&start=&rows=`, from the raw
    (HTTP-decoded) parameter values; raises SearchError (400) where erchef does. No `q` searches
    everything (`*:*`); an empty `q` is a bad query; start defaults to 0 and rows to 1000."""
    if q is None:
        rewritten = DEFAULT_QUERY
    elif q == "":
        raise bad_query("")
    else:
        decoded = percent_decode(q)
        if decoded is None:
            raise bad_query(q)
        found = lucene.rewrite(decoded)
        if found is None:
            raise bad_query(decoded)
        rewritten = found
    return SearchQuery(org_id=org_id, index=index, query=rewritten,
                       start=_non_negative("start", start, DEFAULT_START),
                       rows=_non_negative("rows", rows, DEFAULT_ROWS))


def hits(response: Mapping[str, Any]) -> tuple[int, list[str]]:
    """(total, ids) from a 200 answer of `_search`: `hits.total` is a number before
    Elasticsearch 7 and `{"value": n, ...}` since."""
    found = response["hits"]
    total = found["total"]
    if isinstance(total, Mapping):
        total = total["value"]
    return int(total), [hit["_id"] for hit in found["hits"]]


def results(total: int, start: int, rows: Iterable[Any]) -> dict[str, Any]:
    """The answer to a search: `total` is the engine's count (objects deleted since indexing are
    counted but missing from `rows`), `start` as requested."""
    return {"total": total, "start": start, "rows": list(rows)}


def data_bag_item_row(bag: str, item: Mapping[str, Any]) -> dict[str, Any]:
    """A data bag item in full search results: wrapped, its data under `raw_data`."""
    return {"name": f"data_bag_item_{bag}_{item.get('id')}", "json_class": "Chef::DataBagItem",
            "chef_type": "data_bag_item", "data_bag": bag, "raw_data": dict(item)}


def client_row(name: str, validator: bool, org_name: str, public_key: str | None = None) -> dict[str, Any]:
    """A client in search results, as erchef assembles it from the client's record (the public
    key only where the API version still carries it, v0)."""
    row: dict[str, Any] = {"public_key": public_key} if public_key is not None else {}
    row.update({"name": name, "clientname": name, "validator": validator is True, "orgname": org_name,
                "json_class": "Chef::ApiClient", "chef_type": "client"})
    return row


def index_list(base_url: str, org_name: str, data_bags: Iterable[str]) -> dict[str, str]:
    """The answer to `GET /organizations/ORG/search`: each index and its URL, the four standard
    ones first, then one per data bag."""
    names = ["client", "environment", "node", "role", *data_bags]
    return {name: f"{base_url}/organizations/{org_name}/search/{name}" for name in names}

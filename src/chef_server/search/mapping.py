"""The search index as a Chef Infra Server creates it on an Elasticsearch 7 (or OpenSearch
answering as 7.10.2): one index named `chef` for every organization and object type, documents
told apart by three keyword fields, and every searchable value in one whitespace-analysed text
field, `content`."""

from __future__ import annotations

from typing import Any

INDEX = "chef"

ID_FIELD = "X_CHEF_id_CHEF_X"
DATABASE_FIELD = "X_CHEF_database_CHEF_X"
TYPE_FIELD = "X_CHEF_type_CHEF_X"
DATA_BAG_FIELD = "data_bag"
CONTENT_FIELD = "content"

# Chef's defaults (elasticsearch['shard_count'] and ['replica_count']).
SHARDS = 5
REPLICAS = 1

_KEYWORD = {"type": "keyword", "index": True, "norms": False}


def index_body(shards: int = SHARDS, replicas: int = REPLICAS) -> dict[str, Any]:
    """The body of `PUT /chef`. Chef creates the index once (when `GET /chef` answers 404) and
    never updates it. The whitespace analyser keeps `key__=__value` pairs whole and case-sensitive;
    `_source` is off because search results are read from the database, never from the index."""
    return {
        "settings": {
            "analysis": {"analyzer": {"default": {"type": "whitespace"}}},
            "number_of_shards": shards,
            "number_of_replicas": replicas,
        },
        "mappings": {
            "_source": {"enabled": False},
            "properties": {
                DATABASE_FIELD: dict(_KEYWORD),
                TYPE_FIELD: dict(_KEYWORD),
                ID_FIELD: dict(_KEYWORD),
                DATA_BAG_FIELD: dict(_KEYWORD),
                CONTENT_FIELD: {"type": "text", "index": True, "norms": False},
            },
        },
    }


def database_name(org_id: str) -> str:
    """The value of X_CHEF_database_CHEF_X for an organization: `chef_` and its 32-hex id (erchef
    leaves a name that already starts with `chef_` alone)."""
    return org_id if org_id.startswith("chef_") else f"chef_{org_id}"

"""Search requests as erchef builds them (chef_index_query_tests, chef_elasticsearch) and the
answers it gives (chef_wm_search)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chef_server.search.query import (
    SearchError,
    client_row,
    data_bag_item_row,
    engine_error,
    filter_query,
    hits,
    index_list,
    no_such_data_bag,
    percent_decode,
    results,
    search_query,
)

ORG = "0123abc"


def test_properly_formed() -> None:
    found = search_query(ORG, "node", "myquery", "2", "5")
    assert (found.query, found.start, found.rows, found.data_bag) == ("myquery", 2, 5, None)


def test_defaults() -> None:
    found = search_query(ORG, "role")
    assert (found.query, found.start, found.rows) == ("*:*", 0, 1000)


@pytest.mark.parametrize(("index", "expected"), [
    ("node", "+X_CHEF_database_CHEF_X:chef_0123abc +X_CHEF_type_CHEF_X:node"),
    ("role", "+X_CHEF_database_CHEF_X:chef_0123abc +X_CHEF_type_CHEF_X:role"),
    ("client", "+X_CHEF_database_CHEF_X:chef_0123abc +X_CHEF_type_CHEF_X:client"),
    ("environment", "+X_CHEF_database_CHEF_X:chef_0123abc +X_CHEF_type_CHEF_X:environment"),
    ("adbag", "+X_CHEF_database_CHEF_X:chef_0123abc +X_CHEF_type_CHEF_X:data_bag_item +data_bag:adbag"),
])
def test_filter_by_org_and_type(index: str, expected: str) -> None:
    assert filter_query(ORG, index) == expected
    assert search_query(ORG, index).data_bag == (index if index == "adbag" else None)


def test_the_elasticsearch_7_body() -> None:
    body = search_query(ORG, "node", "name:web*", "10", "20").es_body()
    assert body == {
        "stored_fields": "_id", "from": 10, "size": 20, "sort": [{"X_CHEF_id_CHEF_X": {"order": "asc"}}],
        "query": {"bool": {
            "must": {"query_string": {"query": "content:name__=__web*"}},
            "filter": {"query_string": {"query": "+X_CHEF_database_CHEF_X:chef_0123abc +X_CHEF_type_CHEF_X:node"}}}}}
    assert list(body) == ["stored_fields", "from", "size", "sort", "query"]
    tracked = search_query(ORG, "node").es_body(track_total_hits=True)
    assert list(tracked) == ["stored_fields", "from", "size", "track_total_hits", "sort", "query"]


@pytest.mark.parametrize(("params", "status", "message"), [
    ({"q": ""}, 400, "invalid search query: ''"),
    ({"q": "a[b"}, 400, "invalid search query: 'a[b'"),
    ({"q": "a%5Bb"}, 400, "invalid search query: 'a[b'"),  # decoded once more, reported decoded
    ({"start": "abc"}, 400, "invalid 'start' value: 'abc'"),
    ({"start": "-5"}, 400, "invalid 'start' value: '-5'"),
    ({"start": " 5"}, 400, "invalid 'start' value: ' 5'"),
    ({"start": "1_0"}, 400, "invalid 'start' value: '1_0'"),
    ({"rows": "abc"}, 400, "invalid 'rows' value: 'abc'"),
    ({"rows": "-5"}, 400, "invalid 'rows' value: '-5'"),
    ({"rows": "1.5"}, 400, "invalid 'rows' value: '1.5'"),
])
def test_bad_requests(params: dict[str, str], status: int, message: str) -> None:
    with pytest.raises(SearchError) as raised:
        search_query(ORG, "node", **params)
    assert (raised.value.status, raised.value.body()) == (status, {"error": [message]})


def test_numbers_as_erlang_reads_them() -> None:
    assert search_query(ORG, "node", start="+5", rows="007") == search_query(ORG, "node", start="5", rows="7")
    assert search_query(ORG, "node", start="-0", rows="%31%30").rows == 10


def test_query_is_percent_decoded_once_more() -> None:
    assert search_query(ORG, "node", "name:web%2A").query == "content:name__=__web*"
    assert percent_decode("100%") == "100%" and percent_decode("a%4") == "a%4"
    assert percent_decode("%zz") is None


def test_engine_and_data_bag_errors() -> None:
    assert (engine_error(400).status, engine_error(400).message) == (400, "invalid index name or query")
    assert (engine_error(500).status, engine_error(503).message) == (500, "internal search error")
    err = no_such_data_bag("users")
    assert (err.status, err.body()) == (404, {"error": ["I don't know how to search for users data objects."]})


def test_hits_from_elasticsearch_7_and_older() -> None:
    es7 = {"hits": {"total": {"value": 2, "relation": "eq"}, "hits": [{"_id": "a"}, {"_id": "b"}]}}
    assert hits(es7) == (2, ["a", "b"])
    assert hits({"hits": {"total": 3, "hits": [{"_id": "c"}]}}) == (3, ["c"])


def test_result_shape() -> None:
    answer = results(7, 5, [{"name": "a"}])
    assert answer == {"total": 7, "start": 5, "rows": [{"name": "a"}]}
    assert list(answer) == ["total", "start", "rows"]


def test_full_search_rows_for_data_bag_items_and_clients() -> None:
    assert data_bag_item_row("users", {"id": "alice", "uid": 1}) == {
        "name": "data_bag_item_users_alice", "json_class": "Chef::DataBagItem", "chef_type": "data_bag_item",
        "data_bag": "users", "raw_data": {"id": "alice", "uid": 1}}
    assert client_row("web1", False, "acme") == {
        "name": "web1", "clientname": "web1", "validator": False, "orgname": "acme",
        "json_class": "Chef::ApiClient", "chef_type": "client"}
    assert next(iter(client_row("v", True, "acme", public_key="KEY"))) == "public_key"


def test_index_list() -> None:
    assert index_list("https://chef", "acme", ["users"]) == {
        "client": "https://chef/organizations/acme/search/client",
        "environment": "https://chef/organizations/acme/search/environment",
        "node": "https://chef/organizations/acme/search/node",
        "role": "https://chef/organizations/acme/search/role",
        "users": "https://chef/organizations/acme/search/users"}


@given(st.text(max_size=20), st.text(max_size=5), st.text(max_size=5))
def test_a_request_is_valid_or_a_400(q: str, start: str, rows: str) -> None:
    try:
        found = search_query(ORG, "node", q, start, rows)
    except SearchError as err:
        assert err.status == 400 and err.message.startswith("invalid ")
    else:
        assert found.start >= 0 and found.rows >= 0

"""erchef's rewriting of user queries: its own examples (chef_lucene_tests, search_queries.txt),
the queries it rejects, and properties of the grammar."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chef_server.search.lucene import escape, rewrite, unescape

# (user query, what erchef sends to the engine), from erchef's test data.
REWRITTEN = [
    ("afield:[* TO *]", "content:afield__=__*"),
    ("afield:{* TO *}", "content:afield__=__*"),
    ("afield:[a TO *]", "content:[afield__=__a TO afield__=__\\ufff0]"),
    ("afield:{start TO *}", "content:{afield__=__start TO afield__=__\\ufff0}"),
    ("afield:[* TO b]", "content:[afield__=__ TO afield__=__b]"),
    ("afield:{* TO end}", "content:{afield__=__ TO afield__=__end}"),
    ("afield:[start TO end]", "content:[afield__=__start TO afield__=__end]"),
    ("afield:{start TO end}", "content:{afield__=__start TO afield__=__end}"),
    ("*:*", "*:*"),
    ("role:mon", "content:role__=__mon"),
    ("role:mon AND role:prod", "content:role__=__mon AND content:role__=__prod"),
    ("run_list:role\\[rubberband\\] AND run_list:role\\[whale\\]",
     "content:run_list__=__role\\[rubberband\\] AND content:run_list__=__role\\[whale\\]"),
    ("sharable_server:[* TO *]", "content:sharable_server__=__*"),
    ("run_list:role\\[nfs_server\\] AND sharable_server:[* TO *]",
     "content:run_list__=__role\\[nfs_server\\] AND content:sharable_server__=__*"),
    ("(role:prod AND x_y:true)", "(content:role__=__prod AND content:x_y__=__true)"),
    ("hostname:[* TO *] AND role:prod", "content:hostname__=__* AND content:role__=__prod"),
    ("role:t_mem AND role:prod NOT hostname:ip-1-2-3-4",
     "content:role__=__t_mem AND content:role__=__prod NOT content:hostname__=__ip-1-2-3-4"),
    ("ohai_time:[1234.567 TO *]", "content:[ohai_time__=__1234.567 TO ohai_time__=__\\ufff0]"),
    ("ohai_time:{1234.567 TO *}", "content:{ohai_time__=__1234.567 TO ohai_time__=__\\ufff0}"),
    ("ohai_time:[* TO baz]", "content:[ohai_time__=__ TO ohai_time__=__baz]"),
    ("tags:apples*.for.eating.com", "content:tags__=__apples*.for.eating.com"),
    ("role:safe AND ohai_time:[1234.567 TO *] AND whiz_bang:x5",
     "content:role__=__safe AND content:[ohai_time__=__1234.567 TO ohai_time__=__\\ufff0] AND "
     "content:whiz_bang__=__x5"),
    ("animal:[ape TO zebra]", "content:[animal__=__ape TO animal__=__zebra]"),
    ("((value:[1 TO 3] OR nested_b1_a2_a3:B1_A2_A3-c) OR value:[5 TO *])",
     "((content:[value__=__1 TO value__=__3] OR content:nested_b1_a2_a3__=__B1_A2_A3-c) OR "
     "content:[value__=__5 TO value__=__\\ufff0])"),
    ("((value:{1 TO 3} OR value:{1 TO 3}) OR run_list:recipe\\[alpha\\])",
     "((content:{value__=__1 TO value__=__3} OR content:{value__=__1 TO value__=__3}) OR "
     "content:run_list__=__recipe\\[alpha\\])"),
    ('words:"one two three"', 'content:"words__=__one two three"'),
    ('words:"one \\"two\\" three"', 'content:"words__=__one \\"two\\" three"'),
    ('words:"\\"one two\\" three"', 'content:"words__=__\\"one two\\" three"'),
    ('words:"one two \\"three\\"" OR words:"\\"one two\\" three" AND words:"one \\"two\\" three"',
     'content:"words__=__one two \\"three\\"" OR content:"words__=__\\"one two\\" three" AND '
     'content:"words__=__one \\"two\\" three"'),
    ('words:\\"*', 'content:words__=__\\"*'),
    ("-version:0.9.12", "-content:version__=__0.9.12"),
    ("!version:0.9.12", "!content:version__=__0.9.12"),
    ("ec2:*", "content:ec2__=__*"),
    ("afield:*", "content:afield__=__*"),
    ("mount:/foo", "content:mount__=__/foo"),
    ("mount:foo/bar", "content:mount__=__foo/bar"),
    ("foo:bar", "content:foo__=__bar"),
    ("afield:aterm", "content:afield__=__aterm"),
    ("a_field:aterm", "content:a_field__=__aterm"),
    ('afield:"a b"', 'content:"afield__=__a b"'),
    ("afield:word~", "content:afield__=__word~"),
    ("afield:word~0.5", "content:afield__=__word~0.5"),
    ("afield:cr?p", "content:afield__=__cr?p"),
    ("afield:c???", "content:afield__=__c???"),
    # Spaces around an operator become one; a group after a field is rewritten inside.
    ("a   AND\tb", "a AND b"),
    ("foo &&bar", "foo && bar"),
    ("name:(a OR b:c)", "content:name__=__(a OR content:b__=__c)"),
]

# Queries erchef passes through unchanged (its tests).
UNCHANGED = [
    "aterm", "a1 b2 c3", " leading", "trailing ", "XAND", "XOR", "XNOT", "ANDX", "ORX", "NOTX",
    "(aterm)", "(a1 b1 c1)", "abc (x y z) jj",
    "foo AND bar", "foo && bar", "foo OR bar", "foo || bar", "t1 AND t2 OR t3 AND t4",
    "(a && b)", "(a && b) OR c", "c OR (a AND b)", "(a AND d) OR (a && b)",
    "a NOT b", "a ! b", "a !b", "a NOT (b OR c)", "a !(b OR c)",
    "+aterm", "first +second", "+first second", "-aterm", "first -second", "-first second",
    "foo+bar", "foo-bar", "foo*bar", "foo?bar", "foo_bar", "foo.bar",
    '"single"', '"one two three"', '"has \\"escaped\\" quotes\\"s"', '+"one two"', '-"one two"',
    'a NOT "b c"', 'a !"b c"', 'a ! "b c"',
    "word^0.5", '"one two"^10', "word~", "word~0.5",
    *[fmt.format("\\" + c) for fmt in ("foo{}bar", "{}b", "a{}", "a{}b") for c in "!(){}[]^\"~*?:\\/"],
]

# Queries erchef answers with 400 (invalid search query).
REJECTED = [
    "a[b",              # erchef's own example
    "*:* AND role:web",  # `*:*` must be the whole query
    "AND", "AND-b",      # a keyword is not a term
    "ORG:x",            # a field name may not start with a keyword
    "+name:web",        # `+` takes a term or a phrase, not a field
    "name:café",        # terms are ASCII
    "name:web\\ server",  # a space cannot be escaped
    "name:(web",
    'name:"web',
    "name:[a TO b",
    "name:[a  TO b]",   # exactly one space around TO
    "a:b:c",
]


@pytest.mark.parametrize(("query", "expected"), REWRITTEN)
def test_rewritten_as_erchef_does(query: str, expected: str) -> None:
    assert rewrite(query) == expected


@pytest.mark.parametrize("query", UNCHANGED)
def test_queries_without_fields_pass_unchanged(query: str) -> None:
    assert rewrite(query) == query


@pytest.mark.parametrize("query", REJECTED)
def test_rejected_as_erchef_does(query: str) -> None:
    assert rewrite(query) is None


def test_a_long_query_of_ors_is_accepted() -> None:
    query = " OR ".join(f"name:web{n}" for n in range(1500))
    assert rewrite(query) == " OR ".join(f"content:name__=__web{n}" for n in range(1500))


def test_deeply_nested_groups_parse_in_linear_time() -> None:
    query = "(" * 60 + "a:b" + ")" * 60
    assert rewrite(query) == "(" * 60 + "content:a__=__b" + ")" * 60


TERM_CHARS = string.ascii_letters + string.digits + "*?@_+./-" + '[]\\/"!(){}^~:'
words = st.text(alphabet=string.ascii_lowercase + string.digits + "_", min_size=1, max_size=8)


@given(st.text(alphabet=TERM_CHARS + " &|=", max_size=12))
def test_escaping_round_trips(value: str) -> None:
    try:
        term = escape(value)
    except ValueError:
        return
    assert unescape(term) == value
    assert rewrite(f"field:{term}") == f"content:field__=__{term}"
    assert rewrite(term) == term


@given(st.text(alphabet=string.ascii_letters + string.digits + "_.*/", min_size=1, max_size=12))
def test_plain_values_always_escape(value: str) -> None:
    if value in ("AND", "OR", "NOT"):
        with pytest.raises(ValueError):
            escape(value)
    else:
        assert unescape(escape(value)) == value


@given(st.lists(st.tuples(words, words), min_size=1, max_size=6),
       st.lists(st.sampled_from(["AND", "OR", "&&", "||"]), min_size=5, max_size=5))
def test_fields_joined_by_operators_are_all_rewritten(fields: list[tuple[str, str]], ops: list[str]) -> None:
    query = fields[0][0] + ":" + fields[0][1]
    expected = f"content:{fields[0][0]}__=__{fields[0][1]}"
    for (name, value), op in zip(fields[1:], ops, strict=False):
        query += f" {op} {name}:{value}"
        expected += f" {op} content:{name}__=__{value}"
    if any(name.startswith(("AND", "OR", "NOT")) for name, _ in fields):
        return
    assert rewrite(query) == expected


@given(st.text(max_size=30))
def test_rewriting_is_total(query: str) -> None:
    result = rewrite(query)
    assert result is None or isinstance(result, str)

"""Search as Chef Infra Server's erchef does it, in pure functions (no I/O).

- `mapping`: the `chef` index, its settings and mapping, the field names.
- `document`: the searchable form of a stored object and the `_bulk` lines that index or delete it.
- `lucene`: erchef's rewriting of a user's Lucene query (`name:web*` -> `content:name__=__web*`).
- `query`: a search request (`q`, `start`, `rows`) -> the Elasticsearch request, its errors, the
  result shape.
- `partial`: partial search (`POST /search/INDEX` with attribute paths).

A real erchef and this frontend write the same documents into the same index, so either can
answer searches over the other's writes.
"""

"""Everything the API stores, in the cluster's PostgreSQL: pool, schema migrations and queries."""

"""One module per area of the Chef Infra Server API; each handler takes a Ctx and returns (status, body)."""

"""chef_server: the Chef Infra Server API frontend."""

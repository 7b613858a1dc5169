"""Chef Infra Server API frontend: a stateless service on top of the chef_backend cluster."""

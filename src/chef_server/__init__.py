"""The Chef Infra Server API frontend."""

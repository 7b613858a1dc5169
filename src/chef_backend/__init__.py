"""chef-backend: a highly available PostgreSQL + etcd backend cluster for Chef Infra Server."""

__version__ = "0.1.0"

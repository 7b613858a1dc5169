"""Frontend glue: what a Chef server frontend host runs to reach the backend cluster's leader
(member discovery through etcd, and HAProxy routing by `/leader`), as `chef-backend-frontend`."""

"""`mailinfra status`: one screen per stream and pool, from the Prometheus HTTP API and the plan."""

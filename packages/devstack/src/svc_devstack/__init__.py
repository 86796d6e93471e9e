"""svc-dev: every registered service and the local gateway in one process (development only)."""

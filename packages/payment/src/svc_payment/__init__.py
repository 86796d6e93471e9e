"""Payment service: idempotent payments behind a provider interface."""

"""Cache service: namespaced key-value with TTL on Redis."""

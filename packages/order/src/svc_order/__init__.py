"""Order service: orders and their state machine."""

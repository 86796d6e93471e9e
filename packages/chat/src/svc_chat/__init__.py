"""Chat service: rooms, history and WebSocket fan-out across instances."""

"""Chat service: rooms, history and WebSocket fan-out across instances."""

from svc_chat.manifest import create_app, service
from svc_chat.settings import ChatSettings

__all__ = ["ChatSettings", "create_app", "service"]

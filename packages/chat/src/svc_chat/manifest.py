"""What the chat service is: rooms, history and real-time delivery over WebSocket, across
instances through Redis; every room created is audited."""

from __future__ import annotations

from svc_chat.parts import PARTS, close_sockets
from svc_chat.repository import INDEXES
from svc_chat.settings import ChatSettings
from svc_chat.views import routes
from svc_core import Audit, Auth, Mongo, Redis, Service

service = Service(
    name="chat",
    port=3005,
    settings=ChatSettings,
    routes=routes,
    uses=[Mongo(INDEXES), Redis(), Auth(), Audit()],
    parts=PARTS,
    on_shutdown=[close_sockets],  # flush and close every socket with 1001
)
create_app = service.create_app

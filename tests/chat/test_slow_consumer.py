"""A client that stops reading is cut off with 1013 once its queue is full; everyone else keeps
receiving every message."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
from typing import Any

from svc_chat.parts import PARTS
from svc_core.testing import eventually


class StalledClient:
    """A WebSocket client on a raw socket with a tiny receive buffer that, after joining,
    reads nothing until told to."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.setblocking(False)
        self.buffer = b""

    async def open(self, token: str) -> None:
        loop = asyncio.get_running_loop()
        await loop.sock_connect(self.sock, ("127.0.0.1", self.port))
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET /chat/ws?jwt={token} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        await loop.sock_sendall(self.sock, request.encode())
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += await loop.sock_recv(self.sock, 4096)
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head

    async def send(self, frame: dict[str, Any]) -> None:
        payload = json.dumps(frame).encode()
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        assert len(payload) < 126
        data = bytes([0x81, 0x80 | len(payload)]) + mask + masked
        await asyncio.get_running_loop().sock_sendall(self.sock, data)

    async def read_until_close(self) -> tuple[list[dict[str, Any]], int]:
        """Read everything the server sent: the text frames and the close code."""
        loop = asyncio.get_running_loop()
        frames: list[dict[str, Any]] = []
        while True:
            parsed = self._next_frame()
            if parsed is None:
                chunk = await asyncio.wait_for(loop.sock_recv(self.sock, 65536), 10)
                assert chunk, "connection ended without a close frame"
                self.buffer += chunk
                continue
            opcode, payload = parsed
            if opcode == 0x8:
                return frames, struct.unpack("!H", payload[:2])[0]
            if opcode == 0x1:
                frames.append(json.loads(payload))

    def _next_frame(self) -> tuple[int, bytes] | None:
        data = self.buffer
        if len(data) < 2:
            return None
        opcode, length, offset = data[0] & 0x0F, data[1] & 0x7F, 2
        if length == 126:
            if len(data) < 4:
                return None
            length, offset = struct.unpack("!H", data[2:4])[0], 4
        elif length == 127:
            if len(data) < 10:
                return None
            length, offset = struct.unpack("!Q", data[2:10])[0], 10
        if len(data) < offset + length:
            return None
        self.buffer = data[offset + length :]
        return opcode, data[offset : offset + length]

    def close(self) -> None:
        self.sock.close()


async def test_a_stalled_reader_is_closed_with_1013_and_nobody_waits_for_it(
    start_chat: Any, connect: Any, new_room: Any, rest: Any, make_token: Any
) -> None:
    chat = await start_chat(socket_queue=64)
    room = await new_room(chat)
    stalled = StalledClient(chat.port)
    await stalled.open(make_token(sub="cust-slow"))
    await stalled.send({"type": "join", "room_id": room})
    fast = await connect(chat, sub="cust-fast")
    await fast.join(room)
    hub = PARTS.of(chat.app).hub
    await eventually(lambda: len(hub.members(room)) == 2)
    slow = next(c for c in hub.members(room) if c.customer_id == "cust-slow")

    body = "x" * 4000
    posted = 0
    received: list[str] = []

    async def read_fast() -> None:
        while True:
            frame = await fast.expect("message")
            received.append(frame["message"]["id"])

    reader = asyncio.create_task(read_fast())
    ids = []
    try:
        while not slow.closing:
            assert posted < 5000, "the stalled client was never cut off"
            batch = await asyncio.gather(
                *(
                    rest(chat, "POST", f"/chat/rooms/{room}/messages", json={"body": body})
                    for _ in range(16)
                )
            )
            assert {status for status, _ in batch} == {201}
            ids += [message["id"] for _, message in batch]
            posted += len(batch)
        for _ in range(5):  # after the cut-off, delivery to the others goes on
            _, message = await rest(
                chat, "POST", f"/chat/rooms/{room}/messages", json={"body": "after"}
            )
            ids.append(message["id"])
        await eventually(lambda: len(received) == len(ids), timeout=10)
    finally:
        reader.cancel()
    assert sorted(received) == sorted(ids)  # every one, once
    frames, code = await stalled.read_until_close()
    stalled.close()
    assert code == 1013
    assert any(f["type"] == "joined" for f in frames)
    await eventually(lambda: len(hub.members(room)) == 1)

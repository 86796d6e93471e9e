// Chat: rooms, history with "load older", live messages over the WebSocket (token in ?jwt=),
// presence, error frames in words, and reconnection that replays the gap (last_seen_id).
import * as api from "./api.js";
import { $, el, busy, fail, say, when } from "./ui.js";

const FRAME_ERRORS = {
  bad_frame: "The message could not be sent: it was empty or malformed.",
  unknown_room: "That room no longer exists.",
  unknown_message: "Some earlier messages could not be replayed; showing live messages from now.",
  not_joined: "You are not in that room any more. Open it again.",
  too_large: "That message is too long (at most 4000 characters).",
  rate_limited: "You are sending messages too fast. Slow down a little.",
  unauthorized: "The chat could not renew your session.",
};

let socket = null;
let wanted = false;
let room = null; // {id, name}
let lastSeen = null; // the newest message id seen in the current room
let olderCursor = null;
let roomsCursor = null;
let retry = null;
const shown = new Set();

function status(text) {
  $("#chat-conn").textContent = text;
}

function messageNode(m) {
  return el("li", { "data-message": m.id },
    el("span", { class: "sender", text: m.sender_username }),
    el("span", { class: "body", text: m.body }),
    el("time", { class: "when", datetime: m.created_at, text: when(m.created_at) }),
  );
}

function addMessage(m, { older = false } = {}) {
  if (shown.has(m.id) || !room || m.room_id !== room.id) return;
  shown.add(m.id);
  const list = $("#messages");
  if (older) list.prepend(messageNode(m));
  else {
    list.append(messageNode(m));
    lastSeen = m.id;
    list.scrollTop = list.scrollHeight;
  }
}

function send(frame) {
  if (socket?.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
}

function join() {
  if (!room) return;
  send({ type: "join", room_id: room.id, ...(lastSeen ? { last_seen_id: lastSeen } : {}) });
}

function connect() {
  if (!wanted || !api.token()) return;
  if (socket && socket.readyState <= WebSocket.OPEN) return;
  const url = new URL("/chat/ws", api.base());
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  url.searchParams.set("jwt", api.token());
  status("Connecting to chat…");
  const ws = new WebSocket(url);
  socket = ws;
  ws.onopen = () => { status("Connected"); join(); };
  ws.onmessage = (event) => {
    let frame;
    try { frame = JSON.parse(event.data); } catch { return; }
    if (frame.type === "message") addMessage(frame.message);
    else if (frame.type === "ack") addMessage(frame.message);
    else if (frame.type === "presence" && room && frame.room_id === room.id) {
      $("#presence").textContent = frame.members.map((m) => m.username).sort().join(", ");
    } else if (frame.type === "error") fail(new Error(FRAME_ERRORS[frame.code] || "The chat refused that."));
  };
  ws.onclose = (event) => {
    if (socket !== ws) return;
    socket = null;
    if (!wanted) return;
    if (event.code === 4001) {
      // the token expired or the session was revoked: renew it (or go back to the log-in page)
      status("Renewing your session…");
      api.refresh().then(connect, () => {});
      return;
    }
    status("Disconnected; reconnecting…");
    clearTimeout(retry);
    retry = setTimeout(connect, navigator.onLine ? 1000 : 3000);
  };
}

function disconnect() {
  const ws = socket;
  socket = null;
  ws?.close(1000);
}

async function openRoom(r) {
  if (room && room.id !== r.id) send({ type: "leave", room_id: room.id });
  room = r;
  lastSeen = null;
  shown.clear();
  $("#messages").replaceChildren();
  $("#presence").textContent = "";
  $("#room").hidden = false;
  $("#room-name").textContent = r.name;
  document.querySelectorAll("#room-list button").forEach((b) => b.setAttribute("aria-current", String(b.dataset.room === r.id)));
  const page = await api.send("GET", `/chat/rooms/${r.id}/messages?limit=20`);
  for (const m of [...page.items].reverse()) addMessage(m);
  olderCursor = page.next_cursor;
  $("#older").hidden = !olderCursor;
  if (socket?.readyState === WebSocket.OPEN) join();
  else connect();
  $("#message-form textarea").focus();
}

function roomButton(r) {
  const b = el("button", { type: "button", "data-room": r.id, text: r.name });
  b.addEventListener("click", () => openRoom(r).catch(fail));
  return el("li", {}, b);
}

async function loadRooms(more = false) {
  const q = more && roomsCursor ? `&cursor=${encodeURIComponent(roomsCursor)}` : "";
  const page = await api.send("GET", `/chat/rooms?limit=20${q}`);
  if (!more) $("#room-list").replaceChildren();
  page.items.forEach((r) => $("#room-list").append(roomButton(r)));
  roomsCursor = page.next_cursor;
  $("#rooms-more").hidden = !roomsCursor;
}

export function show() {
  wanted = true;
  connect();
  return loadRooms().catch(fail);
}

export function init() {
  api.on("token", (token) => send({ type: "auth", token }));
  window.addEventListener("offline", () => { status("Offline"); disconnect(); });
  window.addEventListener("online", () => { clearTimeout(retry); connect(); });
  $("#rooms-more").addEventListener("click", (e) => busy(e.target, "Loading rooms…", () => loadRooms(true)));
  $("#room-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const form = e.target;
    busy(form.querySelector("button"), "Creating the room…", async () => {
      const r = await api.send("POST", "/chat/rooms", { name: form.name.value });
      form.reset();
      $("#room-list").prepend(roomButton(r));
      await openRoom(r);
    });
  });
  $("#older").addEventListener("click", (e) => busy(e.target, "Loading older messages…", async () => {
    const page = await api.send("GET", `/chat/rooms/${room.id}/messages?limit=20&cursor=${encodeURIComponent(olderCursor)}`);
    for (const m of page.items) addMessage(m, { older: true });
    olderCursor = page.next_cursor;
    $("#older").hidden = !olderCursor;
  }));
  const form = $("#message-form");
  const submit = (e) => {
    e.preventDefault();
    const body = form.body.value;
    if (!body.trim()) { fail(new Error(FRAME_ERRORS.bad_frame)); return; }
    if (socket?.readyState === WebSocket.OPEN) {
      send({ type: "message", room_id: room.id, body, client_id: api.newKey() });
      form.reset();
    } else {
      // offline socket: post over REST, the message comes back on reconnect
      busy(form.querySelector("button"), "Sending…", async () => {
        addMessage(await api.send("POST", `/chat/rooms/${room.id}/messages`, { body }));
        form.reset();
      });
    }
  };
  form.addEventListener("submit", submit);
  form.body.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) submit(e); // Shift+Enter for a new line
  });
  say("");
}

export function reset() {
  wanted = false;
  clearTimeout(retry);
  disconnect();
  room = null;
  lastSeen = null;
  shown.clear();
  $("#room").hidden = true;
  $("#room-list").replaceChildren();
  status("");
}

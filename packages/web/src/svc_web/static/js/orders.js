// Orders: create with items, list with paging, cancel, delete, pay, refund, status following.
import * as api from "./api.js";
import { $, el, busy, fail, when } from "./ui.js";

let cursor = null;
const polls = new Map();

function itemRow() {
  const row = el("div", { class: "item-row" },
    el("label", {}, "SKU", el("input", { name: "sku", required: true, maxlength: 64, value: "tea-1" })),
    el("label", {}, "Name", el("input", { name: "name", required: true, maxlength: 200, value: "Green tea" })),
    el("label", {}, "Qty", el("input", { name: "quantity", type: "number", min: 1, max: 1000, value: 1, required: true })),
    el("label", {}, "Unit price", el("input", { name: "unit_price", inputmode: "decimal", value: "4.50", required: true })),
  );
  const remove = el("button", { type: "button", class: "secondary", text: "Remove" });
  remove.addEventListener("click", () => { if ($("#items").querySelectorAll(".item-row").length > 1) row.remove(); });
  row.append(remove);
  return row;
}

function readItems(currency) {
  const items = [];
  for (const [i, row] of [...$("#items").querySelectorAll(".item-row")].entries()) {
    const price = api.toMinor(row.querySelector("[name=unit_price]").value, currency);
    if (price === null) {
      throw new api.ApiError(`Item ${i + 1}: the price must be an amount with at most ${api.decimals(currency)} decimals.`);
    }
    items.push({
      sku: row.querySelector("[name=sku]").value.trim(),
      name: row.querySelector("[name=name]").value.trim(),
      quantity: Number(row.querySelector("[name=quantity]").value),
      unit_price: price,
    });
  }
  return items;
}

function follow(order, until) {
  // Poll until the status reaches `until` (payment events move it): every 2 s for the first
  // 30 s, then every 10 s. After 5 minutes, or when the order cannot be read, the card says so
  // instead of going quiet.
  clearTimeout(polls.get(order.id));
  const started = Date.now();
  const say = (text) => {
    const slot = document.querySelector(`[data-order="${order.id}"] .pay-slot`);
    if (slot) slot.replaceChildren(el("p", { class: "muted", role: "status", text }));
  };
  const tick = async () => {
    let fresh;
    try {
      fresh = await api.send("GET", `/orders/${order.id}`);
    } catch (err) {
      say(`The order's status could not be refreshed (${err.message}). Reload the page to see it.`);
      return;
    }
    render(fresh);
    if (fresh.status === until) return;
    const waited = Date.now() - started;
    if (waited > 300000) {
      say(`Still ${fresh.status}: this is taking longer than usual. Reload the page later to see the status.`);
      return;
    }
    polls.set(order.id, setTimeout(tick, waited < 30000 ? 2000 : 10000));
  };
  polls.set(order.id, setTimeout(tick, 2000));
}

function card(order) {
  return el("li", { "data-order": order.id },
    el("div", { class: "row" },
      el("strong", { text: api.money(order.total, order.currency) }),
      el("span", { class: `badge ${order.status}`, "data-status": order.status, text: order.status }),
      el("span", { class: "muted", text: when(order.created_at) }),
    ),
    el("ul", {}, ...order.items.map((it) => el("li", { text: `${it.quantity} × ${it.name} (${it.sku}) at ${api.money(it.unit_price, order.currency)}` }))),
    el("div", { class: "row actions" }),
    el("div", { class: "pay-slot" }),
  );
}

function render(order) {
  const existing = document.querySelector(`[data-order="${order.id}"]`);
  const node = card(order);
  const actions = node.querySelector(".actions");
  const button = (text, handler, cls = "") => {
    const b = el("button", { type: "button", class: cls, text });
    b.addEventListener("click", () => handler(b));
    actions.append(b);
  };
  if (order.status === "pending") {
    button("Pay", () => showPay(order, node));
    button("Edit", () => showEdit(order, node), "secondary");
    button("Cancel", (b) => busy(b, "Cancelling the order…", async () => render(await api.send("POST", `/orders/${order.id}/cancel`))), "secondary");
  }
  if (order.status === "paid") {
    button("Refund", (b) => busy(b, "Refunding…", async () => {
      const payments = await api.send("GET", `/payments?order_id=${encodeURIComponent(order.id)}&limit=100`);
      const paid = payments.items.find((p) => p.status === "succeeded");
      if (!paid) throw new api.ApiError("No successful payment was found for this order.");
      await api.send("POST", `/payments/${paid.id}/refund`);
      follow(order, "refunded");
    }));
  }
  if (order.status === "pending" || order.status === "cancelled") {
    button("Delete", (b) => busy(b, "Deleting the order…", async () => {
      await api.send("DELETE", `/orders/${order.id}`);
      node.remove();
    }), "secondary");
  }
  if (existing) existing.replaceWith(node);
  return node;
}

function showEdit(order, node) {
  // change the quantities (0 removes an item); the service recomputes the total
  const slot = node.querySelector(".pay-slot");
  const form = el("form", { class: "edit-form" },
    ...order.items.map((it, i) => el("label", {}, `Quantity of ${it.name}`,
      el("input", { name: `q${i}`, type: "number", min: 0, max: 1000, value: it.quantity, required: true }))),
    el("button", { type: "submit", text: "Save changes" }),
  );
  slot.replaceChildren(form);
  form.querySelector("input").focus();
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const items = order.items
      .map((it, i) => ({ ...it, quantity: Number(form.elements[`q${i}`].value) }))
      .filter((it) => it.quantity > 0);
    busy(form.querySelector("button"), "Saving the order…", async () => {
      if (!items.length) throw new api.ApiError("An order needs at least one item: cancel or delete it instead.");
      render(await api.send("PATCH", `/orders/${order.id}`, { items }));
    });
  });
}

function showPay(order, node) {
  const slot = node.querySelector(".pay-slot");
  slot.replaceChildren($("#pay-template").content.cloneNode(true));
  const form = slot.querySelector("form");
  const key = api.newKey(); // one key per attempt form: a double submit is never a double charge
  form.querySelector("input").focus();
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const f = new FormData(form);
    const body = {
      order_id: order.id,
      card: { number: f.get("number").replace(/\s+/g, ""), exp_month: Number(f.get("exp_month")), exp_year: Number(f.get("exp_year")), cvc: f.get("cvc").trim() },
    };
    busy(form.querySelector("button"), "Paying…", async () => {
      await api.send("POST", "/payments", body, { headers: { "Idempotency-Key": key } });
      slot.replaceChildren(el("p", { class: "muted", text: "Payment accepted; waiting for the order to be paid…" }));
      follow(order, "paid");
    });
  });
}

async function load(more = false) {
  const q = more && cursor ? `&cursor=${encodeURIComponent(cursor)}` : "";
  const page = await api.send("GET", `/orders?limit=5${q}`);
  const list = $("#order-list");
  if (!more) list.replaceChildren();
  for (const order of page.items) list.append(render(order));
  cursor = page.next_cursor;
  $("#orders-more").hidden = !cursor;
}

export function show() {
  return load().catch(fail);
}

export function init() {
  $("#items").append(itemRow());
  $("#add-item").addEventListener("click", () => {
    const row = itemRow();
    $("#items").append(row);
    row.querySelector("input").focus();
  });
  $("#orders-more").addEventListener("click", (e) => busy(e.target, "Loading older orders…", () => load(true)));
  $("#order-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const form = e.target;
    const currency = form.currency.value;
    busy(form.querySelector("[type=submit]"), "Creating the order…", async () => {
      const order = await api.send("POST", "/orders", { currency, items: readItems(currency) });
      $("#order-list").prepend(render(order));
    });
  });
}

export function reset() {
  polls.forEach((t) => clearTimeout(t));
  polls.clear();
  $("#order-list").replaceChildren();
}

// Small DOM helpers shared by the screens.
export const $ = (sel, root = document) => root.querySelector(sel);

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== false && v !== null && v !== undefined) node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

export function say(text) {
  $("#status").textContent = text;
}

export function fail(err) {
  const box = $("#error");
  box.textContent = err?.message || String(err);
  box.hidden = false;
}

export function clearError() {
  $("#error").hidden = true;
  $("#error").textContent = "";
}

// Runs an action with its button disabled and a progress word; errors shown in words.
export async function busy(button, words, action) {
  clearError();
  if (button) button.disabled = true;
  say(words);
  try {
    const result = await action();
    say("");
    return result;
  } catch (err) {
    say("");
    fail(err);
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

export const when = (iso) => new Date(iso).toLocaleString();

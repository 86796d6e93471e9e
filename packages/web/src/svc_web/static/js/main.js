// The app shell: log-in and registration, the section navigation, and the way back to the
// log-in page when the session ends.
import * as api from "./api.js";
import * as chat from "./chat.js";
import * as files from "./files.js";
import * as orders from "./orders.js";
import { $, busy, clearError, fail, say } from "./ui.js";

const screens = { orders, chat, files };

function showView(name) {
  clearError();
  for (const section of document.querySelectorAll("main > section")) section.hidden = section.id !== `view-${name}`;
  document.querySelectorAll("#nav [data-view]").forEach((b) => {
    if (b.dataset.view === name) b.setAttribute("aria-current", "page");
    else b.removeAttribute("aria-current");
  });
  $("#nav").hidden = name === "auth";
  const heading = $(`#view-${name} h2`);
  heading.tabIndex = -1;
  heading.focus();
  return screens[name]?.show();
}

function signedIn() {
  $("#whoami").textContent = `Signed in as ${api.username()}`;
  showView("orders");
}

function backToLogin(message) {
  Object.values(screens).forEach((s) => s.reset());
  showView("auth");
  if (message) fail(new Error(message));
}

async function start() {
  try {
    await api.configure();
  } catch {
    fail(new Error("The app could not load its settings. Reload the page."));
    return;
  }
  Object.values(screens).forEach((s) => s.init());
  api.on("revoked", backToLogin);
  document.querySelectorAll("#nav [data-view]").forEach((b) => b.addEventListener("click", () => showView(b.dataset.view)));
  $("#logout").addEventListener("click", async (e) => {
    // the session ends here whatever the server answers (the tokens are dropped from memory)
    await busy(e.target, "Logging out…", () => api.logout().catch(() => {}));
    backToLogin("");
    say("You are logged out.");
  });
  $("#login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const f = e.target;
    busy(f.querySelector("button"), "Logging in…", async () => {
      await api.login(f.username.value.trim(), f.password.value);
      f.reset();
      signedIn();
    });
  });
  $("#register-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const f = e.target;
    busy(f.querySelector("button"), "Creating your account…", async () => {
      await api.register(f.username.value.trim(), f.email.value.trim(), f.password.value);
      f.reset();
      signedIn();
    });
  });
  showView("auth");
}

start();

// Umbra demo app: join a room with a name and a shared secret, publish camera and microphone,
// see everyone with a lock badge when their media decrypts (or a banner when it cannot because
// their secret differs), change the secret live, leave. Plain JavaScript over the Web SDK (`OT`).
"use strict";

const $ = (id) => document.getElementById(id);
const LOCK_SVG = '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M7 10V8a5 5 0 0 1 10 0v2h1a1 1 0 0 1 1 1v9a1 1 0 0 1-1 1H6a1 1 0 0 1-1-1v-9a1 1 0 0 1 1-1h1zm2 0h6V8a3 3 0 0 0-6 0v2z"/></svg>';
const WARN_SVG = '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M12 2 1 21h22L12 2zm1 15h-2v-2h2v2zm0-4h-2V9h2v4z"/></svg>';

const app = {
  session: null,
  publisher: null,
  room: "",
  name: "",
  tiles: new Map(), // streamId → { el, subscriber }
  audioOn: true,
  videoOn: true,
};
window.umbraDemo = app; // for people poking around in the console (and for the tests)

function toast(text, ms = 3500) {
  const t = $("toast");
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (t.hidden = true), ms);
}

function showError(el, text) {
  el.textContent = text;
  el.hidden = !text;
}

const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

function randomRoom() {
  const words = ["amber", "birch", "cedar", "delta", "ember", "fjord", "grove", "harbor", "iris", "juniper", "kelp", "lumen"];
  const pick = () => words[Math.floor(Math.random() * words.length)];
  return `${pick()}-${pick()}-${Math.floor(100 + Math.random() * 900)}`;
}

function updateEmpty() {
  $("empty").hidden = [...app.tiles.keys()].some((k) => k !== "self");
}

/** A tile: media area, name label with the encryption state, optional mismatch banner. */
function makeTile(key, name, { self = false } = {}) {
  const el = document.createElement("div");
  el.className = "tile";
  el.dataset.key = key;
  el.innerHTML = `<div class="media"></div>
    <div class="label"><span class="who">${escapeHtml(name || "Guest")}${self ? " (you)" : ""}</span><span class="state"><span class="badge-wait">connecting…</span></span></div>`;
  if (self) $("grid").prepend(el);
  else $("grid").appendChild(el);
  app.tiles.set(key, { el, subscriber: null });
  updateEmpty();
  return el;
}

function setTileState(el, state, name) {
  const slot = el.querySelector(".state");
  el.classList.toggle("mismatch", state === "mismatch");
  el.querySelector(".banner-mismatch")?.remove();
  el.dataset.state = state;
  if (state === "encrypted") {
    slot.innerHTML = `<span class="badge-lock" title="Media decrypted with your secret">${LOCK_SVG}Encrypted</span>`;
  } else if (state === "mismatch") {
    slot.innerHTML = "";
    const banner = document.createElement("div");
    banner.className = "banner-mismatch";
    banner.setAttribute("role", "alert");
    banner.innerHTML = `${WARN_SVG}<strong>Can't decrypt ${escapeHtml(name || "this participant")}</strong>
      <span>Their media is encrypted with a different secret. Check that you both typed the same secret, or change yours.</span>`;
    el.appendChild(banner);
  } else {
    slot.innerHTML = `<span class="badge-wait">${escapeHtml(state)}</span>`;
  }
}

function removeTile(key) {
  const t = app.tiles.get(key);
  if (!t) return;
  t.el.remove();
  app.tiles.delete(key);
  updateEmpty();
}

async function fetchToken(room, name) {
  const r = await fetch("/demo/token", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ room, name }) });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) {
    if (body.code === 5007) throw new Error("This server is not in demo mode: start it with `umbra serve --demo` (or ./scripts/start.sh).");
    throw new Error(body.message || `The server refused the token request (${r.status}).`);
  }
  return body;
}

function subscribeTo(stream) {
  if (app.tiles.has(stream.streamId)) return;
  const el = makeTile(stream.streamId, stream.name);
  const subscriber = app.session.subscribe(stream, el.querySelector(".media"), { insertMode: "append", width: "100%", height: "100%" }, (err) => {
    if (!err) setTileState(el, "encrypted");
    else if (err.name === "OT_ENCRYPTION_SECRET_MISMATCH") setTileState(el, "mismatch", stream.name);
    else setTileState(el, "media unavailable");
  });
  app.tiles.get(stream.streamId).subscriber = subscriber;
  subscriber.on("encryptionSecretMismatch", () => setTileState(el, "mismatch", stream.name));
  subscriber.on("encryptionSecretMatch", () => setTileState(el, "encrypted"));
}

async function join(room, name, secret) {
  const { apiKey, sessionId, token } = await fetchToken(room, name);
  const session = OT.initSession(apiKey, sessionId, { encryptionSecret: secret });
  app.session = session;
  session.on("streamCreated", (e) => subscribeTo(e.stream));
  session.on("streamDestroyed", (e) => removeTile(e.stream.streamId));
  let joinedAt = Infinity;
  session.on("connectionCreated", (e) => {
    // Connections already there when we join are announced too: only toast newcomers.
    if (performance.now() - joinedAt > 1500 && e.connection.connectionId !== session.connection?.connectionId) toast(`${connectionName(e.connection)} joined`);
  });
  session.on("connectionDestroyed", (e) => toast(`${connectionName(e.connection)} left`));
  session.on("sessionDisconnected", (e) => {
    if (e.reason !== "clientDisconnected") toast("Disconnected from the room");
    resetToJoin();
  });
  session.on("exception", (e) => toast(e.message || String(e.name)));
  // The router's loudest stream (from the audio levels publishers send): its tile is outlined.
  session.on("activeSpeakerChanged", (e) => {
    const key = e.stream && e.stream.streamId === app.publisher?.stream?.streamId ? "self" : e.stream?.streamId;
    for (const [k, t] of app.tiles) t.el.classList.toggle("speaking", k === key);
  });
  await session.connect(token);
  joinedAt = performance.now();

  const self = makeTile("self", name, { self: true });
  const publisher = OT.initPublisher(self.querySelector(".media"), { name, insertMode: "append", width: "100%", height: "100%", resolution: "1280x720" });
  app.publisher = publisher;
  publisher.on("accessDenied", () => toast("Camera or microphone access was denied"));
  await new Promise((resolve, reject) => session.publish(publisher, (err) => (err ? reject(err) : resolve())));
  setTileState(self, "encrypted");
}

function connectionName(c) {
  try {
    return JSON.parse(c.data).name || "Someone";
  } catch {
    return "Someone";
  }
}

function showCall(on) {
  $("join-view").hidden = on;
  $("call-view").hidden = !on;
  $("controls").hidden = !on;
  $("room-info").hidden = !on;
}

function resetToJoin() {
  for (const key of [...app.tiles.keys()]) removeTile(key);
  app.publisher?.destroy?.();
  app.publisher = null;
  app.session = null;
  showCall(false);
  $("join").disabled = false;
}

$("join-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const room = $("room").value.trim();
  const name = $("name").value.trim();
  const secret = $("secret").value;
  showError($("join-error"), "");
  if ([...secret].length < 8) return showError($("join-error"), "The secret needs at least 8 characters.");
  $("join").disabled = true;
  app.room = room;
  app.name = name;
  $("room-name").textContent = room;
  history.replaceState(null, "", `?room=${encodeURIComponent(room)}`);
  showCall(true);
  try {
    await join(room, name, secret);
  } catch (e) {
    app.session?.disconnect();
    resetToJoin();
    showError($("join-error"), e?.message || String(e));
  }
});

$("toggle-mic").addEventListener("click", () => {
  app.audioOn = !app.audioOn;
  app.publisher?.publishAudio(app.audioOn);
  $("toggle-mic").setAttribute("aria-pressed", String(app.audioOn));
  $("toggle-mic").lastElementChild.textContent = app.audioOn ? "Mute" : "Unmute";
});

$("toggle-cam").addEventListener("click", () => {
  app.videoOn = !app.videoOn;
  app.publisher?.publishVideo(app.videoOn);
  $("toggle-cam").setAttribute("aria-pressed", String(app.videoOn));
  $("toggle-cam").lastElementChild.textContent = app.videoOn ? "Stop video" : "Start video";
});

$("change-secret").addEventListener("click", () => {
  $("new-secret").value = "";
  showError($("secret-error"), "");
  $("secret-dialog").showModal();
});
$("secret-cancel").addEventListener("click", () => $("secret-dialog").close());
$("secret-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const secret = $("new-secret").value;
  $("secret-apply").disabled = true;
  try {
    await app.session.setEncryptionSecret(secret);
    $("secret-dialog").close();
    toast("New secret in effect. Tell the others to switch too.");
  } catch (e) {
    showError($("secret-error"), e?.message || String(e));
  } finally {
    $("secret-apply").disabled = false;
  }
});

$("leave").addEventListener("click", () => {
  app.session?.disconnect();
  resetToJoin();
  toast("You left the room");
});

$("copy-link").addEventListener("click", async () => {
  const url = `${location.origin}/?room=${encodeURIComponent(app.room)}`;
  try {
    await navigator.clipboard.writeText(url);
    toast("Invite link copied. Share the secret separately.");
  } catch {
    toast(url, 8000);
  }
});

for (const b of document.querySelectorAll(".reveal")) {
  b.addEventListener("click", () => {
    const input = $(b.dataset.for);
    const show = input.type === "password";
    input.type = show ? "text" : "password";
    b.textContent = show ? "Hide" : "Show";
  });
}

// Start: room from the link, or a fresh one; warn early about browsers without E2EE support.
$("room").value = new URLSearchParams(location.search).get("room") || randomRoom();
if (typeof OT === "undefined") {
  showError($("join-error"), "The Umbra SDK did not load (/sdk/umbra.js). Build it with `npm run build` in sdk/web.");
  $("join").disabled = true;
} else if (!OT.hasEndToEndEncryptionSupport()) {
  showError($("join-error"), "This browser cannot encrypt media end to end (it needs WebCrypto and encoded transforms, on HTTPS or localhost).");
  $("join").disabled = true;
}

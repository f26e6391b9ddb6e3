// Real-browser tests of the Umbra Web SDK against a real `umbra serve` (signaling + str0m router).
// Must run inside the network namespace run.sh creates (veth with UMBRA_BT_ADDR): Chromium gathers
// no loopback ICE candidates, and nothing here may leave the machine.
//
//   node run.mjs [--only name,name] [--skip name,name]
// Env: UMBRA_BIN (the umbra server binary), UMBRA_MEDIA_BIN (the umbra-media CLI of the native
// SDK), UMBRA_PLAINTEXT_PUB (umbra-client's test-only plaintext-publisher example),
// UMBRA_C_SUBSCRIBER (examples/c/subscriber), UMBRA_BT_ADDR (default 10.99.0.1), UMBRA_BT_ARTIFACTS.
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import puppeteer from "puppeteer-core";
import { registerNativeCodecTests } from "./native-codecs.mjs";
import { registerClusterTests } from "./cluster.mjs";
import { registerLayerTests } from "./layers.mjs";
import { registerFirefoxLayerTests } from "./firefox-layers.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const webRoot = path.resolve(here, "..");
const ADDR = process.env.UMBRA_BT_ADDR || "10.99.0.1";
const BIN = process.env.UMBRA_BIN;
const MEDIA_BIN = process.env.UMBRA_MEDIA_BIN;
const PLAINTEXT_PUB = process.env.UMBRA_PLAINTEXT_PUB;
const ARTIFACTS = process.env.UMBRA_BT_ARTIFACTS || path.resolve(webRoot, "../../.artifacts/browser");
const args = process.argv.slice(2);
const listArg = (flag) => {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1].split(",").filter(Boolean) : null;
};
const ONLY = listArg("--only");
const SKIP = listArg("--skip") ?? [];
const SECRET = "correct horse battery staple";
const OTHER = "a completely different secret";
const figures = {};

// ---------------------------------------------------------------------------------------------
// small helpers
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const t0 = Date.now();
const stamp = () => `[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s]`;
const say = (...a) => console.log(stamp(), ...a);

class Failure extends Error {}
function check(cond, msg) {
  if (!cond) throw new Failure(msg);
}
async function waitUntil(what, fn, timeoutMs, everyMs = 100) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > end) throw new Failure(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}
function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : NaN;
}

// ---------------------------------------------------------------------------------------------
// the server
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "umbra-bt-"));
const webDir = path.join(tmp, "web");
fs.mkdirSync(path.join(webDir, "demo"), { recursive: true });
fs.symlinkSync(path.join(webRoot, "dist"), path.join(webDir, "dist"));
const demoSrc = path.join(webRoot, "demo");
if (fs.existsSync(demoSrc)) for (const f of fs.readdirSync(demoSrc)) fs.copyFileSync(path.join(demoSrc, f), path.join(webDir, "demo", f));
for (const f of ["harness.html", "harness.js"]) fs.copyFileSync(path.join(here, f), path.join(webDir, "demo", f));

let server;
let baseUrl;
/** A project for sessions made with the REST API (the demo endpoint makes only routed E2EE rooms). */
let restProject;
const children = new Set();
async function startServer() {
  check(BIN && fs.existsSync(BIN), `UMBRA_BIN (${BIN}) is not the umbra binary`);
  const made = spawnSync(BIN, ["--data-dir", path.join(tmp, "data"), "project", "create", "--name", "browser-tests", "--output", "json"], { encoding: "utf8" });
  check(made.status === 0, `umbra project create: ${made.stderr}`);
  restProject = JSON.parse(made.stdout);
  const logFile = fs.createWriteStream(path.join(ARTIFACTS, "server.log"));
  server = spawn(
    BIN,
    ["--data-dir", path.join(tmp, "data"), "serve", "--listen", `${ADDR}:0`, "--media-bind", `${ADDR}:0`, "--demo", "--web-dir", webDir, "--shutdown-grace-secs", "2"],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, RUST_LOG: process.env.RUST_LOG || "info" } },
  );
  children.add(server);
  server.stderr.pipe(logFile);
  const rl = readline.createInterface({ input: server.stdout });
  baseUrl = await Promise.race([
    new Promise((resolve) => rl.on("line", (l) => {
      const m = /umbra listening on (http:\/\/\S+)/.exec(l);
      if (m) resolve(m[1]);
    })),
    sleep(20000).then(() => { throw new Failure("server did not start in 20 s"); }),
    once(server, "exit").then(([c]) => { throw new Failure(`server exited with ${c}`); }),
  ]);
  say("server at", baseUrl);
}

async function demoToken(room, name = "native") {
  const r = await fetch(`${baseUrl}/demo/token`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ room, name }) });
  check(r.ok, `demo token: ${r.status}`);
  return r.json();
}

// ---------------------------------------------------------------------------------------------
// browsers
let chrome;
let firefox;
const pages = new Set();
const CHROME_ARGS = () => [
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--use-fake-device-for-media-stream",
  "--use-fake-ui-for-media-stream",
  "--autoplay-policy=no-user-gesture-required",
  "--disable-renderer-backgrounding",
  "--disable-background-timer-throttling",
  "--disable-backgrounding-occluded-windows",
  `--unsafely-treat-insecure-origin-as-secure=${baseUrl}`,
];
async function chromePage(pathname = "/demo/harness.html", viewport) {
  if (!chrome) {
    chrome = await chromium.launch({ executablePath: process.env.UMBRA_CHROMIUM || "/usr/bin/chromium", headless: true, args: CHROME_ARGS(), timeout: 60000 });
    say("chromium", chrome.version());
  }
  const ctx = await chrome.newContext({ viewport: viewport ?? { width: 1000, height: 700 } });
  const page = await ctx.newPage();
  page.on("console", (m) => m.type() === "error" && say("  [chromium console]", m.text().slice(0, 300)));
  page.on("pageerror", (e) => say("  [chromium pageerror]", String(e).slice(0, 300)));
  await page.goto(baseUrl + pathname);
  const p = { kind: "chromium", page, ev: (fn, arg) => page.evaluate(fn, arg), close: () => ctx.close() };
  pages.add(p);
  return p;
}
async function firefoxPage(pathname = "/demo/harness.html") {
  if (!firefox) {
    firefox = await puppeteer.launch({
      browser: "firefox",
      executablePath: process.env.UMBRA_FIREFOX || "/usr/bin/firefox-esr",
      headless: true,
      protocolTimeout: 60000,
      timeout: 60000,
      extraPrefsFirefox: {
        "media.navigator.streams.fake": true,
        "media.navigator.permission.disabled": true,
        "media.autoplay.default": 0,
        "media.autoplay.block-webaudio": false,
        "media.peerconnection.ice.obfuscate_host_addresses": false,
        "dom.securecontext.allowlist": ADDR,
        "network.proxy.type": 0,
      },
    });
    say("firefox", await firefox.version());
  }
  const page = await firefox.newPage();
  page.on("console", (m) => m.type() === "error" && say("  [firefox console]", m.text().slice(0, 300)));
  await page.goto(baseUrl + pathname);
  const p = { kind: "firefox", page, ev: (fn, arg) => page.evaluate(fn, arg), close: () => page.close() };
  pages.add(p);
  return p;
}
async function closeAll() {
  for (const p of pages) await p.close().catch(() => {});
  pages.clear();
}

// in-page calls
const connect = (p, o) => p.ev((o) => H.connect(o), o);
const publish = (p, o = {}) => p.ev((o) => H.publish(o), o);
const state = (p) => p.ev(() => H.state());
const stats = (p) => p.ev(() => H.stats());
const picture = (p, which) => p.ev((w) => H.picture(w), which);

/** Frames decoded on the page's first inbound video (getStats). */
async function framesDecoded(p) {
  const s = await stats(p);
  const v = s.inbound.filter((x) => x.kind === "video");
  return { frames: v.reduce((a, x) => a + x.framesDecoded, 0), codec: v[0]?.codec ?? null, width: v[0]?.frameWidth ?? 0 };
}

/** The subscriber's video keeps decoding: presented frames and getStats' framesDecoded both grow. */
async function assertVideoFlows(sub, label, { minFrames = 20, overMs = 2000 } = {}) {
  await waitUntil(`${label}: first frames`, async () => (await state(sub)).subscribers[0]?.frames > 5, 20000, 200);
  const a = await framesDecoded(sub);
  const sa = (await state(sub)).subscribers[0];
  await sleep(overMs);
  const b = await framesDecoded(sub);
  const sb = (await state(sub)).subscribers[0];
  say(`  ${label}: decoded ${a.frames}→${b.frames} (${b.codec}, ${b.width}px wide), presented ${sa.frames}→${sb.frames}`);
  check(b.frames - a.frames >= minFrames, `${label}: only ${b.frames - a.frames} frames decoded in ${overMs} ms`);
  check(sb.frames - sa.frames >= minFrames / 2, `${label}: only ${sb.frames - sa.frames} frames presented in ${overMs} ms`);
  return b;
}

function cellStats(pic) {
  const m = pic.cells.reduce((a, x) => a + x, 0) / pic.cells.length;
  const sd = Math.sqrt(pic.cells.reduce((a, x) => a + (x - m) ** 2, 0) / pic.cells.length);
  return { mean: m, sd };
}
function correlation(a, b) {
  const n = a.length;
  const ma = a.reduce((s, x) => s + x, 0) / n;
  const mb = b.reduce((s, x) => s + x, 0) / n;
  let sab = 0, saa = 0, sbb = 0;
  for (let i = 0; i < n; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) ** 2;
    sbb += (b[i] - mb) ** 2;
  }
  return saa && sbb ? sab / Math.sqrt(saa * sbb) : 0;
}
const meanAbsDiff = (a, b) => a.cells.reduce((s, x, i) => s + Math.abs(x - b.cells[i]), 0) / a.cells.length;

/** The subscriber shows the publisher's picture: coarse grids (16×12 cell means) taken at the same
 * moment correlate (and the picture has structure); a flat picture must have the same colour. */
async function assertSamePicture(pub, sub, label) {
  let best = Infinity;
  let detail = "";
  for (let i = 0; i < 6; i++) {
    const [a, b] = await Promise.all([picture(pub, "publisher"), picture(sub, 0)]);
    check(a && b, `${label}: no picture (publisher ${!!a}, subscriber ${!!b})`);
    const d = meanAbsDiff(a, b);
    const sa = cellStats(a);
    const sb = cellStats(b);
    // Baseline: the publisher's picture against a flat picture of its own mean.
    const flat = a.cells.reduce((s, x) => s + Math.abs(x - sa.mean), 0) / a.cells.length;
    detail = `diff ${d.toFixed(1)} (flat ${flat.toFixed(1)}), sd pub ${sa.sd.toFixed(1)} sub ${sb.sd.toFixed(1)}, means ${sa.mean.toFixed(0)}/${sb.mean.toFixed(0)}`;
    if (d < best) best = d;
    // Structure, not brightness: Chromium renders VP9/AV1 with another colour range than VP8/H.264
    // (same frame, darker green), so the criterion is the correlation of the two grids.
    const r = correlation(a.cells, b.cells);
    detail += `, correlation ${r.toFixed(3)}`;
    if (sa.sd > 8 && r > 0.85) {
      say(`  ${label}: same picture: ${detail}`);
      return d;
    }
    // Firefox's fake camera is one flat colour (changing over time): compare the colour.
    const colourDiff = Math.max(...a.rgb.map((x, k) => Math.abs(x - b.rgb[k])));
    detail += `, rgb pub ${a.rgb.map((x) => x.toFixed(0))} sub ${b.rgb.map((x) => x.toFixed(0))}`;
    if (sa.sd <= 8 && sb.sd <= 8 && colourDiff < 12 && Math.max(...a.rgb) > 40) {
      say(`  ${label}: same flat colour: ${detail}`);
      return colourDiff;
    }
    await sleep(300);
  }
  throw new Failure(`${label}: subscriber's picture is not the publisher's: ${detail}`);
}

// ---------------------------------------------------------------------------------------------
// the tests
const tests = [];
const test = (name, fn, timeoutMs = 90000) => tests.push({ name, fn, timeoutMs });

async function pubSub(room, { codec, pubSecret = SECRET, subSecret = SECRET, pubBrowser = chromePage, subBrowser = chromePage, audio = true } = {}) {
  const pub = await pubBrowser();
  const sub = await subBrowser();
  const c1 = await connect(pub, { room, name: "publisher", secret: pubSecret, autoSubscribe: false });
  check(!c1.error, `publisher connect: ${JSON.stringify(c1.error)}`);
  const c2 = await connect(sub, { room, name: "subscriber", secret: subSecret });
  check(!c2.error, `subscriber connect: ${JSON.stringify(c2.error)}`);
  const r = await publish(pub, { name: "publisher", codec, audio });
  check(!r.error, `publish: ${JSON.stringify(r.error)}`);
  await waitUntil("the subscriber to subscribe", async () => (await state(sub)).subscribers.length > 0, 15000);
  return { pub, sub };
}

for (const codec of ["VP8", "VP9", "H264", "AV1"]) {
  test(`chromium-chromium-${codec.toLowerCase()}`, async () => {
    const { pub, sub } = await pubSub(`a-${codec}`, { codec, audio: codec === "VP8" });
    const s = await assertVideoFlows(sub, codec);
    check(s.codec?.toLowerCase() === `video/${codec.toLowerCase()}`, `negotiated ${s.codec}, wanted ${codec}`);
    await assertSamePicture(pub, sub, codec);
    const st = await state(sub);
    check(st.subscribers[0].mismatch === 0, "no mismatch with the same secret");
    if (codec === "VP8") {
      // e. audio: decoded, not silent.
      const lvl = await sub.ev(() => H.audioLevel(0, 2500));
      say(`  audio level (RMS, max over 50 ms windows): ${JSON.stringify(lvl)}`);
      check(!lvl.error && lvl.rms > 0.005, `subscriber audio is silent: ${JSON.stringify(lvl)}`);
      const a = (await stats(sub)).inbound.find((x) => x.kind === "audio");
      check(a && a.codec?.toLowerCase() === "audio/opus" && a.totalAudioEnergy > 0, `audio stats: ${JSON.stringify(a)}`);
    }
  });
}

test("secret-mismatch-then-match", async () => {
  const { pub, sub } = await pubSub("b-mismatch", { subSecret: OTHER, audio: true });
  await waitUntil("encryptionSecretMismatch", async () => (await state(sub)).subscribers[0]?.mismatch > 0, 15000, 100);
  await sleep(3000); // mismatch must stay single while wrong frames keep coming
  let st = (await state(sub)).subscribers[0];
  const fd = await framesDecoded(sub);
  say(`  mismatch ${st.mismatch}, match ${st.match}, decoded ${fd.frames}, presented ${st.frames}, subscribeError ${JSON.stringify(st.subscribeError)}`);
  check(st.mismatch === 1, `encryptionSecretMismatch fired ${st.mismatch} times`);
  check(st.match === 0, "encryptionSecretMatch fired with a wrong secret");
  check(fd.frames === 0 && st.frames === 0, `frames decoded with a wrong secret: ${fd.frames}/${st.frames}`);
  check(st.subscribeError?.name === "OT_ENCRYPTION_SECRET_MISMATCH", `subscribe callback: ${JSON.stringify(st.subscribeError)}`);
  const r = await sub.ev((s) => H.setSecret(s), SECRET);
  check(r.ok, `setEncryptionSecret: ${JSON.stringify(r.error)}`);
  await waitUntil("encryptionSecretMatch", async () => (await state(sub)).subscribers[0].match > 0, 5000, 20);
  await waitUntil("frames after the match", async () => (await state(sub)).subscribers[0].frames > 0, 5000, 20);
  st = (await state(sub)).subscribers[0];
  const toMatch = st.matchAt[0] - r.t0;
  const toFrame = (await sub.ev(() => H.subscribers[0].lastFrameAt)) - r.t0;
  say(`  setEncryptionSecret → resolved ${(r.resolvedAt - r.t0).toFixed(0)} ms, → encryptionSecretMatch ${toMatch.toFixed(0)} ms, → frames ${toFrame.toFixed(0)} ms`);
  (figures.secretToMatch ??= []).push(toMatch);
  check(toMatch < 1000, `encryptionSecretMatch came ${toMatch.toFixed(0)} ms after setEncryptionSecret`);
  check(toFrame < 1000, `the first frame after the match came ${toFrame.toFixed(0)} ms after setEncryptionSecret`);
  check(st.mismatch === 1 && st.match === 1, `events: mismatch ${st.mismatch}, match ${st.match}`);
  await assertVideoFlows(sub, "after the match");
  await assertSamePicture(pub, sub, "after the match");
});

test("secret-errors", async () => {
  const p = await chromePage();
  for (const [label, secret] of [["empty", ""], ["7 characters", "1234567"], ["7 code points in 14 UTF-16 units", "🔐".repeat(7)], ["257 characters", "x".repeat(257)]]) {
    const r = await p.ev(async (s) => {
      const r = await fetch("/demo/token", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ room: "f-errors" }) });
      const { apiKey, sessionId, token } = await r.json();
      const session = OT.initSession(apiKey, sessionId, { encryptionSecret: s });
      let disconnected = 0;
      session.on("sessionDisconnected", () => disconnected++);
      const err = await new Promise((res) => session.connect(token, (e) => res(e ?? null)));
      return { name: err?.name ?? null, message: err?.message ?? null, connected: !!session.connection, disconnected };
    }, secret);
    say(`  ${label}: ${r.name}: ${r.message}`);
    check(r.name === "OT_INVALID_ENCRYPTION_SECRET" && !r.connected, `${label}: ${JSON.stringify(r)}`);
    check(r.message && r.message.length > 10, `${label}: no readable message`);
  }
  // 8 emoji (8 code points) and 256 characters are fine.
  for (const secret of ["🔐".repeat(8), "y".repeat(256)]) {
    const q = await chromePage();
    const c = await connect(q, { room: "f-ok", secret });
    check(!c.error, `a valid ${[...secret].length}-code-point secret was refused: ${JSON.stringify(c.error)}`);
  }
  // Missing secret: connect succeeds with an exception event; publish and subscribe fail.
  const owner = await chromePage();
  check(!(await connect(owner, { room: "f-missing", secret: SECRET, autoSubscribe: false })).error, "owner connect");
  check(!(await publish(owner, { audio: false })).error, "owner publish");
  const m = await chromePage();
  const c = await connect(m, { room: "f-missing" });
  say(`  no secret: connect error ${JSON.stringify(c.error)}, exceptions ${JSON.stringify((await state(m)).exceptions)}`);
  check(!c.error, `connect without a secret failed: ${JSON.stringify(c.error)}`);
  await waitUntil("the OT_ENCRYPTION_SECRET_MISSING exception", async () => (await state(m)).exceptions.some((e) => e.name === "OT_ENCRYPTION_SECRET_MISSING"), 5000);
  const pr = await publish(m, { audio: false });
  say(`  no secret: publish → ${JSON.stringify(pr.error)}`);
  check(pr.error?.name === "OT_ENCRYPTION_SECRET_MISSING", `publish without a secret: ${JSON.stringify(pr.error)}`);
  await waitUntil("subscribe without a secret to complete", async () => (await state(m)).subscribers[0]?.subscribeError !== undefined, 10000);
  const se = (await state(m)).subscribers[0].subscribeError;
  say(`  no secret: subscribe → ${JSON.stringify(se)}`);
  check(se?.name === "OT_ENCRYPTION_SECRET_MISSING", `subscribe without a secret: ${JSON.stringify(se)}`);
  check(await m.ev(() => !!H.session.connection), "the session stays connected");
});

test("firefox-to-chromium-vp8", async () => {
  const { pub, sub } = await pubSub("c-ff-cr", { codec: "VP8", pubBrowser: firefoxPage, subBrowser: chromePage });
  const s = await assertVideoFlows(sub, "firefox→chromium");
  check(s.codec?.toLowerCase() === "video/vp8", `codec ${s.codec}`);
  await assertSamePicture(pub, sub, "firefox→chromium");
});

test("chromium-to-firefox-vp8", async () => {
  const { pub, sub } = await pubSub("c-cr-ff", { codec: "VP8", pubBrowser: chromePage, subBrowser: firefoxPage });
  const s = await assertVideoFlows(sub, "chromium→firefox");
  check(s.codec?.toLowerCase() === "video/vp8", `codec ${s.codec}`);
  await assertSamePicture(pub, sub, "chromium→firefox");
});

/** `umbra-media publish|subscribe ...`: the native SDK on the command line. */
function spawnMedia(args, label, bin = MEDIA_BIN, binVar = "UMBRA_MEDIA_BIN") {
  check(bin && fs.existsSync(bin), `${binVar} (${bin}) is not the binary`);
  const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  const out = [];
  readline.createInterface({ input: child.stdout }).on("line", (l) => out.push(l));
  const err = fs.createWriteStream(path.join(ARTIFACTS, `${label}.stderr.log`));
  child.stderr.pipe(err);
  child.on("exit", () => children.delete(child));
  return { child, out };
}

test("native-to-browser", async () => {
  const room = "d-native-browser";
  const sub = await chromePage();
  check(!(await connect(sub, { room, name: "browser", secret: SECRET })).error, "browser connect");
  const t = await demoToken(room);
  const nat = spawnMedia(["publish", "--url", baseUrl, "--api-key", t.apiKey, "--session-id", t.sessionId, "--token", t.token, "--secret", SECRET, "--duration", "40", "--name", "native"], "native-publish");
  try {
    await waitUntil("the native stream", async () => (await state(sub)).subscribers.length > 0, 20000);
    const s = await assertVideoFlows(sub, "native→browser");
    check(s.codec?.toLowerCase() === "video/vp8", `codec ${s.codec}`);
    const pic = await picture(sub, 0);
    const cs = cellStats(pic);
    say(`  native picture ${pic.width}x${pic.height}, grey mean ${cs.mean.toFixed(0)}, sd ${cs.sd.toFixed(1)}`);
    check(cs.sd > 15, `the native test pattern decodes to a flat picture (sd ${cs.sd.toFixed(1)})`);
    const lvl = await sub.ev(() => H.audioLevel(0, 2000));
    say(`  native audio level ${JSON.stringify(lvl)}`);
    check(!lvl.error && lvl.rms > 0.005, `native audio silent: ${JSON.stringify(lvl)}`);
    check((await state(sub)).subscribers[0].mismatch === 0, "no mismatch");
  } finally {
    nat.child.kill("SIGTERM");
  }
});

test("browser-to-native", async () => {
  const room = "d-browser-native";
  const pub = await chromePage();
  check(!(await connect(pub, { room, name: "browser", secret: SECRET, autoSubscribe: false })).error, "browser connect");
  check(!(await publish(pub, { codec: "VP8" })).error, "browser publish");
  const t = await demoToken(room);
  const nat = spawnMedia(["subscribe", "--url", baseUrl, "--api-key", t.apiKey, "--session-id", t.sessionId, "--token", t.token, "--secret", SECRET, "--duration", "12", "--json"], "native-subscribe");
  const [code] = await Promise.race([once(nat.child, "exit"), sleep(30000).then(() => [null])]);
  if (code === null) nat.child.kill("SIGKILL");
  const lines = nat.out.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
  say(`  native subscriber: exit ${code}, ${lines.length} stats lines, last ${JSON.stringify(lines.at(-1))}`);
  const last = lines.at(-1);
  check(last && last.frames_decoded > 60, `native subscriber decoded ${last?.frames_decoded} frames`);
  check(last.encryption === "encrypted", `native subscriber encryption: ${last.encryption}`);
  check(lines.every((l) => l.encryption !== "SECRET MISMATCH"), "native subscriber saw a mismatch");
  const grew = lines.length >= 3 && lines.at(-1).frames_decoded > lines.at(-3).frames_decoded;
  check(grew, "native frames decoded keep increasing");
});

// VP9 and H.264 between the native SDK and the browsers (native-codecs.mjs).
registerNativeCodecTests({ test, chromePage, firefoxPage, connect, publish, state, picture, cellStats, assertVideoFlows, demoToken, spawnMedia, check, say, sleep, once, SECRET, baseUrl: () => baseUrl });
// Simulcast layers, subscriber preferences, bandwidth and the active speaker (layers.mjs, issue 13).
registerLayerTests({ test, chromePage, connect, publish, state, stats, assertVideoFlows, check, say, sleep, waitUntil, SECRET, figures });
// The same with Firefox as publisher and as subscriber (firefox-layers.mjs).
registerFirefoxLayerTests({ test, chromePage, firefoxPage, connect, publish, state, stats, assertVideoFlows, check, say, sleep, waitUntil, SECRET, figures });
registerClusterTests({
  test, check, say, sleep, waitUntil, spawnMedia, SECRET, ADDR, BIN, tmp, webDir, figures, artifacts: ARTIFACTS,
  // Its own browser, whose secure origin is the cluster's load balancer.
  chromeArgs: (origin) => [...CHROME_ARGS().filter((a) => !a.startsWith("--unsafely-treat-insecure-origin-as-secure")), `--unsafely-treat-insecure-origin-as-secure=${origin}`],
});

test("browser-to-c", async () => {
  // A browser publisher and the C SDK's example subscriber (examples/c/subscriber.c): the C side
  // must decode pictures through otc_* with the same secret. Any picture counts: the browser's
  // fake camera is not the native test pattern.
  const room = "d-browser-c";
  const pub = await chromePage();
  check(!(await connect(pub, { room, name: "browser", secret: SECRET, autoSubscribe: false })).error, "browser connect");
  check(!(await publish(pub, { codec: "VP8" })).error, "browser publish");
  const t = await demoToken(room);
  const child = spawn(process.env.UMBRA_C_SUBSCRIBER, ["--url", baseUrl, "--api-key", t.apiKey, "--session-id", t.sessionId, "--token", t.token,
    "--secret", SECRET, "--any-picture", "--frames", "30", "--seconds", "40"], { stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  const out = [];
  readline.createInterface({ input: child.stdout }).on("line", (l) => out.push(l));
  child.stderr.pipe(fs.createWriteStream(path.join(ARTIFACTS, "c-subscriber.stderr.log")));
  const [code] = await Promise.race([once(child, "exit"), sleep(60000).then(() => [null])]);
  children.delete(child);
  if (code === null) child.kill("SIGKILL");
  say(`  C subscriber: exit ${code}; ${out.slice(-3).join(" | ")}`);
  check(code === 0, `C subscriber exit ${code}: ${out.slice(-5).join(" | ")}`);
});

test("signals-browser-c", async () => {
  // End-to-end encrypted signals (docs/e2ee-protocol.md §12) between the Web SDK (WebCrypto) and
  // the C SDK (the Rust core): a Chromium page with the secret, one with another secret, and the
  // C example examples/c/signals.c as receiver and as sender. Each side must get the other's
  // signal decrypted and marked encrypted; the page with another secret gets
  // signalDecryptionFailed (EncryptionSecretMismatch) for both and no signal at all.
  const room = "d-signals-browser-c";
  const watch = (p) =>
    p.ev(() => {
      H.signals = [];
      H.session.on("signal", (e) => H.signals.push({ kind: "signal", type: e.signalType, data: e.data, from: e.from?.connectionId ?? null, isEncrypted: e.isEncrypted }));
      H.session.on("signalDecryptionFailed", (e) => H.signals.push({ kind: "failed", reason: e.reason, from: e.from?.connectionId ?? null }));
    });
  const seen = (p) => p.ev(() => H.signals);
  const page = await chromePage();
  const other = await chromePage();
  check(!(await connect(page, { room, name: "browser", secret: SECRET, autoSubscribe: false })).error, "browser connect");
  check(!(await connect(other, { room, name: "other-secret", secret: OTHER, autoSubscribe: false })).error, "other browser connect");
  await watch(page);
  await watch(other);
  const cProgram = (label, args) => {
    const child = spawn(process.env.UMBRA_C_SIGNALS, args, { stdio: ["ignore", "pipe", "pipe"] });
    children.add(child);
    const out = [];
    readline.createInterface({ input: child.stdout }).on("line", (l) => out.push(l));
    child.stderr.pipe(fs.createWriteStream(path.join(ARTIFACTS, `${label}.stderr.log`)));
    child.on("exit", () => children.delete(child));
    return { child, out };
  };
  const cArgs = async (name) => {
    const t = await demoToken(room, name);
    return ["--url", baseUrl, "--api-key", t.apiKey, "--session-id", t.sessionId, "--token", t.token, "--secret", SECRET, "--seconds", "40"];
  };
  const receiver = cProgram("c-signals-receiver", [...(await cArgs("c-receiver")), "--expect-encrypted", "from-browser:hello from Chromium",
    "--expect-encrypted", "from-c:hello from C"]);
  await waitUntil("the C receiver connected", async () => receiver.out.includes("connected"), 30000);
  const browserId = await page.ev(() => H.session.connection.connectionId);
  const sent = await page.ev(() => H.session.signal({ type: "from-browser", data: "hello from Chromium" }).then(() => null, (e) => e.name));
  check(sent === null, `browser signal(): ${sent}`);
  const sender = cProgram("c-signals-sender", [...(await cArgs("c-sender")), "--peers", "3", "--send", "from-c:hello from C", "--expect-encrypted", "from-c:hello from C"]);
  const exits = await Promise.all([receiver, sender].map((c) => Promise.race([once(c.child, "exit"), sleep(60000).then(() => [null])])));
  say(`  C receiver: exit ${exits[0][0]}; ${receiver.out.join(" | ")}`);
  say(`  C sender: exit ${exits[1][0]}; ${sender.out.join(" | ")}`);
  check(exits[0][0] === 0, "the C receiver did not get both signals decrypted and marked encrypted");
  check(exits[1][0] === 0, "the C sender failed");
  await waitUntil("the C signal in the browser", async () => (await seen(page)).some((x) => x.type === "from-c"), 10000);
  const mine = await seen(page);
  say(`  browser saw ${JSON.stringify(mine)}`);
  check(mine.every((x) => x.kind === "signal" && x.isEncrypted === true), "a signal not marked encrypted, or a failure, with the right secret");
  check(mine.some((x) => x.type === "from-c" && x.data === "hello from C"), "the C signal");
  check(mine.some((x) => x.type === "from-browser" && x.data === "hello from Chromium" && x.from === browserId), "its own signal back");
  await waitUntil("two failures with another secret", async () => (await seen(other)).length >= 2, 10000);
  const theirs = await seen(other);
  say(`  other-secret browser saw ${JSON.stringify(theirs)}`);
  check(theirs.every((x) => x.kind === "failed" && x.reason === "EncryptionSecretMismatch"), "another secret must only see EncryptionSecretMismatch");
});

// A native publisher that declares E2EE but sends plain VP8/Opus (umbra-client's TEST-ONLY
// plaintext-publisher example) and a browser subscriber with the right secret: exactly one
// `streamNotEncrypted` (and OT_STREAM_NOT_ENCRYPTED to the subscribe callback), never a mismatch,
// nothing decoded or shown although the plain media arrives. The contrast (its own test, so that
// a failure says which verdict went wrong): an honest native publisher (`umbra-media publish`)
// with another secret is one mismatch, never "not encrypted".

/** What the page saw of one subscriber, and of all its inbound video, after `settleMs` more. */
async function verdicts(sub, streamId, settleMs = 3000) {
  await sleep(settleMs); // the verdict must stay single while plain or foreign frames keep coming
  const st = await state(sub);
  const i = st.subscribers.findIndex((x) => x.streamId === streamId);
  const r = st.subscribers[i];
  const video = (await stats(sub)).inbound.filter((x) => x.kind === "video");
  const out = {
    ...r,
    pic: await picture(sub, i),
    videoTracks: video.length,
    packets: video.reduce((a, x) => a + x.packets, 0),
    decoded: video.reduce((a, x) => a + x.framesDecoded, 0),
  };
  say(`  ${JSON.stringify({ notEncrypted: r.notEncrypted, errors: r.notEncryptedErrors.map((e) => e?.name), mismatch: r.mismatch, match: r.match, subscribeError: r.subscribeError?.name, exceptions: r.subscriberExceptions, presented: r.frames, width: r.width, picture: !!out.pic })}`);
  say(`  inbound video: ${out.videoTracks} tracks, ${out.packets} packets, ${out.decoded} frames decoded`);
  say(`  worker events: ${st.workerEvents.map((e) => `${e.t} ${e.transformId} ${e.codec} ${e.event}`).join("; ")}`);
  return out;
}

/** Nothing of the stream is shown although its media arrives: no frame decoded or presented, no picture. */
function assertNothingShown(v) {
  check(v.videoTracks >= 1 && v.packets > 50, `the media did not reach the browser (${v.videoTracks} video tracks, ${v.packets} packets)`);
  check(v.decoded === 0, `${v.decoded} frames decoded`);
  check(v.frames === 0 && v.width === 0, `${v.frames} frames presented, ${v.width} px wide`);
  check(v.pic === null, "a picture is shown");
}

for (const [kind, newPage] of [["chromium", chromePage], ["firefox", firefoxPage]]) {
  test(`plaintext-native-to-${kind}`, async () => {
    const room = `e-plaintext-${kind}`;
    const sub = await newPage();
    check(!(await connect(sub, { room, name: "browser", secret: SECRET })).error, "browser connect");
    const tp = await demoToken(room, "plaintext");
    const liar = spawnMedia(["--url", baseUrl, "--api-key", tp.apiKey, "--session-id", tp.sessionId, "--token", tp.token, "--secret", SECRET, "--seconds", "60"],
      `plaintext-publisher-${kind}`, PLAINTEXT_PUB, "UMBRA_PLAINTEXT_PUB");
    try {
      const liarExit = once(liar.child, "exit").then(([c]) => { throw new Failure(`plaintext-publisher exited with ${c}: ${liar.out.join(" | ")}`); });
      liarExit.catch(() => {});
      const streamId = await Promise.race([
        waitUntil("the plaintext publisher's stream id", async () => liar.out.map((l) => /publishing ([^\s,]+)/.exec(l)?.[1]).find(Boolean), 20000),
        liarExit,
      ]);
      await waitUntil("the browser to subscribe to the plaintext stream", async () => (await state(sub)).subscribers.some((x) => x.streamId === streamId), 15000);
      await waitUntil("a verdict on the plaintext stream", async () => {
        const r = (await state(sub)).subscribers.find((x) => x.streamId === streamId);
        return r.notEncrypted + r.mismatch > 0;
      }, 15000, 100);
      const v = await verdicts(sub, streamId);
      check(v.notEncrypted === 1, `streamNotEncrypted fired ${v.notEncrypted} times`);
      check(v.notEncryptedErrors[0]?.name === "OT_STREAM_NOT_ENCRYPTED", `streamNotEncrypted error: ${JSON.stringify(v.notEncryptedErrors)}`);
      check(v.subscribeError?.name === "OT_STREAM_NOT_ENCRYPTED", `subscribe callback: ${JSON.stringify(v.subscribeError)}`);
      check(v.mismatch === 0 && v.match === 0, `plaintext stream: encryptionSecretMismatch ${v.mismatch}, encryptionSecretMatch ${v.match}`);
      check(v.subscriberExceptions.length === 0, `subscriber exceptions: ${JSON.stringify(v.subscriberExceptions)}`);
      assertNothingShown(v);
      check(liar.child.exitCode === null, `plaintext-publisher exited early: ${liar.out.join(" | ")}`);
    } finally {
      liar.child.kill("SIGTERM");
    }
  });

  test(`native-other-secret-to-${kind}`, async () => {
    const room = `e-other-secret-${kind}`;
    const sub = await newPage();
    check(!(await connect(sub, { room, name: "browser", secret: SECRET })).error, "browser connect");
    const th = await demoToken(room, "honest");
    const honest = spawnMedia(["publish", "--url", baseUrl, "--api-key", th.apiKey, "--session-id", th.sessionId, "--token", th.token, "--secret", OTHER, "--duration", "60", "--name", "honest"],
      `other-secret-publisher-${kind}`);
    try {
      await waitUntil("the browser to subscribe to the native stream", async () => (await state(sub)).subscribers.length === 1, 20000);
      const streamId = (await state(sub)).subscribers[0].streamId;
      await waitUntil("a verdict on the native stream", async () => {
        const r = (await state(sub)).subscribers[0];
        return r.notEncrypted + r.mismatch > 0;
      }, 15000, 100);
      const v = await verdicts(sub, streamId);
      check(v.notEncrypted === 0, `an encrypting publisher with another secret was reported as not encrypted (streamNotEncrypted ${v.notEncrypted}; see the worker events above)`);
      check(v.mismatch === 1 && v.match === 0, `encryptionSecretMismatch ${v.mismatch}, encryptionSecretMatch ${v.match}`);
      check(v.subscribeError?.name === "OT_ENCRYPTION_SECRET_MISMATCH", `subscribe callback: ${JSON.stringify(v.subscribeError)}`);
      check(v.subscriberExceptions.length === 0, `subscriber exceptions: ${JSON.stringify(v.subscriberExceptions)}`);
      assertNothingShown(v);
    } finally {
      honest.child.kill("SIGTERM");
    }
  });
}

test("late-joiner-150", async () => {
  // A RELAYED session (publishes carry no SDP) filled by protocol-level participants
  // (test/crowd.ts: Node WebSocket clients sending connect/publish typed with the generated
  // ClientMessage): 150 connections and 120 streams, more than one welcome holds (100 of each,
  // then snapshot pages). Chromium then joins with the Web SDK and must report each exactly once,
  // then the crowd's later connection and unpublish.
  const { Crowd, createSession, clientToken } = await import("./build/crowd.mjs");
  const { api_key: apiKey, api_secret: apiSecret } = restProject;
  const sessionId = await createSession(baseUrl, apiKey, apiSecret, "p2p.preference=enabled");
  const started = Date.now();
  const crowd = await Crowd.gather({ signalingUrl: `${baseUrl.replace(/^http/, "ws")}/v1/signaling`, sessionId, apiKey, apiSecret, connections: 150, streams: 120 });
  try {
    say(`  crowd: ${crowd.connectionIds.length} connections, ${crowd.streamIds.length} streams in ${Date.now() - started} ms`);
    const p = await chromePage();
    const r = await p.ev((o) => H.observe(o), { apiKey, sessionId, token: clientToken(apiKey, apiSecret, sessionId, "chromium late joiner") });
    check(!r.error, `connect: ${JSON.stringify(r.error)}`);
    const seen = () => p.ev(() => H.seen);
    await waitUntil("every connection and stream announced", async () => {
      const s = await seen();
      return s.connectionCreated.length >= 150 && s.streamCreated.length >= 120;
    }, 20000, 100);
    await sleep(500); // a duplicate or an extra announcement would arrive by now
    const sameSet = (a, b) => a.length === b.length && new Set(a).size === a.length && [...b].every((x) => a.includes(x));
    let s = await seen();
    say(`  chromium: sessionConnected with ${s.sessionConnected.connections.length} connections / ${s.sessionConnected.streams.length} streams; ` +
      `${s.connectionCreated.length} connectionCreated, ${s.streamCreated.length} streamCreated`);
    check(s.connectionCreated.length === 150, `${s.connectionCreated.length} connectionCreated for 150 connections`);
    check(sameSet(s.connectionCreated, crowd.connectionIds), "connectionCreated ids are not the crowd's connections");
    check(s.streamCreated.length === 120, `${s.streamCreated.length} streamCreated for 120 streams`);
    check(sameSet(s.streamCreated, crowd.streamIds), "streamCreated ids are not the crowd's streams");
    check(sameSet(s.sessionConnected.connections, crowd.connectionIds) && sameSet(s.sessionConnected.streams, crowd.streamIds), "sessionConnected does not list the whole session");
    check(!s.connectionCreated.includes(r.connectionId), "its own connection was announced as another's");
    // Later events: one more connection; one stream unpublished.
    const newcomer = await crowd.add();
    await waitUntil("the newcomer's connectionCreated", async () => (await seen()).connectionCreated.includes(newcomer.connectionId), 10000, 50);
    const owner = crowd.members[42];
    const gone = owner.streams[0];
    await owner.unpublish(gone);
    await waitUntil("streamDestroyed", async () => (await seen()).streamDestroyed.length > 0, 10000, 50);
    await sleep(300);
    s = await seen();
    say(`  later: connectionCreated ${s.connectionCreated.length} (newcomer ${s.connectionCreated.at(-1) === newcomer.connectionId ? "last" : "not last"}), streamDestroyed ${JSON.stringify(s.streamDestroyed)}`);
    check(s.connectionCreated.length === 151 && new Set(s.connectionCreated).size === 151, `${s.connectionCreated.length} connectionCreated after the newcomer`);
    check(JSON.stringify(s.streamDestroyed) === JSON.stringify([`${gone}:unpublished`]), `streamDestroyed: ${JSON.stringify(s.streamDestroyed)}`);
    check(s.streamCreated.length === 120 && s.connectionDestroyed.length === 0, "no other event");
  } finally {
    crowd.leave();
  }
}, 120000);

test("demo-app", async () => {
  const room = "g-demo";
  const join = async (name, secret) => {
    const p = await chromePage(`/?room=${room}`, { width: 1280, height: 800 });
    await p.page.fill("#name", name);
    await p.page.fill("#secret", secret);
    await p.page.click("#join");
    await p.page.waitForSelector('.tile[data-key="self"][data-state="encrypted"]', { timeout: 20000 });
    return p;
  };
  const tileStates = (p) => p.ev(() => [...document.querySelectorAll(".tile:not([data-key=self])")].map((t) => ({
    name: t.querySelector(".who")?.textContent,
    state: t.dataset.state,
    lock: !!t.querySelector(".badge-lock"),
    banner: t.querySelector(".banner-mismatch")?.textContent.trim().replace(/\s+/g, " ") ?? null,
    playing: (t.querySelector("video")?.videoWidth ?? 0) > 0,
  })));
  const ada = await join("Ada", SECRET);
  const bob = await join("Bob", SECRET);
  for (const [p, other] of [[ada, "Bob"], [bob, "Ada"]]) {
    await waitUntil(`${other}'s tile with the lock badge`, async () => (await tileStates(p)).some((t) => t.name === other && t.lock && t.playing), 20000, 200);
  }
  const eve = await join("Eve", OTHER);
  await waitUntil("Eve's two mismatch banners", async () => {
    const ts = await tileStates(eve);
    return ts.length === 2 && ts.every((t) => t.state === "mismatch" && t.banner && !t.lock);
  }, 20000, 200);
  await waitUntil("Ada's banner on Eve's tile", async () => (await tileStates(ada)).some((t) => t.name === "Eve" && t.state === "mismatch"), 20000, 200);
  const states = { ada: await tileStates(ada), bob: await tileStates(bob), eve: await tileStates(eve) };
  say(`  tiles: ${JSON.stringify(states)}`);
  check(states.ada.find((t) => t.name === "Bob").lock, "Ada sees Bob with the lock badge");
  check(/different secret/.test(states.eve[0].banner), `banner text: ${states.eve[0].banner}`);
  for (const [n, p] of [["ada", ada], ["bob", bob], ["eve", eve]]) await p.page.screenshot({ path: path.join(ARTIFACTS, `demo-${n}.png`) });
  // Eve changes her secret live to the right one: her banners turn into lock badges.
  await eve.page.click("#change-secret");
  await eve.page.fill("#new-secret", SECRET);
  await eve.page.click("#secret-apply");
  await waitUntil("Eve decrypting after the secret change", async () => {
    const ts = await tileStates(eve);
    return ts.length === 2 && ts.every((t) => t.state === "encrypted" && t.lock && !t.banner);
  }, 10000, 100);
  await waitUntil("Ada decrypting Eve after her change", async () => (await tileStates(ada)).some((t) => t.name === "Eve" && t.lock), 10000, 100);
  await eve.page.screenshot({ path: path.join(ARTIFACTS, "demo-eve-after-secret-change.png") });
  // Leave: the others' tiles for Eve go away.
  await eve.page.click("#leave");
  await waitUntil("Eve's tile gone at Ada", async () => !(await tileStates(ada)).some((t) => t.name === "Eve"), 10000, 100);
  check(await eve.page.isVisible("#join-view"), "Eve is back on the join screen");
}, 120000);

// Figures (not assertions): run with --bench.
const bench = (name, fn, timeoutMs = 180000) => tests.push({ name, fn, timeoutMs, bench: true });
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : NaN;
};

bench("bench-worker-crypto-vp8-720p", async () => {
  const room = "bench-crypto";
  const pub = await chromePage();
  const sub = await chromePage();
  check(!(await connect(pub, { room, name: "pub", secret: SECRET, autoSubscribe: false })).error, "connect");
  check(!(await connect(sub, { room, name: "sub", secret: SECRET })).error, "connect");
  check(!(await publish(pub, { codec: "VP8", resolution: "1280x720", audio: false })).error, "publish");
  await assertVideoFlows(sub, "720p");
  await sleep(15000);
  const out = (await stats(pub)).outbound.find((x) => x.kind === "video");
  const e = await pub.ev(() => H.workerTimings());
  const d = await sub.ev(() => H.workerTimings());
  const f = {
    sentWidth: out?.frameWidth,
    encryptFrames: e.encrypt.length,
    encryptMedianMs: pct(e.encrypt, 50),
    encryptP99Ms: pct(e.encrypt, 99),
    encryptMeanBytes: Math.round(e.encryptBytes.reduce((a, x) => a + x, 0) / (e.encryptBytes.length || 1)),
    decryptFrames: d.decrypt.length,
    decryptMedianMs: pct(d.decrypt, 50),
    decryptP99Ms: pct(d.decrypt, 99),
  };
  say(`  worker crypto, VP8 ${out?.frameWidth}px: ${JSON.stringify(f)}`);
  figures.workerCrypto = f;
  check(f.encryptFrames > 100 && f.decryptFrames > 100, "enough frames measured");
});

/**
 * CPU seconds of a process tree, in total and per thread name (`comm`), from each thread's
 * scheduler runtime (/proc/PID/task/TID/schedstat, nanoseconds): the tick-sampled utime/stime
 * misattribute work that wakes in step with the 100 Hz tick, as 20 and 50 frames a second do.
 * Threads that ended inside the window are missed (none do while a page publishes).
 */
function treeCpu(rootPid) {
  const procs = new Map();
  for (const d of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, "utf8");
      procs.set(Number(d), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch {}
  }
  const inTree = (pid) => {
    for (let p = pid, i = 0; p > 1 && i < 50; i++) {
      if (p === rootPid) return true;
      p = procs.get(p) ?? 0;
    }
    return false;
  };
  let total = 0;
  const byThread = {};
  for (const pid of procs.keys()) {
    if (!inTree(pid)) continue;
    let tasks = [];
    try {
      tasks = fs.readdirSync(`/proc/${pid}/task`);
    } catch {}
    for (const tid of tasks) {
      try {
        const secs = Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]) / 1e9;
        const name = fs.readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8").trim().replace(/[0-9]+$/, "#");
        total += secs;
        byThread[name] = (byThread[name] ?? 0) + secs;
      } catch {}
    }
  }
  return { total, byThread };
}

/**
 * Worker scripts attached as RTCRtpScriptTransforms to a session without E2EE, to split the cost
 * of E2EE into its layers. `passthrough` is the browser's own cost of an encoded transform. Each
 * counts the transforms it got and (but for `passthrough`) the frames it saw.
 */
const CPU_PROBES = {
  passthrough: `onrtctransform = (e) => { attached++; e.transformer.readable.pipeTo(e.transformer.writable); };`,
  // + a JS TransformStream per frame
  stream: `onrtctransform = (e) => { attached++; e.transformer.readable
    .pipeThrough(new TransformStream({ transform(f, c) { frames++; c.enqueue(f); } }))
    .pipeTo(e.transformer.writable); };`,
  // + reading and replacing the frame's bytes and its metadata
  copy: `onrtctransform = (e) => { attached++; e.transformer.readable
    .pipeThrough(new TransformStream({ transform(f, c) {
      frames++;
      f.getMetadata();
      const d = new Uint8Array(f.data);
      const o = new Uint8Array(d.length + 16);
      o.set(d);
      f.data = o.buffer;
      c.enqueue(f);
    } }))
    .pipeTo(e.transformer.writable); };`,
  // + the two WebCrypto calls of suite 6 (AES-CTR, then HMAC-SHA-512 over the result)
  webcrypto: `const keys = (async () => {
      const raw = crypto.getRandomValues(new Uint8Array(32));
      return [await crypto.subtle.importKey("raw", raw, "AES-CTR", false, ["encrypt"]),
              await crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-512" }, false, ["sign"])];
    })();
    const counter = new Uint8Array(16);
    onrtctransform = (e) => { attached++; e.transformer.readable
    .pipeThrough(new TransformStream({ async transform(f, c) {
      frames++;
      const [aes, mac] = await keys;
      f.getMetadata();
      const d = new Uint8Array(f.data);
      const ct = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-CTR", counter, length: 32 }, aes, d));
      const tag = new Uint8Array(await crypto.subtle.sign("HMAC", mac, ct), 0, 10);
      const o = new Uint8Array(d.length + 16);
      o.set(ct);
      o.set(tag, ct.length);
      f.data = o.buffer;
      c.enqueue(f);
    } }))
    .pipeTo(e.transformer.writable); };`,
};

/**
 * A 1280x720 30 fps clip whose encoding costs what a camera's does, unlike the fake device's
 * flat picture: detail, motion everywhere (a slow fractal zoom under moving gradients) and
 * per-frame sensor-like noise. Made once with ffmpeg; Chromium loops it.
 */
function cameraLikeClip() {
  const clip = path.join(os.tmpdir(), "umbra-bench-camera-like-1280x720.y4m");
  if (fs.existsSync(clip)) return clip;
  const r = spawnSync("ffmpeg", ["-v", "error", "-y",
    "-f", "lavfi", "-i", "mandelbrot=size=1280x720:rate=30:start_scale=3:end_scale=0.3:maxiter=256",
    "-f", "lavfi", "-i", "gradients=size=1280x720:rate=30:speed=0.02",
    "-filter_complex", "[0][1]blend=all_mode=overlay:all_opacity=0.6,noise=alls=12:allf=t,format=yuv420p",
    "-t", "10", "-f", "yuv4mpegpipe", `${clip}.part`], { stdio: "inherit" });
  if (r.status !== 0) throw new Failure(`ffmpeg could not make the camera-like clip (${r.error?.message ?? `exit status ${r.status}`}; is ffmpeg installed?)`);
  fs.renameSync(`${clip}.part`, clip);
  return clip;
}

bench("bench-publisher-cpu", async () => {
  const result = {};
  // Modes: "plain" (no E2EE), "e2ee" (the SDK's), or one of CPU_PROBES.
  const modes = (process.env.UMBRA_BT_CPU_MODES ?? "plain,passthrough,e2ee").split(",");
  const rounds = Number(process.env.UMBRA_BT_CPU_ROUNDS ?? 2);
  // Rounds alternate the order (ABC, CBA, ...) so that a drift of the machine's speed during the
  // run, which is common on a shared host, does not favour the modes that come first.
  const order = Array.from({ length: rounds }, (_, i) => (i % 2 === 0 ? modes : [...modes].reverse())).flat();
  for (const mode of order) {
    const e2ee = mode === "e2ee";
    // UMBRA_BT_CPU_PROFILE=dir: also a V8 CPU profile of the transform worker (.cpuprofile).
    const profileDir = process.env.UMBRA_BT_CPU_PROFILE;
    const debugArgs = profileDir ? ["--remote-debugging-port=9333"] : [];
    const sourceArgs = process.env.UMBRA_BT_CPU_SOURCE === "camera-like" ? [`--use-file-for-fake-video-capture=${cameraLikeClip()}`] : [];
    const server = await chromium.launchServer({ executablePath: process.env.UMBRA_CHROMIUM || "/usr/bin/chromium", headless: true, args: [...CHROME_ARGS(), ...debugArgs, ...sourceArgs] });
    try {
      const b = await chromium.connect(server.wsEndpoint());
      const page = await (await b.newContext()).newPage();
      await page.goto(baseUrl + "/demo/harness.html");
      const p = { page, ev: (fn, arg) => page.evaluate(fn, arg) };
      const room = `bench-cpu-${e2ee}-${Math.random()}`;
      const c = await connect(p, { room, name: "pub", secret: e2ee ? SECRET : undefined, autoSubscribe: false, e2ee });
      check(!c.error, `connect: ${JSON.stringify(c.error)}`);
      if (CPU_PROBES[mode]) {
        // The probe's transform goes on each sender as the SDK creates it, before negotiation
        // (a transform set on a sender that already sends gets no frames in Chromium).
        await p.ev((src) => {
          const w = new Worker(URL.createObjectURL(new Blob([src], { type: "text/javascript" })));
          window.__probe = w;
          const add = RTCPeerConnection.prototype.addTransceiver;
          RTCPeerConnection.prototype.addTransceiver = function (...args) {
            const t = add.apply(this, args);
            t.sender.transform = new RTCRtpScriptTransform(w, {});
            return t;
          };
        }, `let frames = 0, attached = 0; onmessage = () => postMessage({ frames, attached });\n${CPU_PROBES[mode]}`);
      }
      check(!(await publish(p, { codec: "VP8", resolution: "1280x720", audio: process.env.UMBRA_BT_CPU_AUDIO !== "0" })).error, "publish");
      // Chromium otherwise switches between 1280 and 960 pixels wide by its CPU adaptation, and
      // the encoder's cost with it, which would swamp the difference measured here.
      const pinned = await p.ev(async () => {
        let n = 0;
        for (const pc of window.__pcs) {
          for (const s of pc.getSenders()) {
            if (s.track?.kind !== "video") continue;
            await s.setParameters({ ...s.getParameters(), degradationPreference: "maintain-resolution" });
            n++;
          }
        }
        return n;
      });
      check(pinned > 0, "video sender found");
      await sleep(5000);
      let profiler = null;
      if (profileDir && mode !== "plain") {
        const pb = await puppeteer.connect({ browserURL: "http://127.0.0.1:9333", protocolTimeout: 60000 });
        let worker = null;
        for (let i = 0; i < 50 && !worker; i++) {
          for (const pg of await pb.pages()) worker ??= pg.workers().find((w) => !w.url().startsWith("blob:") || CPU_PROBES[mode]) ?? null;
          if (!worker) await sleep(100);
        }
        check(worker, "a worker to profile");
        const cdp = worker.client;
        await cdp.send("Profiler.enable");
        await cdp.send("Profiler.setSamplingInterval", { interval: 100 });
        await cdp.send("Profiler.start");
        profiler = { pb, cdp };
      }
      const pid = server.process().pid;
      const c0 = treeCpu(pid);
      const s0 = (await stats(p)).outbound.find((x) => x.kind === "video");
      const w0 = Date.now();
      await sleep(15000);
      const c1 = treeCpu(pid);
      if (profiler) {
        const { profile } = await profiler.cdp.send("Profiler.stop");
        fs.mkdirSync(profileDir, { recursive: true });
        fs.writeFileSync(path.join(profileDir, `${mode}-${Date.now()}.cpuprofile`), JSON.stringify(profile));
        await profiler.pb.disconnect();
      }
      const s1 = (await stats(p)).outbound.find((x) => x.kind === "video");
      if (CPU_PROBES[mode]) {
        const seen = await p.ev(() => new Promise((res) => { window.__probe.onmessage = (e) => res(e.data); window.__probe.postMessage(0); }));
        check(seen.attached > 0 && (mode === "passthrough" || seen.frames > 100), `the ${mode} probe got no frames: ${JSON.stringify(seen)}`);
        check((s1.bytes - s0.bytes) > 100_000, `media left the ${mode} probe's page`);
      }
      const secs = (Date.now() - w0) / 1000;
      const cpu = (100 * (c1.total - c0.total)) / secs;
      const threads = Object.entries(c1.byThread)
        .map(([name, t]) => [name, (100 * (t - (c0.byThread[name] ?? 0))) / secs])
        .filter(([, v]) => v >= 0.2)
        .sort((x, y) => y[1] - x[1]);
      say(`    by thread: ${threads.map(([n, v]) => `${n} ${v.toFixed(1)}`).join(", ")}`);
      const fps = (s1.framesEncoded - s0.framesEncoded) / secs;
      say(`  publisher ${mode}: ${cpu.toFixed(1)}% CPU (of one core), ${fps.toFixed(1)} fps at ${s1.frameWidth}px, ${(8 * (s1.bytes - s0.bytes) / secs / 1000).toFixed(0)} kb/s`);
      const worker = threads.find(([n]) => n === "DedicatedWorker")?.[1] ?? 0;
      (result[mode] ??= []).push({ cpu: +cpu.toFixed(2), worker: +worker.toFixed(2), fps: +fps.toFixed(1), width: s1.frameWidth, kbps: Math.round((8 * (s1.bytes - s0.bytes)) / secs / 1000) });
      await b.close();
    } finally {
      await server.close();
    }
  }
  const mean = (xs) => xs.reduce((a, x) => a + x, 0) / xs.length;
  const sem = (xs) => (xs.length > 1 ? Math.sqrt(xs.reduce((a, x) => a + (x - mean(xs)) ** 2, 0) / (xs.length - 1) / xs.length) : NaN);
  const plain = result.plain ? mean(result.plain.map((r) => r.cpu)) : NaN;
  for (const [mode, runs] of Object.entries(result)) {
    const cpus = runs.map((r) => r.cpu);
    let over = "";
    if (mode !== "plain" && result.plain) {
      // Paired by round: each round's difference to that round's plain run.
      const diffs = runs.map((r, i) => r.cpu - result.plain[i].cpu);
      const d = mean(diffs);
      over = `; over plain ${d >= 0 ? "+" : ""}${d.toFixed(2)} ± ${sem(diffs).toFixed(2)} points (paired by round) = ${((100 * d) / plain).toFixed(1)} %`;
    }
    say(`  ${mode}: ${mean(cpus).toFixed(2)} ± ${sem(cpus).toFixed(2)} % of a core (mean ± s.e., ${runs.length} runs), worker thread ${mean(runs.map((r) => r.worker)).toFixed(2)}${over}`);
  }
  figures.publisherCpu = result;
}, 1_200_000);

// What a frame's work costs a worker thread when it comes every 10 ms, as frames do (caches and
// the thread are cold again each time): runtime of the browser's threads per iteration, for a
// timer task alone and with WebCrypto calls on a 1.7 KB frame.
bench("bench-worker-task-costs", async () => {
  const server = await chromium.launchServer({ executablePath: process.env.UMBRA_CHROMIUM || "/usr/bin/chromium", headless: true, args: CHROME_ARGS() });
  try {
    const b = await chromium.connect(server.wsEndpoint());
    const page = await (await b.newContext()).newPage();
    await page.goto(baseUrl + "/demo/harness.html");
    const src = `onmessage = async (e) => {
      const [mode, n] = e.data;
      const raw = crypto.getRandomValues(new Uint8Array(32));
      const aes = await crypto.subtle.importKey("raw", raw, "AES-CTR", false, ["encrypt"]);
      const mac = await crypto.subtle.importKey("raw", new Uint8Array(64), { name: "HMAC", hash: "SHA-512" }, false, ["sign"]);
      const d = crypto.getRandomValues(new Uint8Array(1700));
      const counter = new Uint8Array(16);
      for (let i = 0; i < n; i++) {
        await new Promise((r) => setTimeout(r, 10));
        if (mode !== "timer") await crypto.subtle.sign("HMAC", mac, d);
        if (mode === "two calls") await crypto.subtle.encrypt({ name: "AES-CTR", counter, length: 32 }, aes, d);
      }
      postMessage("done");
    };`;
    const w = await page.evaluateHandle((src) => new Worker(URL.createObjectURL(new Blob([src], { type: "text/javascript" }))), src);
    const pid = server.process().pid;
    const n = 1000;
    const perIteration = {};
    for (const round of [0, 1]) {
      for (const mode of ["timer", "one call", "two calls"]) {
        const c0 = treeCpu(pid).total;
        await page.evaluate(([w, m, n]) => new Promise((res) => { w.onmessage = () => res(); w.postMessage([m, n]); }), [w, mode, n]);
        const us = ((treeCpu(pid).total - c0) * 1e6) / n;
        if (round === 1) perIteration[mode] = Math.round(us); // round 0 warms up
      }
    }
    say(`  worker task costs (µs of CPU per iteration): ${JSON.stringify(perIteration)}`);
    figures.workerTaskCosts = perIteration;
    check(perIteration["two calls"] > perIteration.timer, "WebCrypto calls cost something");
    await b.close();
  } finally {
    await server.close();
  }
});

bench("bench-secret-to-match", async () => {
  const { pub, sub } = await pubSub("bench-rekey", { audio: false });
  await assertVideoFlows(sub, "before");
  const times = [];
  let current = SECRET;
  for (let i = 0; i < 5; i++) {
    // The publisher moves to a new secret; the subscriber follows after the mismatch.
    const next = `rotation secret number ${i}`;
    await pub.ev((s) => H.setSecret(s), next);
    const before = (await state(sub)).subscribers[0].match;
    await waitUntil("mismatch", async () => (await state(sub)).subscribers[0].mismatch > i, 15000, 50);
    const r = await sub.ev((s) => H.setSecret(s), next);
    await waitUntil("match", async () => (await state(sub)).subscribers[0].match > before, 5000, 10);
    const st = (await state(sub)).subscribers[0];
    times.push(st.matchAt.at(-1) - r.t0);
    current = next;
  }
  say(`  setEncryptionSecret → encryptionSecretMatch: ${times.map((t) => t.toFixed(0)).join(", ")} ms`);
  figures.secretToMatchRotations = times.map((t) => +t.toFixed(0));
});

// ---------------------------------------------------------------------------------------------
async function main() {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await startServer();
  const BENCH = args.includes("--bench");
  const selected = tests.filter((t) => (ONLY ? ONLY.includes(t.name) : !t.bench || BENCH) && !SKIP.includes(t.name));
  const results = [];
  for (const t of selected) {
    const started = Date.now();
    say(`▶ ${t.name}`);
    let error = null;
    let timer;
    try {
      await Promise.race([t.fn(), new Promise((_, rej) => { timer = setTimeout(() => rej(new Failure(`test timed out after ${t.timeoutMs} ms`)), t.timeoutMs); })]);
    } catch (e) {
      error = e;
    } finally {
      clearTimeout(timer);
    }
    if (error) {
      for (const [i, p] of [...pages].entries()) {
        await p.page.screenshot({ path: path.join(ARTIFACTS, `${t.name}-failed-${i}-${p.kind}.png`) }).catch(() => {});
      }
    }
    await closeAll();
    const secs = ((Date.now() - started) / 1000).toFixed(1);
    if (error) say(`✗ ${t.name} (${secs} s): ${error instanceof Failure ? error.message : error.stack}`);
    else say(`✓ ${t.name} (${secs} s)`);
    results.push({ name: t.name, ok: !error, secs });
  }
  if (Object.keys(figures).length) say("figures:", JSON.stringify(figures));
  const failed = results.filter((r) => !r.ok);
  say(`${results.length - failed.length}/${results.length} passed${failed.length ? "; failed: " + failed.map((r) => r.name).join(", ") : ""}`);
  return failed.length === 0;
}

let ok = false;
process.on("SIGTERM", () => {
  for (const c of children) c.kill("SIGKILL");
  process.exit(1);
});
try {
  ok = await main();
} catch (e) {
  say("harness failure:", e.stack ?? e);
} finally {
  await closeAll();
  await chrome?.close().catch(() => {});
  await firefox?.close().catch(() => {});
  for (const c of children) c.kill("SIGTERM");
  await sleep(300);
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  fs.rmSync(tmp, { recursive: true, force: true });
}
process.exit(ok ? 0 : 1);

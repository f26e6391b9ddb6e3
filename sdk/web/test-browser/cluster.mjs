// Cluster failover with the Web SDK (issue 14): three `umbra serve` nodes on the test's own
// PostgreSQL and Redis (inside the test's network namespace), behind a TCP load balancer of this
// runner. A native publisher (umbra-media) and a Chromium publisher send end-to-end encrypted
// media; a Chromium subscriber receives both, everyone through the load balancer. The node that
// hosts the session is killed (SIGKILL): the clients resume through the same address, a live node
// takes the session over and sends media_restart, and the Web SDK moves both its Publisher and
// its Subscribers to the new router with nothing asked of the app. Frames must be presented
// again within 5 s, with no encryptionSecretMismatch, no destroyed or streamDestroyed and no
// exception. A Web publisher whose SFrame counter restarted under its key would have its frames
// dropped as replays by the subscriber (whose worker keeps its replay window), so frames flowing
// again from the Chromium publisher also show the counter went on.
//
// run.mjs registers this with its own helpers.
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { chromium } from "playwright-core";

/** @param {object} h run.mjs's test helpers. */
export function registerClusterTests(h) {
  const { test, check, say, sleep, waitUntil, spawnMedia, SECRET, ADDR, BIN, tmp, webDir, chromeArgs } = h;

  const run = (cmd, args, opts = {}) => {
    const r = spawnSync(cmd, args, { encoding: "utf8", ...opts });
    check(r.status === 0, `${cmd} ${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
  };
  const freePort = () => new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

  /** PostgreSQL of the test's own (as the postgres user when root: it refuses to run as root). */
  async function startPostgres(dir) {
    const versions = fs.existsSync("/usr/lib/postgresql") ? fs.readdirSync("/usr/lib/postgresql").sort() : [];
    check(versions.length > 0, "PostgreSQL is not installed (scripts/install-deps.sh --tests)");
    const bin = path.join("/usr/lib/postgresql", versions.at(-1), "bin");
    const root = process.getuid?.() === 0;
    const as = (tool, args) => (root ? run("runuser", ["-u", "postgres", "--", path.join(bin, tool), ...args], { cwd: dir }) : run(path.join(bin, tool), args, { cwd: dir }));
    fs.mkdirSync(dir, { recursive: true });
    if (root) run("chown", ["-R", "postgres:postgres", dir]);
    const port = await freePort();
    const data = path.join(dir, "data");
    as("initdb", ["-D", data, "-U", "umbra", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"]);
    as("pg_ctl", ["-D", data, "-l", path.join(dir, "log"), "-w", "-t", "60", "-o", `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`, "start"]);
    as("createdb", ["-h", "127.0.0.1", "-p", String(port), "-U", "umbra", "umbra_cluster"]);
    return { url: `postgres://umbra@127.0.0.1:${port}/umbra_cluster?sslmode=disable`, stop: () => spawnSync(...(root ? ["runuser", ["-u", "postgres", "--", path.join(bin, "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop"]] : [path.join(bin, "pg_ctl"), ["-D", data, "-m", "immediate", "-w", "stop"]])) };
  }

  async function startNode(id, database, redisUrl, logDir) {
    const child = spawn(
      BIN,
      ["--data-dir", path.join(tmp, `node-${id}`), "--database", database, "serve", "--listen", `${ADDR}:0`, "--media-bind", `${ADDR}:0`,
        "--web-dir", webDir, "--redis", redisUrl, "--node-id", id],
      { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, RUST_LOG: process.env.RUST_LOG || "info" } },
    );
    child.stderr.pipe(fs.createWriteStream(path.join(logDir, `cluster-${id}.log`)));
    const rl = readline.createInterface({ input: child.stdout });
    const url = await Promise.race([
      new Promise((resolve) => rl.on("line", (l) => {
        const m = /umbra listening on http:\/\/(\S+)/.exec(l);
        if (m) resolve(m[1]);
      })),
      sleep(20000).then(() => null),
    ]);
    check(url, `cluster node ${id} did not start`);
    return { id, child, addr: url };
  }

  /** Each connection goes to the next backend in turn that accepts it (a dead node refuses). */
  function loadBalancer(backends) {
    let next = 0;
    const server = net.createServer((client) => {
      const start = next++;
      const attempt = (i) => {
        if (i >= backends.length) return client.destroy();
        const [host, port] = backends[(start + i) % backends.length].split(":");
        const up = net.connect(Number(port), host);
        up.once("error", () => attempt(i + 1));
        up.once("connect", () => {
          up.removeAllListeners("error");
          client.pipe(up).pipe(client);
          const end = () => { client.destroy(); up.destroy(); };
          up.on("error", end).on("close", end);
          client.on("error", end).on("close", end);
        });
      };
      attempt(0);
    });
    return new Promise((resolve) => server.listen(0, ADDR, () => resolve({ url: `http://${ADDR}:${server.address().port}`, close: () => server.close() })));
  }

  /** The node id hosting a session, from Redis. */
  const homeOf = (redisPort, sessionId) => run("redis-cli", ["-p", String(redisPort), "GET", `umbra:home:${sessionId}`]).trim();

  test("cluster-failover", async () => {
    const dir = fs.mkdtempSync(path.join(tmp, "cluster-"));
    const logDir = h.artifacts;
    // Its own directory under the system's: the postgres user must reach it (tmp is private).
    const pgDir = fs.mkdtempSync(path.join(os.tmpdir(), "umbra-bt-pg-"));
    const pg = await startPostgres(pgDir);
    const redisPort = await freePort();
    const redis = spawn("redis-server", ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir], { stdio: "ignore" });
    const nodes = [];
    let lb;
    let browser;
    let nat;
    try {
      await waitUntil("redis-server", async () => spawnSync("redis-cli", ["-p", String(redisPort), "PING"], { encoding: "utf8" }).stdout?.trim() === "PONG", 10000, 50);
      for (const id of ["n0", "n1", "n2"]) nodes.push(await startNode(id, pg.url, `redis://127.0.0.1:${redisPort}`, logDir));
      lb = await loadBalancer(nodes.map((n) => n.addr));
      const project = JSON.parse(run(BIN, ["--data-dir", path.join(dir, "cli"), "--database", pg.url, "project", "create", "--name", "cluster", "--e2ee", "--output", "json"]));
      const { createSession, clientToken } = await import("./build/crowd.mjs");
      const { api_key: apiKey, api_secret: apiSecret } = project;
      const sessionId = await createSession(lb.url, apiKey, apiSecret, "p2p.preference=disabled&e2ee=true");
      const creds = (name) => ({ apiKey, sessionId, token: clientToken(apiKey, apiSecret, sessionId, name), secret: SECRET });

      browser = await chromium.launch({ executablePath: process.env.UMBRA_CHROMIUM || "/usr/bin/chromium", headless: true, args: chromeArgs(lb.url), timeout: 60000 });
      const page = async () => {
        const p = await (await browser.newContext()).newPage();
        p.on("pageerror", (e) => say("  [chromium pageerror]", String(e).slice(0, 300)));
        await p.goto(`${lb.url}/demo/harness.html`);
        return { page: p, ev: (fn, arg) => p.evaluate(fn, arg) };
      };
      const sub = await page();
      check(!(await sub.ev((o) => H.connectWith(o), { ...creds("subscriber"), autoSubscribe: true })).error, "subscriber connect");
      const pub = await page();
      check(!(await pub.ev((o) => H.connectWith(o), { ...creds("web publisher"), autoSubscribe: false })).error, "publisher connect");
      check(!(await pub.ev((o) => H.publish(o), { name: "web", audio: false, resolution: "320x240", frameRate: 15 })).error, "web publish");
      const n = creds("native");
      nat = spawnMedia(["publish", "--url", lb.url, "--api-key", apiKey, "--session-id", sessionId, "--token", n.token, "--secret", SECRET,
        "--duration", "60", "--name", "native", "--size", "320x240"], "cluster-native-publish");
      const subs = async () => (await sub.ev(() => H.state())).subscribers;
      await waitUntil("both streams presented", async () => {
        const s = await subs();
        return s.length === 2 && s.every((x) => x.frames > 10);
      }, 30000, 200);

      const home = homeOf(redisPort, sessionId);
      const victim = nodes.find((x) => x.id === home);
      check(victim, `the session's home ${JSON.stringify(home)} is none of the nodes`);
      const before = (await subs()).map((x) => x.frames);
      const killedAt = await sub.ev(() => performance.now());
      victim.child.kill("SIGKILL");
      say(`  SIGKILL of the home node ${home}`);
      // Presented again: frames beyond those counted at the kill, after a stall.
      try {
        await waitUntil("both streams presented again after the kill", async () => {
          const s = await subs();
          return s.every((x, i) => x.frames > before[i] + 30);
        }, 20000, 50);
      } catch (e) {
        const show = async (p) => {
          const s = await p.ev(() => H.state());
          return JSON.stringify({ events: s.events, exceptions: s.exceptions, subscribers: s.subscribers.map((x) => ({ name: x.name, frames: x.frames, mismatch: x.mismatch, exceptions: x.subscriberExceptions })) });
        };
        say(`  subscriber: ${await show(sub)}\n  publisher: ${await show(pub)}\n  native: ${nat.out.slice(-5).join(" | ")}`);
        throw e;
      }
      const st = await sub.ev(() => H.state());
      const gaps = await sub.ev((t) => H.longestGaps(t), killedAt);
      say(`  longest gaps in presented frames after the kill: ${JSON.stringify(gaps.map((g) => Math.round(g)))} ms; events ${JSON.stringify(st.events.filter((e) => e !== "subscribed"))}`);
      const newHome = homeOf(redisPort, sessionId);
      say(`  the session moved ${home} -> ${newHome}`);
      check(newHome && newHome !== home, "the session moved to a live node");
      for (const [i, g] of gaps.entries()) check(g < 5000, `stream ${i} frozen ${Math.round(g)} ms after the kill`);
      for (const s of st.subscribers) {
        check(s.mismatch === 0 && s.notEncrypted === 0, `E2EE verdicts after the move: mismatch ${s.mismatch}, notEncrypted ${s.notEncrypted}`);
        check(s.subscriberExceptions.length === 0, `subscriber exceptions: ${JSON.stringify(s.subscriberExceptions)}`);
      }
      for (const [who, p] of [["subscriber", sub], ["publisher", pub]]) {
        const s = await p.ev(() => H.state());
        const bad = s.events.filter((e) => ["streamDestroyed", "sessionDisconnected", "subscriberDestroyed", "publisherStreamDestroyed", "publisherException", "exception"].includes(e));
        check(bad.length === 0, `${who}: ${JSON.stringify(bad)}`);
        check(s.events.includes("sessionReconnecting") && s.events.includes("sessionReconnected"), `${who} events: ${JSON.stringify(s.events)}`);
      }
      (h.figures.clusterFailoverGapMs ??= []).push(...gaps.map((g) => Math.round(g)));
    } finally {
      nat?.child.kill("SIGTERM");
      await browser?.close().catch(() => {});
      lb?.close();
      for (const x of nodes) x.child.kill("SIGKILL");
      redis.kill("SIGKILL");
      pg.stop();
      fs.rmSync(pgDir, { recursive: true, force: true });
    }
  }, 150000);
}

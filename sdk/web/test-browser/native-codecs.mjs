// Browser <-> native SDK per video codec (issue 17): the native SDK (umbra-media, i.e.
// umbra-client with libvpx and OpenH264) publishes VP9 or H.264 to Chromium (and VP9 to
// Firefox, which has no H.264 offline), and decodes what Chromium publishes in VP9 or H.264 and
// what Firefox publishes in VP9.
// The C SDK's example subscriber (examples/c/subscriber) checks the native VP9 / H.264 test
// pattern picture by picture (PSNR >= 30 dB) and decodes Chromium's H.264.
// VP8 both ways is run.mjs's native-to-browser / browser-to-native / browser-to-c.
//
// run.mjs registers these with its own helpers (one server, one browser for every test).

/** @param {object} h run.mjs's test helpers. */
export function registerNativeCodecTests(h) {
  const { test, chromePage, firefoxPage, connect, publish, state, picture, cellStats, assertVideoFlows, demoToken, spawnMedia, check, say, sleep, once, SECRET } = h;

  /** examples/c/subscriber with `extra` arguments until it exits; its exit code and last lines. */
  const cSubscriber = async (room, extra, label) => {
    const t = await demoToken(room, "c");
    const c = spawnMedia(["--url", h.baseUrl(), "--api-key", t.apiKey, "--session-id", t.sessionId, "--token", t.token,
      "--secret", SECRET, "--seconds", "40", ...extra], label, process.env.UMBRA_C_SUBSCRIBER, "UMBRA_C_SUBSCRIBER");
    const [code] = await Promise.race([once(c.child, "exit"), sleep(60000).then(() => [null])]);
    if (code === null) c.child.kill("SIGKILL");
    say(`  C subscriber: exit ${code}; ${c.out.slice(-3).join(" | ")}`);
    return { code, out: c.out };
  };

  const publishNative = async (room, codec, label) => {
    const t = await demoToken(room);
    return spawnMedia(["publish", "--url", h.baseUrl(), "--api-key", t.apiKey, "--session-id", t.sessionId, "--token", t.token,
      "--secret", SECRET, "--duration", "40", "--name", `native ${codec}`, "--size", "320x240", "--codec", codec], label);
  };

  const nativeTo = (kind, codec, browser) => test(`native-${codec}-to-${kind}`, async () => {
    const room = `n-native-${codec}-${kind}`;
    const sub = await browser();
    check(!(await connect(sub, { room, name: kind, secret: SECRET })).error, `${kind} connect`);
    const nat = await publishNative(room, codec, `native-${codec}-publish`);
    try {
      await sleep(200);
      const s = await assertVideoFlows(sub, `native ${codec}→${kind}`);
      check(s.codec?.toLowerCase() === `video/${codec}`, `${kind} decodes ${s.codec}, the native publisher sends ${codec}`);
      const pic = await picture(sub, 0);
      const cs = cellStats(pic);
      say(`  native ${codec} picture ${pic.width}x${pic.height}, grey mean ${cs.mean.toFixed(0)}, sd ${cs.sd.toFixed(1)}`);
      check(pic.width === 320 && pic.height === 240, `picture ${pic.width}x${pic.height}, sent 320x240`);
      // The test pattern has bars and a frame-number strip: a broken decode is flat or noise-free.
      check(cs.sd > 15, `the native ${codec} test pattern decodes to a flat picture (sd ${cs.sd.toFixed(1)})`);
      const st = (await state(sub)).subscribers[0];
      check(st.mismatch === 0, `${kind} reported a mismatch on the native ${codec} stream`);
    } finally {
      nat.child.kill("SIGTERM");
    }
  });

  const browserToNative = (kind, codec, browser) => test(`${kind}-${codec}-to-native`, async () => {
    const room = `n-${kind}-${codec}-native`;
    const pub = await browser();
    check(!(await connect(pub, { room, name: "browser", secret: SECRET, autoSubscribe: false })).error, "browser connect");
    check(!(await publish(pub, { codec: codec.toUpperCase(), audio: false })).error, `browser publish ${codec}`);
    const t = await demoToken(room);
    const nat = spawnMedia(["subscribe", "--url", h.baseUrl(), "--api-key", t.apiKey, "--session-id", t.sessionId, "--token", t.token,
      "--secret", SECRET, "--duration", "10", "--json"], `native-${codec}-subscribe`);
    const [code] = await Promise.race([once(nat.child, "exit"), sleep(30000).then(() => [null])]);
    if (code === null) nat.child.kill("SIGKILL");
    const lines = nat.out.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
    const last = lines.at(-1);
    say(`  native subscriber: exit ${code}, ${lines.length} stats lines, last ${JSON.stringify(last)}`);
    check(last && last.video_codec === codec, `the native subscriber saw codec ${last?.video_codec}, ${kind} sends ${codec}`);
    check(last.frames_decoded > 60, `the native subscriber decoded ${last.frames_decoded} ${codec} frames`);
    check(last.encryption === "encrypted", `native subscriber encryption: ${last.encryption}`);
    check(lines.every((l) => l.encryption !== "SECRET MISMATCH"), "the native subscriber saw a mismatch");
    check(lines.length >= 3 && last.frames_decoded > lines.at(-3).frames_decoded, "native frames decoded keep increasing");
  });

  const nativeToC = (codec) => test(`native-${codec}-to-c`, async () => {
    const room = `n-native-${codec}-c`;
    const nat = await publishNative(room, codec, `native-${codec}-to-c-publish`);
    try {
      // Without --any-picture the C subscriber needs 30 pictures that are the test pattern's
      // frames, in order, at >= 30 dB PSNR (and the tone).
      const r = await cSubscriber(room, ["--frames", "30"], `c-subscriber-${codec}`);
      check(r.code === 0, `C subscriber of native ${codec}: exit ${r.code}: ${r.out.slice(-5).join(" | ")}`);
    } finally {
      nat.child.kill("SIGTERM");
    }
  });

  test("chromium-h264-to-c", async () => {
    const room = "n-chromium-h264-c";
    const pub = await chromePage();
    check(!(await connect(pub, { room, name: "browser", secret: SECRET, autoSubscribe: false })).error, "browser connect");
    // With audio: the C subscriber also checks that sound arrives.
    check(!(await publish(pub, { codec: "H264", audio: true })).error, "browser publish H264");
    const r = await cSubscriber(room, ["--any-picture", "--frames", "30"], "c-subscriber-chromium-h264");
    check(r.code === 0, `C subscriber of Chromium's H.264: exit ${r.code}: ${r.out.slice(-5).join(" | ")}`);
  });

  for (const codec of ["vp9", "h264"]) {
    nativeTo("chromium", codec, chromePage);
    browserToNative("chromium", codec, chromePage);
    nativeToC(codec);
  }
  nativeTo("firefox", "vp9", firefoxPage);
  browserToNative("firefox", "vp9", firefoxPage);
}

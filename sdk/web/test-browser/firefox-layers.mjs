// Simulcast layers with Firefox (issue 13), end-to-end encrypted, against the real router:
//
// - firefox-simulcast-offer: a Firefox publisher (VP8 camera 1280x720) offers three rid layers,
//   smallest first, keeps the SDK's scaleResolutionDownBy per rid, and a Chromium subscriber
//   decodes the stream; asked for each layer in turn, Chromium decodes each at the size Firefox
//   encodes it (a quarter, a half, full).
// - firefox-preferred-resolution: setPreferredResolution({320x180}) brings the decoded video down
//   to the quarter layer ('q', ≤ 320 wide) within 5 s and clearing it brings back 'f' within
//   10 s, in both directions: Firefox publisher → Chromium subscriber, and Chromium publisher →
//   Firefox subscriber (the width from Firefox's getStats inbound frameWidth, else the element's).
//
// Both check that no encryptionSecretMismatch, streamNotEncrypted or exception happened on either
// page: a Firefox sender encrypts all its layers through one RTCRtpScriptTransform, and a Firefox
// receiver moved between layers must decrypt each of them.
//
// run.mjs registers this with its own helpers (as layers.mjs, whose Chromium-only tests these
// mirror).

/** @param {object} h run.mjs's test helpers. */
export function registerFirefoxLayerTests(h) {
  const { test, chromePage, firefoxPage, connect, publish, state, stats, assertVideoFlows, check, say, waitUntil, SECRET, figures } = h;

  const CAMERA = "1280x720";
  const RIDS = ["q", "h", "f"];

  async function pubSub(room, pubBrowser, subBrowser) {
    const pub = await pubBrowser();
    const sub = await subBrowser();
    check(!(await connect(pub, { room, name: "publisher", secret: SECRET, autoSubscribe: false })).error, `${pub.kind} publisher connect`);
    check(!(await connect(sub, { room, name: "subscriber", secret: SECRET })).error, `${sub.kind} subscriber connect`);
    const r = await publish(pub, { name: "publisher", codec: "VP8", audio: false, resolution: CAMERA });
    check(!r.error, `${pub.kind} publish: ${JSON.stringify(r.error)}`);
    await waitUntil("the subscriber to subscribe", async () => (await state(sub)).subscribers.length > 0, 15000);
    return { pub, sub };
  }

  /** The subscriber's decoded width (getStats frameWidth, else the element's) and its layer. */
  async function current(sub) {
    const s = await sub.ev(() => H.subStats(0));
    const st = (await state(sub)).subscribers[0];
    return { width: s.video?.frameWidth || st.width, statsWidth: s.video?.frameWidth ?? 0, elementWidth: st.width, layer: s.videoLayer, named: st.layers.at(-1)?.rid ?? null, st };
  }

  /** The publisher's video senders as getStats reports them, by rid. */
  async function outboundLayers(pub) {
    const out = (await stats(pub)).outbound.filter((x) => x.kind === "video");
    return Object.fromEntries(out.map((x) => [x.rid ?? "-", x]));
  }
  /**
   * For a failure message: which encodings the publisher has on (layers_wanted applied) and
   * what each rid encoded, and the subscriber's videoLayerChanged trail.
   */
  async function whereStuck(pub, sub) {
    const on = await pub.ev(() => {
      for (const pc of window.__pcs ?? []) {
        const s = pc.getSenders().find((x) => x.track?.kind === "video");
        if (s) return s.getParameters().encodings.map((e) => `${e.rid}=${e.active ? "on" : "off"}`).join(",");
      }
      return null;
    });
    const trail = (await state(sub)).subscribers[0]?.layers.map((l) => `${l.rid}/${l.temporalLayer ?? "all"}@${Math.round(l.t)}`).join(" → ");
    return `publisher encodings ${on}, layers ${describe(await outboundLayers(pub))}; subscriber's videoLayerChanged ${trail}`;
  }
  const describe = (layers) => Object.values(layers).map((x) => `${x.rid}:${x.frameWidth}px:${x.framesEncoded}`).join(" ");

  /** Neither page saw a mismatch, a stream "not encrypted", or an exception. */
  async function assertClean(pub, sub, label) {
    const st = await state(sub);
    for (const s of st.subscribers) {
      check(s.mismatch === 0, `${label}: encryptionSecretMismatch fired ${s.mismatch} times at the ${sub.kind} subscriber`);
      check(s.notEncrypted === 0, `${label}: streamNotEncrypted at the ${sub.kind} subscriber`);
      check(s.subscriberExceptions.length === 0, `${label}: subscriber exceptions ${JSON.stringify(s.subscriberExceptions)}`);
    }
    check(st.exceptions.length === 0, `${label}: ${sub.kind} subscriber's session exceptions ${JSON.stringify(st.exceptions)}`);
    const ps = await state(pub);
    check(ps.exceptions.length === 0, `${label}: ${pub.kind} publisher's session exceptions ${JSON.stringify(ps.exceptions)}`);
    check(!ps.events.includes("publisherException"), `${label}: ${pub.kind} publisher exception`);
  }

  /**
   * setPreferredResolution(320x180), then cleared: the subscriber goes to 'q' (≤ 320 wide, named
   * by videoLayerChanged) within 5 s and back to 'f' within 10 s. 'f' is recognised by name and
   * by a decoded width over twice the small layer's (more than 'h' could be), not by a fixed
   * width: on a loaded machine Chromium's encoder shrinks its own layers for tens of seconds
   * (CPU adaptation; 'f' seen 480 wide for 14 s, 640 for 16 s more). Returns the times taken.
   */
  async function preferAndClear(pub, sub, label) {
    await assertVideoFlows(sub, `${label}: before the preference`);
    // The router starts a subscriber on a lower layer when its estimate is low: wait for the top
    // one first, or "down to q" would prove nothing.
    let seen = null;
    const rampFrom = Date.now();
    const trail = [];
    await waitUntil(`${label}: the top layer before the preference`, async () => {
      seen = await current(sub);
      const l = `${seen.named}:${seen.width}px`;
      if (trail.at(-1)?.l !== l) trail.push({ l, ms: Date.now() - rampFrom });
      return seen.named === "f" && seen.width > 0;
    }, 20000, 200).catch((e) => {
      throw new Error(`${e.message}; seen: ${trail.map((t) => `${t.l}@${t.ms}ms`).join(" → ")}`);
    });
    const ramp = Date.now() - rampFrom;
    say(`  ${label}: on 'f' after ${ramp} ms (${trail.map((t) => `${t.l}@${t.ms}ms`).join(" → ")}); before: ${seen.width}px (stats ${seen.statsWidth}, element ${seen.elementWidth}), layer ${JSON.stringify(seen.layer)}; publisher ${describe(await outboundLayers(pub))}`);
    const t0 = Date.now();
    await sub.ev(() => H.prefer(0, { resolution: { width: 320, height: 180 } }));
    const low = await waitUntil(`${label}: ≤ 320 px wide and videoLayerChanged naming 'q'`, async () => {
      seen = await current(sub);
      return seen.width > 0 && seen.width <= 320 && seen.named === "q" ? seen : null;
    }, 5000, 100).catch(async (e) => {
      throw new Error(`${e.message}; last seen: ${seen?.width}px (stats ${seen?.statsWidth}, element ${seen?.elementWidth}), named ${seen?.named}; ${await whereStuck(pub, sub)}`);
    });
    const toLow = Date.now() - t0;
    say(`  ${label}: setPreferredResolution(320x180) → ${low.width}px (stats ${low.statsWidth}, element ${low.elementWidth}), layer ${JSON.stringify(low.layer)} in ${toLow} ms; publisher ${describe(await outboundLayers(pub))}`);
    await assertVideoFlows(sub, `${label}: on the small layer`, { minFrames: 10 });
    const t1 = Date.now();
    await sub.ev(() => H.prefer(0, { resolution: null }));
    const high = await waitUntil(`${label}: the top layer ('f', over twice ${low.width} px) again`, async () => {
      seen = await current(sub);
      return seen.named === "f" && seen.width > 2 * low.width ? seen : null;
    }, 10000, 100).catch(async (e) => {
      throw new Error(`${e.message}; last seen: ${seen?.width}px, named ${seen?.named}; ${await whereStuck(pub, sub)}`);
    });
    const toHigh = Date.now() - t1;
    say(`  ${label}: cleared → ${high.width}px, layer ${JSON.stringify(high.layer)} in ${toHigh} ms`);
    await assertVideoFlows(sub, `${label}: after the preference`);
    return { toLow, toHigh, ramp };
  }

  test("firefox-simulcast-offer", async () => {
    const { pub, sub } = await pubSub("fl-simulcast-offer", firefoxPage, chromePage);
    // Firefox's own offer (before the SDK's rewrite for the server): the order must already be
    // the SDK's, or the rewrite would be hiding that Firefox orders its layers otherwise.
    const sdp = await pub.ev(() => H.publisherOffer());
    check(sdp, "no publisher offer");
    const rids = [...sdp.matchAll(/^a=rid:(\S+) send/gm)].map((m) => m[1]);
    const line = /^a=simulcast:send (\S+)/m.exec(sdp)?.[1] ?? null;
    say(`  Firefox's offer: rids ${rids.join(",")}, a=simulcast:send ${line}`);
    check(JSON.stringify(rids) === JSON.stringify(RIDS), `offer rids ${rids}, wanted q,h,f`);
    check(line === "q;h;f", `a=simulcast:send ${line}, wanted q;h;f (smallest first)`);
    const encodings = await pub.ev(() => {
      for (const pc of window.__pcs ?? []) {
        const s = pc.getSenders().find((x) => x.track?.kind === "video");
        if (s) return s.getParameters().encodings.map((e) => ({ rid: e.rid, scale: e.scaleResolutionDownBy, active: e.active, maxBitrate: e.maxBitrate, scalabilityMode: e.scalabilityMode ?? null }));
      }
      return null;
    });
    say(`  Firefox's sender encodings: ${JSON.stringify(encodings)}`);
    check(JSON.stringify(encodings?.map((e) => [e.rid, e.scale])) === JSON.stringify([["q", 4], ["h", 2], ["f", 1]]), `sender encodings ${JSON.stringify(encodings)}`);
    await assertVideoFlows(sub, "firefox simulcast → chromium");
    // Each layer is encoded at its own size and decodes at the subscriber. The router pauses the
    // layers no one receives (Firefox may never encode 'h' before its first layers_wanted), so
    // the subscriber asks for each one in turn; then Firefox's outbound size for that rid is the
    // size the subscriber decodes. From the top down: Firefox sometimes stops encoding 'f' when
    // a smaller layer is turned on beside it and does not start it again for over 10 s, toggles
    // included (2 of 3 CI runs asked for 'q', 'h', then 'f' and timed out on 'f';
    // firefox-preferred-resolution measures coming back to 'f').
    const widths = {};
    for (const [rid, resolution] of [["f", null], ["h", { width: 640, height: 360 }], ["q", { width: 320, height: 180 }]]) {
      await sub.ev((r) => H.prefer(0, { resolution: r }), resolution);
      let seen = null;
      let layers = null;
      await waitUntil(`layer '${rid}' encoded by Firefox and decoded at its size`, async () => {
        [seen, layers] = [await current(sub), await outboundLayers(pub)];
        const out = layers[rid];
        return seen.named === rid && out?.framesEncoded > 0 && out.frameWidth > 0 && seen.statsWidth === out.frameWidth;
      }, 10000, 200).catch((e) => {
        throw new Error(`${e.message}; subscriber ${seen?.statsWidth}px named ${seen?.named}; Firefox ${layers && describe(layers)}`);
      });
      widths[rid] = layers[rid].frameWidth;
      say(`  preferring '${rid}': Chromium decodes ${seen.statsWidth}px; Firefox's outbound layers (rid:width:frames) ${describe(layers)}`);
    }
    const final = await outboundLayers(pub);
    figures.firefoxOutboundLayers = describe(final);
    const { q, h: half, f } = widths;
    check(q <= 320 && q < half && half < f, `layer widths q ${q}, h ${half}, f ${f}: not smallest first at a quarter and a half`);
    check(Math.abs(f / half - 2) < 0.1 && Math.abs(f / q - 4) < 0.2, `layer widths q ${q}, h ${half}, f ${f}: not the scaleResolutionDownBy of 4, 2, 1`);
    const layer = (await current(sub)).layer;
    say(`  Chromium subscriber's layer: ${JSON.stringify(layer)}`);
    check(layer && RIDS.includes(layer.rid), `the subscriber's layer ${JSON.stringify(layer)} is not one of the rids`);
    await assertClean(pub, sub, "firefox-simulcast-offer");
  });

  test("firefox-preferred-resolution", async () => {
    {
      const { pub, sub } = await pubSub("fl-preferred-ff-cr", firefoxPage, chromePage);
      const t = await preferAndClear(pub, sub, "firefox→chromium");
      (figures.firefoxPubPreferredToLowMs ??= []).push(t.toLow);
      (figures.firefoxPubClearedToTopMs ??= []).push(t.toHigh);
      (figures.firefoxPubToTopMs ??= []).push(t.ramp);
      await assertClean(pub, sub, "firefox→chromium");
      await pub.close();
      await sub.close();
    }
    {
      const { pub, sub } = await pubSub("fl-preferred-cr-ff", chromePage, firefoxPage);
      const t = await preferAndClear(pub, sub, "chromium→firefox");
      (figures.firefoxSubPreferredToLowMs ??= []).push(t.toLow);
      (figures.firefoxSubClearedToTopMs ??= []).push(t.toHigh);
      (figures.firefoxSubToTopMs ??= []).push(t.ramp);
      await assertClean(pub, sub, "chromium→firefox");
    }
  }, 180000);
}

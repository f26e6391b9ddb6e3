// In-page side of the real-browser tests: loaded by harness.html next to /sdk/umbra.js. The Node
// runner drives it through `window.H` and reads back what the page observed: events, frames
// presented by each <video> (requestVideoFrameCallback), coarse pictures, audio levels.
"use strict";
(() => {
  const H = {
    session: null,
    publisher: null,
    subscribers: [], // {sub, streamId, name, box, frames, mismatch, match, notEncrypted, errors, video}
    events: [],
    exceptions: [],
  };
  const now = () => performance.now();
  const log = (type, extra = {}) => H.events.push({ t: now(), type, ...extra });

  /** When the last frames were presented (a bounded list), for the freeze a failover causes. */
  function noteFrame(rec) {
    if (!rec.frameTimes) return;
    rec.frameTimes.push(now());
    if (rec.frameTimes.length > 4000) rec.frameTimes.splice(0, 1000);
  }

  function countFrames(rec, video) {
    rec.video = video;
    if (typeof video.requestVideoFrameCallback === "function") {
      const tick = (_t, meta) => {
        rec.frames = meta.presentedFrames ?? rec.frames + 1;
        rec.lastFrameAt = now();
        noteFrame(rec);
        if (rec.video === video) video.requestVideoFrameCallback(tick);
      };
      video.requestVideoFrameCallback(tick);
    } else {
      // Fallback: count changes of currentTime.
      let last = -1;
      const poll = () => {
        if (rec.video !== video) return;
        if (video.currentTime !== last && video.videoWidth > 0) {
          last = video.currentTime;
          rec.frames++;
          rec.lastFrameAt = now();
          noteFrame(rec);
        }
        setTimeout(poll, 15);
      };
      poll();
    }
  }

  async function demoToken(room, name, e2ee = true) {
    const r = await fetch("/demo/token", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ room, name, e2ee }) });
    if (!r.ok) throw new Error(`demo token: ${r.status} ${await r.text()}`);
    return r.json();
  }

  function errJson(e) {
    return e ? { name: e.name, message: e.message, code: e.code } : null;
  }

  /** Connects; `secret` undefined → no encryptionSecret at all. Returns the connect error, if any. */
  H.connect = async ({ room, name, secret, autoSubscribe = true, e2ee = true }) => {
    const { apiKey, sessionId, token } = await demoToken(room, name, e2ee);
    return H.connectWith({ apiKey, sessionId, token, secret, autoSubscribe });
  };

  /** Connects with a token made elsewhere (REST sessions, e.g. the cluster test). */
  H.connectWith = async ({ apiKey, sessionId, token, secret, autoSubscribe = true }) => {
    const opts = secret === undefined ? {} : { encryptionSecret: secret };
    const session = OT.initSession(apiKey, sessionId, opts);
    H.session = session;
    session.on("exception", (e) => {
      H.exceptions.push({ t: now(), name: e.name ?? e.error?.name, message: e.message ?? e.error?.message });
      log("exception", { name: e.name ?? e.error?.name });
    });
    session.on("streamCreated", (e) => {
      log("streamCreated", { streamId: e.stream.streamId, name: e.stream.name });
      if (autoSubscribe) H.subscribe(e.stream);
    });
    session.on("streamDestroyed", (e) => log("streamDestroyed", { streamId: e.stream.streamId }));
    session.on("sessionDisconnected", (e) => log("sessionDisconnected", { reason: e.reason }));
    session.on("sessionReconnecting", () => log("sessionReconnecting"));
    session.on("sessionReconnected", () => log("sessionReconnected"));
    H.speakers = [];
    session.on("activeSpeakerChanged", (e) => H.speakers.push({ t: now(), streamId: e.stream?.streamId ?? null, name: e.stream?.name ?? null }));
    const error = await new Promise((resolve) => session.connect(token, (err) => resolve(err ?? null)));
    log("connected", { error: errJson(error) });
    return { error: errJson(error), sessionId, e2ee: session.isEndToEndEncrypted ?? null };
  };

  /**
   * Joins a session with a given token and only watches it (no media): every connection and
   * stream id the SDK reports, in order, for the late-joiner test.
   */
  H.observe = async ({ apiKey, sessionId, token }) => {
    const session = OT.initSession(apiKey, sessionId, {});
    H.session = session;
    const seen = { sessionConnected: null, connectionCreated: [], connectionDestroyed: [], streamCreated: [], streamDestroyed: [] };
    H.seen = seen;
    session.on({
      sessionConnected: (e) => (seen.sessionConnected = { connections: e.connections.map((c) => c.connectionId), streams: e.streams.map((s) => s.streamId) }),
      connectionCreated: (e) => seen.connectionCreated.push(e.connection.connectionId),
      connectionDestroyed: (e) => seen.connectionDestroyed.push(`${e.connection.connectionId}:${e.reason}`),
      streamCreated: (e) => seen.streamCreated.push(e.stream.streamId),
      streamDestroyed: (e) => seen.streamDestroyed.push(`${e.stream.streamId}:${e.reason}`),
    });
    const error = await new Promise((resolve) => session.connect(token, (err) => resolve(err ?? null)));
    return { error: errJson(error), connectionId: session.connection?.connectionId ?? null };
  };

  H.subscribe = (stream) => {
    const box = document.createElement("div");
    box.className = "tile";
    document.getElementById("subscribers").appendChild(box);
    const rec = { streamId: stream.streamId, name: stream.name, frames: 0, lastFrameAt: 0, mismatch: 0, match: 0, mismatchAt: [], matchAt: [],
      notEncrypted: 0, notEncryptedErrors: [], subscriberExceptions: [], subscribeError: undefined, video: null, frameTimes: [] };
    H.subscribers.push(rec);
    const sub = H.session.subscribe(stream, box, { insertMode: "append", width: "100%", height: "100%" }, (err) => {
      rec.subscribeError = errJson(err);
      log("subscribed", { streamId: stream.streamId, error: rec.subscribeError });
    });
    rec.sub = sub;
    sub.on("encryptionSecretMismatch", () => {
      rec.mismatch++;
      rec.mismatchAt.push(now());
      log("encryptionSecretMismatch", { streamId: stream.streamId });
    });
    sub.on("encryptionSecretMatch", () => {
      rec.match++;
      rec.matchAt.push(now());
      log("encryptionSecretMatch", { streamId: stream.streamId });
    });
    sub.on("streamNotEncrypted", (e) => {
      rec.notEncrypted++;
      rec.notEncryptedErrors.push(errJson(e.error));
      log("streamNotEncrypted", { streamId: stream.streamId });
    });
    sub.on("exception", (e) => rec.subscriberExceptions.push(e.name ?? e.error?.name ?? null));
    sub.on("destroyed", (e) => log("subscriberDestroyed", { streamId: stream.streamId, reason: e.reason }));
    rec.layers = [];
    sub.on("videoLayerChanged", (e) => rec.layers.push({ t: now(), rid: e.rid, temporalLayer: e.temporalLayer, paused: e.paused }));
    sub.on("videoElementCreated", (e) => countFrames(rec, e.element));
    if (sub.element) countFrames(rec, sub.element);
    return true;
  };

  /** Publishes the fake camera/microphone. Returns the publish error, if any. */
  H.publish = async ({ name = "pub", codec, audio = true, video = true, resolution = "640x480", frameRate = 30, simulcast, scalableVideo, publishAudioLevels, toneGain } = {}) => {
    const props = { name, publishAudio: audio, publishVideo: video, resolution, frameRate, mirror: false };
    if (simulcast !== undefined) props.simulcast = simulcast;
    if (scalableVideo !== undefined) props.scalableVideo = scalableVideo;
    if (publishAudioLevels !== undefined) props.publishAudioLevels = publishAudioLevels;
    // A WebAudio tone of this gain instead of the fake microphone (loudness under test control).
    if (toneGain !== undefined) props.audioSource = toneTrack(toneGain);
    if (!audio) props.audioSource = null;
    if (!video) props.videoSource = null;
    if (codec) props.preferredVideoCodec = codec;
    const pub = OT.initPublisher(document.getElementById("publisher"), props);
    H.publisher = pub;
    H.pubFrames = { frames: 0, lastFrameAt: 0 };
    pub.on("videoElementCreated", (e) => countFrames(H.pubFrames, e.element));
    pub.on("exception", (e) => log("publisherException", { name: e.name }));
    pub.on("streamDestroyed", (e) => log("publisherStreamDestroyed", { reason: e.reason }));
    const error = await new Promise((resolve) => H.session.publish(pub, (err) => resolve(err ?? null)));
    log("published", { error: errJson(error) });
    return { error: errJson(error), streamId: pub.stream?.streamId ?? null };
  };

  function toneTrack(gain) {
    const ctx = new AudioContext();
    H.audioContexts = [...(H.audioContexts ?? []), ctx];
    const osc = ctx.createOscillator();
    osc.frequency.value = 440;
    const g = ctx.createGain();
    g.gain.value = gain;
    const dst = ctx.createMediaStreamDestination();
    osc.connect(g).connect(dst);
    osc.start();
    return dst.stream.getAudioTracks()[0];
  }

  /** The publisher's offer as the browser made it (its peer connection's local description). */
  H.publisherOffer = () => {
    for (const pc of window.__pcs ?? []) {
      if (pc.getSenders().some((s) => s.track?.kind === "video") && pc.localDescription) return pc.localDescription.sdp;
    }
    return null;
  };

  /** setPreferredResolution / setPreferredFrameRate / subscribeToVideo on subscriber i. */
  H.prefer = (i, { resolution, frameRate, video } = {}) => {
    const sub = H.subscribers[i].sub;
    if (resolution !== undefined) sub.setPreferredResolution(resolution);
    if (frameRate !== undefined) sub.setPreferredFrameRate(frameRate);
    if (video !== undefined) sub.subscribeToVideo(video);
    return true;
  };

  /** Subscriber i's getStats() (receive figures and the layer forwarded). */
  H.subStats = async (i) => {
    try {
      return await H.subscribers[i].sub.getStats();
    } catch (e) {
      return { error: errJson(e) };
    }
  };

  /** The local UDP port of subscriber i's selected ICE candidate pair (to shape its downlink). */
  H.subscriberPort = async (i) => {
    const pcs = (window.__pcs ?? []).filter((pc) => pc.connectionState !== "closed" && pc.getReceivers().some((r) => r.track?.kind === "video") && pc.getSenders().every((s) => !s.track));
    const pc = pcs[i];
    if (!pc) return null;
    const report = await pc.getStats();
    let port = null;
    report.forEach((r) => {
      if (r.type === "candidate-pair" && r.state === "succeeded" && r.nominated) {
        const local = report.get(r.localCandidateId);
        if (local) port = local.port;
      }
    });
    return port;
  };

  /** Per subscriber: the longest time without a presented frame from `since` until its last one. */
  H.longestGaps = (since) =>
    H.subscribers.map((r) => {
      let prev = since;
      let longest = 0;
      for (const t of r.frameTimes) {
        if (t < since) continue;
        longest = Math.max(longest, t - prev);
        prev = t;
      }
      return longest;
    });

  H.state = () => ({
    subscribers: H.subscribers.map((r) => ({
      streamId: r.streamId,
      name: r.name,
      frames: r.frames,
      lastFrameAt: r.lastFrameAt,
      mismatch: r.mismatch,
      match: r.match,
      mismatchAt: r.mismatchAt,
      matchAt: r.matchAt,
      notEncrypted: r.notEncrypted,
      notEncryptedErrors: r.notEncryptedErrors,
      subscriberExceptions: r.subscriberExceptions,
      subscribeError: r.subscribeError,
      width: r.video?.videoWidth ?? 0,
      height: r.video?.videoHeight ?? 0,
      layers: r.layers ?? [],
    })),
    pubFrames: H.pubFrames?.frames ?? 0,
    events: H.events.map((e) => e.type),
    // E2EE events as the worker reported them: time, transform, its codec.
    workerEvents: (window.__workerEvents ?? []).map((e) => ({ ...e, codec: window.__transformCodecs?.[e.transformId] ?? null })),
    exceptions: H.exceptions,
    speakers: H.speakers ?? [],
    now: now(),
  });

  /** A coarse grey-level picture (cols×rows cell means) of a <video>: publisher or subscriber i. */
  H.picture = (which, cols = 16, rows = 12) => {
    const video = which === "publisher" ? H.publisher?.element : H.subscribers[which]?.video;
    if (!video || !video.videoWidth) return null;
    const w = cols * 4, h = rows * 4;
    const c = document.createElement("canvas");
    c.width = w;
    c.height = h;
    const g = c.getContext("2d", { willReadFrequently: true });
    g.drawImage(video, 0, 0, w, h);
    const d = g.getImageData(0, 0, w, h).data;
    const cells = new Array(cols * rows).fill(0);
    const rgb = [0, 0, 0];
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const i = (y * w + x) * 4;
        cells[Math.floor(y / 4) * cols + Math.floor(x / 4)] += (d[i] * 0.299 + d[i + 1] * 0.587 + d[i + 2] * 0.114) / 16;
        for (let k = 0; k < 3; k++) rgb[k] += d[i + k] / (w * h);
      }
    return { cells, rgb, width: video.videoWidth, height: video.videoHeight };
  };

  /** Peak-ish level (RMS, 0..1) of subscriber i's decoded audio over `ms`. */
  H.audioLevel = async (i, ms = 1500) => {
    const v = H.subscribers[i]?.video;
    if (!v?.srcObject) return { error: "no subscriber media" };
    const tracks = v.srcObject.getAudioTracks();
    if (tracks.length === 0) return { error: "no audio track" };
    const ctx = new AudioContext();
    await ctx.resume();
    const src = ctx.createMediaStreamSource(new MediaStream(tracks));
    const an = ctx.createAnalyser();
    an.fftSize = 2048;
    src.connect(an);
    const buf = new Float32Array(an.fftSize);
    let max = 0;
    const end = now() + ms;
    while (now() < end) {
      await new Promise((r) => setTimeout(r, 50));
      an.getFloatTimeDomainData(buf);
      let s = 0;
      for (const x of buf) s += x * x;
      max = Math.max(max, Math.sqrt(s / buf.length));
    }
    await ctx.close();
    return { rms: max, state: ctx.state };
  };

  H.setSecret = async (secret) => {
    const t0 = now();
    try {
      await H.session.setEncryptionSecret(secret);
      return { ok: true, t0, resolvedAt: now() };
    } catch (e) {
      return { ok: false, t0, error: errJson(e) };
    }
  };

  /** Inbound/outbound RTP video and audio figures over every peer connection of the page. */
  H.stats = async () => {
    const out = { inbound: [], outbound: [] };
    for (const pc of window.__pcs ?? []) {
      if (pc.connectionState === "closed") continue;
      const report = await pc.getStats();
      const codecs = new Map();
      report.forEach((r) => r.type === "codec" && codecs.set(r.id, r.mimeType));
      report.forEach((r) => {
        if (r.type === "inbound-rtp")
          out.inbound.push({ kind: r.kind, codec: codecs.get(r.codecId) ?? null, framesDecoded: r.framesDecoded ?? 0, packets: r.packetsReceived ?? 0, bytes: r.bytesReceived ?? 0, audioLevel: r.audioLevel ?? null, totalAudioEnergy: r.totalAudioEnergy ?? null, frameWidth: r.frameWidth ?? 0 });
        if (r.type === "outbound-rtp")
          out.outbound.push({ kind: r.kind, codec: codecs.get(r.codecId) ?? null, framesEncoded: r.framesEncoded ?? 0, packets: r.packetsSent ?? 0, bytes: r.bytesSent ?? 0, frameWidth: r.frameWidth ?? 0, frameHeight: r.frameHeight ?? 0, rid: r.rid ?? null, active: r.active ?? null, scalabilityMode: r.scalabilityMode ?? null });
      });
    }
    return out;
  };

  /** Per-frame encrypt/decrypt times kept by the page's E2EE worker(s). */
  H.workerTimings = async () => {
    const all = { encrypt: [], decrypt: [], encryptBytes: [], decryptBytes: [] };
    for (const w of window.__workers ?? []) {
      const requestId = 1e9 + Math.floor(Math.random() * 1e6);
      const reply = await new Promise((resolve) => {
        const on = (e) => {
          if (e.data?.type === "timings" && e.data.requestId === requestId) {
            w.removeEventListener("message", on);
            resolve(e.data);
          }
        };
        w.addEventListener("message", on);
        w.postMessage({ type: "timings", requestId });
        setTimeout(() => resolve(null), 2000);
      });
      if (reply) for (const k of Object.keys(all)) all[k].push(...reply[k]);
    }
    return all;
  };

  H.disconnect = () => H.session?.disconnect();
  window.H = H;
})();

// OT.Session: connects over the server's signaling WebSocket, tracks connections and streams,
// owns the session's E2EE secret (validated, turned into the base key, pushed to the media
// engine), and fires OpenTok.js's events.

import { deriveBaseKey } from "../e2ee/secret.js";
import { checkSecret, describeViolation } from "../e2ee/secret.js";
import { DEFAULT_SUITE_ID, suiteById } from "../e2ee/suite.js";
import { KeyRing } from "../e2ee/keyring.js";
import { SIGNAL_SUITE, SIGNAL_WIRE_TYPE, SignalError, SignalOpener, SignalSealer } from "../e2ee/signal.js";
import type { MediaEngine, MediaEngineFactory } from "../media/engine.js";
import { OTError } from "./errors.js";
import type { SessionEvents, SignalEvent, StreamPropertyChange } from "./event-types.js";
import { EventEmitter, makeEvent, type Handler } from "./events.js";
import { toConnection, toStream, type Connection, type Stream } from "./model.js";
import type { Publisher } from "./publisher.js";
import { Subscriber, type SubscriberProperties, type VideoLayer } from "./subscriber.js";
import { SignalingClient, type DisconnectReason, type WebSocketConstructor } from "./signaling-client.js";
import { ignoreUnknown, MAX_SIGNAL_DATA, MAX_SIGNAL_TYPE, type ConnectionInfo, type Joined, type PropertyChange, type Request, type ServerEvent, type StreamInfo } from "./signaling-types.js";
import type { E2eeSupport } from "./support.js";

export interface SessionOptions {
  /** The end-to-end encryption secret shared by all participants (8 to 256 characters). */
  encryptionSecret?: string;
  /** The Umbra server (`https://video.example.com`); defaults to where the SDK was loaded from. */
  serverUrl?: string;
}

/** What a session needs from its environment; OT.initSession fills it in. */
export interface SessionEnvironment {
  WebSocket: WebSocketConstructor | null;
  e2eeSupport(): E2eeSupport;
  mediaEngineFactory: MediaEngineFactory | null;
  defaultServerUrl(): string | null;
  /** PBKDF2 iterations; only tests lower it (peers with another count never interoperate). */
  pbkdf2Iterations?: number;
}

type Callback = (error?: OTError) => void;
type State = "disconnected" | "connecting" | "connected" | "disconnecting";

/** ws(s)://host/v1/signaling for an http(s) or ws(s) server URL. */
export function signalingUrl(serverUrl: string): string {
  const u = new URL(serverUrl);
  if (u.protocol === "http:") u.protocol = "ws:";
  else if (u.protocol === "https:") u.protocol = "wss:";
  else if (u.protocol !== "ws:" && u.protocol !== "wss:") throw new OTError("OT_INVALID_PARAMETER", `serverUrl must be an http(s) or ws(s) URL, not ${serverUrl}`);
  u.pathname = u.pathname.replace(/\/+$/, "") + "/v1/signaling";
  u.search = "";
  u.hash = "";
  return u.toString();
}

const SIGNAL_TYPE_CHARS = /^[A-Za-z0-9_-]+$/;
const MAX_EARLY_LAYERS = 64;

function invalidSecretError(secret: unknown): OTError | null {
  const v = checkSecret(secret);
  return v ? new OTError("OT_INVALID_ENCRYPTION_SECRET", `Invalid encryption secret: ${describeViolation(v)}.`) : null;
}

function secretMissing(what: string): OTError {
  return new OTError("OT_ENCRYPTION_SECRET_MISSING", `This session is end-to-end encrypted and no encryption secret is set: ${what}.`);
}

// Typed on/once overloads, merged into the class.
export interface Session {
  on<K extends keyof SessionEvents & string>(type: K, handler: (event: SessionEvents[K]) => void, context?: unknown): this;
  on(type: `signal:${string}`, handler: (event: SignalEvent) => void, context?: unknown): this;
  on(handlers: { [K in keyof SessionEvents]?: (event: SessionEvents[K]) => void }, context?: unknown): this;
  on(type: string | Record<string, Handler>, handler?: Handler | unknown, context?: unknown): this;
  once<K extends keyof SessionEvents & string>(type: K, handler: (event: SessionEvents[K]) => void, context?: unknown): this;
  once(type: `signal:${string}`, handler: (event: SignalEvent) => void, context?: unknown): this;
  once(handlers: { [K in keyof SessionEvents]?: (event: SessionEvents[K]) => void }, context?: unknown): this;
  once(type: string | Record<string, Handler>, handler?: Handler | unknown, context?: unknown): this;
}

export class Session extends EventEmitter {
  /** This client's connection, once connected. */
  connection: Connection | null = null;
  private state: State = "disconnected";
  private secret: string | undefined;
  private baseKey: Uint8Array | null = null;
  private signaling: SignalingClient | null = null;
  private welcomeMsg: Joined | null = null;
  private engine: MediaEngine | null = null;
  private readonly connections = new Map<string, Connection>();
  private readonly streams = new Map<string, Stream>();
  private readonly publishers = new Set<Publisher>();
  private readonly subscribers = new Set<Subscriber>();
  /** Secret changes apply in call order: each waits for the previous one. */
  private keyChain: Promise<unknown> = Promise.resolve();
  /** E2EE signals (docs/e2ee-protocol.md §12): the secrets they open with (current + grace). */
  private signalRing = new KeyRing(SIGNAL_SUITE);
  private signalOpener = new SignalOpener();
  private sealer: { baseKey: Uint8Array; sender: string; sealer: Promise<SignalSealer> } | null = null;
  /** Incoming signals are opened one at a time, so the app sees them in arrival order. */
  private signalsIn: Promise<void> = Promise.resolve();
  /** Outgoing signals are sealed and sent in call order. */
  private signalsOut: Promise<unknown> = Promise.resolve();
  /** `video_layer_changed` for subscriptions not yet known by id (bounded). */
  private readonly earlyLayers = new Map<string, VideoLayer>();
  /** The stream the router last named loudest (activeSpeakerChanged), or null. */
  private activeSpeaker: Stream | null = null;

  constructor(
    readonly apiKey: string,
    readonly sessionId: string,
    options: SessionOptions,
    private readonly env: SessionEnvironment,
  ) {
    super();
    this.secret = options.encryptionSecret;
    this.serverUrl = options.serverUrl ?? env.defaultServerUrl() ?? undefined;
  }

  private readonly serverUrl: string | undefined;

  /** Whether the session, as the server described it at connect, is end-to-end encrypted. */
  get isEndToEndEncrypted(): boolean {
    return this.welcomeMsg?.e2ee === true;
  }

  get isConnected(): boolean {
    return this.state === "connected";
  }

  /** Connects to the session with a client token. Errors go to `callback` (and reject the returned promise). */
  connect(token: string, callback?: Callback): Promise<void> {
    const done = this.connectInner(token);
    done.then(
      () => callback?.(),
      (e: OTError) => callback?.(e),
    );
    // The callback is the OpenTok.js way; a caller that uses the promise handles rejections itself.
    if (callback) done.catch(() => undefined);
    return done;
  }

  private async connectInner(token: string): Promise<void> {
    if (this.state !== "disconnected") {
      throw new OTError("OT_CONNECT_FAILED", `connect() called while the session is ${this.state}`);
    }
    if (typeof token !== "string" || token.length === 0) throw new OTError("OT_INVALID_PARAMETER", "connect() needs a client token");
    // An invalid secret is refused before anything goes over the network.
    if (this.secret !== undefined) {
      const err = invalidSecretError(this.secret);
      if (err) throw err;
    }
    if (!this.env.WebSocket) throw new OTError("OT_UNSUPPORTED_BROWSER", "this environment has no WebSocket");
    if (!this.serverUrl) {
      throw new OTError("OT_INVALID_PARAMETER", "no Umbra server URL: pass {serverUrl} to OT.initSession or load the SDK from the server");
    }
    this.state = "connecting";
    // Events that arrive while the connect is still being completed (key derivation, media
    // setup) are held back and delivered after sessionConnected and the initial announcements.
    const early: ServerEvent[] = [];
    const client: SignalingClient = new SignalingClient(signalingUrl(this.serverUrl), this.env.WebSocket, {
      onEvent: (ev) => {
        if (this.signaling === client) this.onServerEvent(ev);
        else early.push(ev);
      },
      // A connect that fails (or is abandoned) never was a session: no sessionDisconnected for it.
      onDisconnected: (reason, detail) => {
        if (this.signaling === client) this.onDisconnected(reason, detail);
      },
      onReconnecting: () => this.dispatch(makeEvent("sessionReconnecting", {})),
      onReconnected: () => {
        this.engine?.reconnected();
        this.dispatch(makeEvent("sessionReconnected", {}));
      },
    });
    let welcome: Joined;
    try {
      welcome = await client.connect(token, this.sessionId);
    } catch (e) {
      this.state = "disconnected";
      throw e;
    }
    const suiteId = welcome.cipher_suite ?? DEFAULT_SUITE_ID;
    let engine: MediaEngine | null = null;
    try {
      if (welcome.e2ee) await this.prepareE2ee(welcome);
      if (this.env.mediaEngineFactory) {
        engine = this.env.mediaEngineFactory({ signaling: client, welcome, e2eeSuite: welcome.e2ee ? suiteId : null });
        if (this.baseKey) await engine.setKey(this.baseKey, suiteId);
      }
      // disconnect() may have been called meanwhile.
      if (this.state !== "connecting") throw new OTError("OT_CONNECT_FAILED", "disconnect() was called before the connection completed");
    } catch (e) {
      this.state = "disconnected";
      this.baseKey = null;
      engine?.close();
      client.disconnect();
      if (e instanceof OTError) throw e;
      throw new OTError(welcome.e2ee ? "OT_ENCRYPTION_ERROR" : "OT_MEDIA_ERROR", `cannot set up media for this session: ${e instanceof Error ? e.message : String(e)}`);
    }
    this.signaling = client;
    this.engine = engine;
    this.welcomeMsg = welcome;
    this.state = "connected";
    this.connection = { connectionId: welcome.connection_id, creationTime: Date.now(), data: welcome.connection_data ?? "" };
    for (const c of welcome.connections) this.addConnection(c);
    const existing = welcome.streams.map((s) => this.addStream(s)).filter((s): s is Stream => s !== null);
    this.dispatch(makeEvent("sessionConnected", { connections: [...this.connections.values()], streams: existing }));
    if (welcome.e2ee && this.secret === undefined) {
      const e = secretMissing("connected to the session, but you cannot publish or subscribe until you call session.setEncryptionSecret()");
      this.dispatch(makeEvent("exception", { name: e.name, code: e.name, message: e.message, error: e }));
    }
    // As in OpenTok.js, what was already there is announced after the connect completes.
    const initial = [...this.connections.values()];
    queueMicrotask(() => {
      for (const c of initial) this.dispatch(makeEvent("connectionCreated", { connection: c }));
      for (const s of existing) this.dispatch(makeEvent("streamCreated", { stream: s }));
      for (const ev of early.splice(0)) if (this.signaling === client) this.onServerEvent(ev);
    });
  }

  /** E2EE session: this browser must support it, a secret must be set, and its key derived. */
  private async prepareE2ee(welcome: Joined): Promise<void> {
    const support = this.env.e2eeSupport();
    if (!support.supported) {
      throw new OTError(
        "OT_UNSUPPORTED_BROWSER",
        `This session is end-to-end encrypted and this browser cannot encrypt media (missing: ${support.missing.join(", ")}). Use a current Chrome, Edge, Firefox or Safari.`,
      );
    }
    const suiteId = welcome.cipher_suite ?? DEFAULT_SUITE_ID;
    try {
      suiteById(suiteId);
    } catch {
      throw new OTError("OT_UNSUPPORTED_BROWSER", `This session uses SFrame cipher suite ${suiteId}, which this SDK does not implement.`);
    }
    // Without a secret the connection still completes (the app sees streams and can
    // set a secret now), as in the native SDK; it is told at once, and publish/subscribe fail
    // with OT_ENCRYPTION_SECRET_MISSING until a secret is set.
    if (this.secret !== undefined) this.baseKey = await deriveBaseKey(this.secret, welcome.session_id, this.env.pbkdf2Iterations);
    this.signalRing = new KeyRing(SIGNAL_SUITE);
    this.signalOpener = new SignalOpener();
    this.sealer = null;
    if (this.baseKey) this.signalRing.setBaseKey(this.baseKey, Date.now());
  }

  /**
   * Sets or changes the encryption secret. Resolves once it is in effect (outgoing frames use it,
   * incoming frames are tried with it, the previous one keeps working for 5 s); rejects with
   * OT_INVALID_ENCRYPTION_SECRET if it breaks the rule (8 to 256 characters).
   */
  setEncryptionSecret(secret: string): Promise<void> {
    const err = invalidSecretError(secret);
    if (err) return Promise.reject(err);
    this.secret = secret;
    const run = this.keyChain.then(async () => {
      const welcome = this.welcomeMsg;
      if (this.state !== "connected" || !welcome?.e2ee) return; // used at the next connect
      if (this.secret !== secret) return; // a later call supersedes this one
      const key = await deriveBaseKey(secret, welcome.session_id, this.env.pbkdf2Iterations);
      if (this.secret !== secret || this.welcomeMsg !== welcome) return;
      this.baseKey = key;
      this.signalRing.setBaseKey(key, Date.now());
      await this.engine?.setKey(key, welcome.cipher_suite ?? DEFAULT_SUITE_ID);
    });
    this.keyChain = run.catch(() => undefined);
    return run;
  }

  /** Leaves the session. `sessionDisconnected` follows with reason `clientDisconnected`. */
  disconnect(): void {
    if (this.state === "disconnected") return;
    if (this.state === "connecting") {
      this.state = "disconnected";
      return;
    }
    this.state = "disconnecting";
    this.signaling?.disconnect();
  }

  /** Sends a signal to everyone (or to `to`, a Connection). */
  signal(opts: { type?: string; data?: string; to?: Connection; retryAfterReconnect?: boolean }, callback?: Callback): Promise<void> {
    const run = (async () => {
      if (!this.signaling || this.state !== "connected") throw new OTError("OT_NOT_CONNECTED", "signal() needs a connected session");
      const data = opts.data ?? "";
      if (typeof data !== "string") throw new OTError("OT_INVALID_PARAMETER", "signal data must be a string");
      if (new TextEncoder().encode(data).length > MAX_SIGNAL_DATA) throw new OTError("OT_INVALID_PARAMETER", `signal data is limited to ${MAX_SIGNAL_DATA} bytes`);
      // The server's rule (signaling.md § signal), checked here so the app gets a clear error.
      if (opts.type !== undefined && !(SIGNAL_TYPE_CHARS.test(opts.type) && opts.type.length <= MAX_SIGNAL_TYPE)) {
        throw new OTError("OT_INVALID_PARAMETER", `signal type must be 1 to ${MAX_SIGNAL_TYPE} letters, digits, '-' or '_'`);
      }
      const req: Request = { type: "signal", data };
      if (opts.type !== undefined) req.signal_type = opts.type;
      if (opts.to) req.to = opts.to.connectionId;
      if (this.isEndToEndEncrypted) {
        // Sealed and sent in call order; never sent in the clear in an E2EE session.
        const sent = this.signalsOut.then(() => this.sealSignal(req));
        this.signalsOut = sent.catch(() => undefined);
        await sent;
        return;
      }
      await this.signaling.request(req);
    })();
    run.then(
      () => callback?.(),
      (e: OTError) => callback?.(e),
    );
    if (callback) run.catch(() => undefined);
    return run;
  }

  /** Seals `req`'s type and data (docs/e2ee-protocol.md §12) and sends it. */
  private async sealSignal(req: Request & { type: "signal" }): Promise<void> {
    const welcome = this.welcomeMsg;
    const signaling = this.signaling;
    if (!welcome || !signaling || this.state !== "connected") throw new OTError("OT_NOT_CONNECTED", "signal() needs a connected session");
    const baseKey = this.baseKey;
    if (!baseKey) throw secretMissing("set one (session.setEncryptionSecret()) before you send signals: they are end-to-end encrypted");
    const sender = welcome.connection_id;
    if (!this.sealer || this.sealer.baseKey !== baseKey || this.sealer.sender !== sender) {
      this.sealer = { baseKey, sender, sealer: SignalSealer.create(baseKey, sender) };
    }
    let wire: string;
    try {
      wire = await (await this.sealer.sealer).seal(welcome.session_id, req.signal_type ?? "", req.data);
    } catch (e) {
      if (e instanceof SignalError && e.name === "InvalidParameter") throw new OTError("OT_INVALID_PARAMETER", e.message);
      throw new OTError("OT_ENCRYPTION_ERROR", `cannot encrypt the signal: ${e instanceof Error ? e.message : String(e)}`);
    }
    await signaling.request({ ...req, signal_type: SIGNAL_WIRE_TYPE, data: wire });
  }

  /** Delivers a received signal, opened first if it is an encrypted one. */
  private async receiveSignal(ev: ServerEvent & { type: "signal" }): Promise<void> {
    const from = ev.from !== null ? this.connectionFor(ev.from) : null;
    let signalType: string | null = ev.signal_type ? ev.signal_type : null;
    let data = ev.data;
    let isEncrypted = false;
    const welcome = this.welcomeMsg;
    if (welcome?.e2ee && ev.signal_type === SIGNAL_WIRE_TYPE) {
      try {
        const plain = await this.signalOpener.open(this.signalRing, Date.now(), welcome.session_id, ev.from, ev.data);
        signalType = plain.signalType ? plain.signalType : null;
        data = plain.data;
        isEncrypted = true;
      } catch (e) {
        const reason = e instanceof SignalError && e.name !== "InvalidParameter" ? e.name : "DecryptionInternalError";
        const message = e instanceof Error ? e.message : String(e);
        if (this.welcomeMsg === welcome) this.dispatch(makeEvent("signalDecryptionFailed", { from, reason, message }));
        return;
      }
      if (this.welcomeMsg !== welcome) return; // disconnected meanwhile
    }
    // As OpenTok.js: one event whose type is "signal:<type>" (or "signal"), delivered to the
    // listeners of "signal" and of "signal:<type>".
    const e = makeEvent(signalType ? `signal:${signalType}` : "signal", { data, from, signalType, isEncrypted });
    this.dispatch(e, "signal");
    if (signalType) this.dispatch(e, e.type);
  }

  /** Moderators: removes a connection from the session. */
  forceDisconnect(connection: Connection, callback?: Callback): Promise<void> {
    const run = this.requireSignaling("forceDisconnect").then((s) => s.request({ type: "force_disconnect", connection_id: connection.connectionId })).then(() => undefined);
    run.then(() => callback?.(), (e: OTError) => callback?.(e));
    if (callback) run.catch(() => undefined);
    return run;
  }

  /** Publishes a Publisher's media (see OT.initPublisher). */
  publish(publisher: Publisher, callback?: Callback): Publisher {
    const run = (async () => {
      await this.checkMediaAllowed("publish");
      await publisher.startPublishing(this, this.engine!);
      this.publishers.add(publisher);
    })();
    run.then(() => callback?.(), (e: OTError) => {
      callback?.(e);
      publisher.dispatch(makeEvent("exception", { name: e.name, message: e.message, code: e.name }));
    });
    return publisher;
  }

  unpublish(publisher: Publisher): void {
    this.publishers.delete(publisher);
    void publisher.stopPublishing();
  }

  /** Subscribes to a stream; the Subscriber shows it in `target`. */
  subscribe(stream: Stream, target?: HTMLElement | string | null, properties?: SubscriberProperties | Callback, callback?: Callback): Subscriber {
    if (typeof properties === "function") {
      callback = properties;
      properties = {};
    }
    const sub = new Subscriber(stream, target ?? null, properties ?? {});
    const run = (async () => {
      await this.checkMediaAllowed("subscribe");
      this.subscribers.add(sub);
      // Resolves on the first decrypted frame; rejects on a secret mismatch, a stream that is not
      // encrypted, or a media failure.
      await sub.start(this.engine!, (id) => {
        const layer = this.earlyLayers.get(id);
        this.earlyLayers.delete(id);
        return layer ?? null;
      });
    })();
    run.then(() => callback?.(), (e: OTError) => {
      callback?.(e);
      // These two keep the subscription: the frames may decrypt later (encryptionSecretMatch).
      if (e.name !== "OT_ENCRYPTION_SECRET_MISMATCH" && e.name !== "OT_STREAM_NOT_ENCRYPTED") this.subscribers.delete(sub);
    });
    return sub;
  }

  unsubscribe(subscriber: Subscriber): void {
    this.subscribers.delete(subscriber);
    void subscriber.stop();
  }

  /** A stream of this session by id, this client's own included (undefined if unknown). */
  streamById(streamId: string): Stream | undefined {
    return this.streams.get(streamId);
  }

  getSubscribersForStream(stream: Stream): Subscriber[] {
    return [...this.subscribers].filter((s) => s.stream?.streamId === stream.streamId);
  }

  /** The errors of §9: the checks every publish and subscribe makes before touching media. */
  private async checkMediaAllowed(what: "publish" | "subscribe"): Promise<void> {
    if (this.state !== "connected" || !this.signaling) throw new OTError("OT_NOT_CONNECTED", `${what}() needs a connected session`);
    if (this.isEndToEndEncrypted) {
      if (!this.env.e2eeSupport().supported) throw new OTError("OT_UNSUPPORTED_BROWSER", `This session is end-to-end encrypted and this browser cannot encrypt media, so it cannot ${what}.`);
      if (this.secret === undefined || !this.baseKey) throw secretMissing(`set one (session.setEncryptionSecret()) before you ${what}`);
    }
    if (!this.engine) throw new OTError("OT_MEDIA_ERROR", `this environment has no WebRTC, so it cannot ${what}`);
  }

  private async requireSignaling(what: string): Promise<SignalingClient> {
    if (!this.signaling || this.state !== "connected") throw new OTError("OT_NOT_CONNECTED", `${what}() needs a connected session`);
    return this.signaling;
  }

  private addConnection(c: ConnectionInfo): Connection {
    const conn = toConnection(c);
    this.connections.set(conn.connectionId, conn);
    return conn;
  }

  private connectionFor(id: string): Connection {
    if (this.connection && id === this.connection.connectionId) return this.connection;
    return this.connections.get(id) ?? { connectionId: id, creationTime: 0, data: "" };
  }

  /** Registers a stream; returns null for this client's own streams (their Publisher announces them). */
  private addStream(s: StreamInfo): Stream | null {
    const stream = toStream(s, this.connectionFor(s.connection_id));
    this.streams.set(stream.streamId, stream);
    return s.connection_id === this.connection?.connectionId ? null : stream;
  }

  /**
   * Changes a property of one of this client's own streams (publishAudio/publishVideo): every
   * participant, this one included, then gets `stream_property_changed`.
   */
  setOwnStreamProperty(streamId: string, change: PropertyChange): Promise<void> {
    return this.requireSignaling("setStreamProperty")
      .then((s) => s.request({ type: "set_stream_property", stream_id: streamId, ...change }))
      .then(() => undefined);
  }

  private onServerEvent(ev: ServerEvent): void {
    switch (ev.type) {
      case "connection_created": {
        const c = this.addConnection(ev.connection);
        this.dispatch(makeEvent("connectionCreated", { connection: c }));
        return;
      }
      case "connection_destroyed": {
        const c = this.connections.get(ev.connection.connection_id) ?? toConnection(ev.connection);
        this.connections.delete(c.connectionId);
        this.signalOpener.forget(c.connectionId);
        this.dispatch(makeEvent("connectionDestroyed", { connection: c, reason: ev.reason }));
        return;
      }
      case "stream_created": {
        const s = this.addStream(ev.stream);
        if (s) this.dispatch(makeEvent("streamCreated", { stream: s }));
        else for (const p of this.publishers) p.onOwnStreamCreated(this.streams.get(ev.stream.stream_id)!);
        return;
      }
      case "stream_destroyed": {
        const ws = ev.stream;
        const s = this.streams.get(ws.stream_id) ?? toStream(ws, this.connectionFor(ws.connection_id));
        this.streams.delete(s.streamId);
        if (ws.connection_id === this.connection?.connectionId) {
          // Our own stream: its Publisher says so (and ends, if the server ended it).
          for (const p of this.publishers) {
            if (p.streamId !== s.streamId) continue;
            this.publishers.delete(p);
            p.onOwnStreamDestroyed(ev.reason);
          }
          return;
        }
        const e = this.dispatch(makeEvent("streamDestroyed", { stream: s, reason: ev.reason }, true));
        // Default action, as in OpenTok.js: subscribers of the stream go away (unless prevented).
        if (!e.isDefaultPrevented()) for (const sub of this.getSubscribersForStream(s)) this.unsubscribe(sub);
        return;
      }
      case "stream_property_changed": {
        const s = this.streams.get(ev.stream_id);
        if (!s) return;
        let change: StreamPropertyChange;
        switch (ev.property) {
          case "has_audio":
            s.hasAudio = ev.new_value;
            change = { changedProperty: "hasAudio", oldValue: ev.old_value, newValue: ev.new_value };
            break;
          case "has_video":
            s.hasVideo = ev.new_value;
            change = { changedProperty: "hasVideo", oldValue: ev.old_value, newValue: ev.new_value };
            break;
          case "video_dimensions":
            s.videoDimensions = ev.new_value;
            change = { changedProperty: "videoDimensions", oldValue: ev.old_value, newValue: ev.new_value };
            break;
          default:
            return ignoreUnknown(ev);
        }
        this.dispatch(makeEvent("streamPropertyChanged", { stream: s, ...change }));
        return;
      }
      case "signal": {
        // Opening is asynchronous (WebCrypto); the queue keeps arrival order.
        this.signalsIn = this.signalsIn.then(() => this.receiveSignal(ev)).catch(() => undefined);
        return;
      }
      case "mute_forced":
        // A moderator (REST mute) asks the publisher of this stream to mute its audio.
        for (const p of this.publishers) if (p.streamId === ev.stream_id) p.onMuteForced();
        return;
      case "media_failed":
      case "media_closed": {
        // The router's verdict on one of our peer connections: it is gone. The Publisher or
        // Subscriber concerned reports it and ends (which releases it in the engine).
        const failed = ev.type === "media_failed";
        if ("stream_id" in ev) {
          for (const p of this.publishers) {
            if (p.streamId !== ev.stream_id) continue;
            this.publishers.delete(p);
            p.onMediaEnded(failed, ev.message);
          }
          return;
        }
        for (const sub of this.subscribers) {
          if (sub.subscriptionId !== ev.subscription_id) continue;
          // media_closed: the stream ended. If the session already said so and the app kept the
          // subscriber (streamDestroyed's preventDefault, as OpenTok.js allows), it stays the
          // app's to remove; otherwise it ends here.
          if (!failed && sub.stream && !this.streams.has(sub.stream.streamId)) continue;
          this.subscribers.delete(sub);
          sub.onMediaEnded(failed, ev.message);
        }
        return;
      }
      case "media_connected":
        // Informational: the subscribe callback waits for the first frame, not for ICE.
        return;
      case "forced_disconnect":
        // The socket closes with 4001 right after; the signaling client reports that.
        return;
      case "subscribe_offer":
      case "answer":
      case "ice":
      case "subscription_ended":
      // Cluster failover: the engine moves the peer connection to the session's new router,
      // keeping its encryption state; the app sees nothing but a short freeze.
      case "media_restart":
      // The router's choice of this client's simulcast layers: the engine pauses the others.
      case "layers_wanted":
        this.engine?.handleServerEvent(ev);
        return;
      case "video_layer_changed": {
        const layer = { rid: ev.rid ?? null, temporalLayer: ev.temporal_layer ?? null, paused: ev.paused };
        const sub = [...this.subscribers].find((s) => s.subscriptionId === ev.subscription_id);
        if (sub) sub.onVideoLayerChanged(layer);
        else {
          // It may come before the subscribe's ack has named the subscription: kept for it.
          this.earlyLayers.set(ev.subscription_id, layer);
          if (this.earlyLayers.size > MAX_EARLY_LAYERS) this.earlyLayers.delete(this.earlyLayers.keys().next().value!);
        }
        return;
      }
      case "active_speaker_changed": {
        const stream = ev.stream_id ? (this.streams.get(ev.stream_id) ?? null) : null;
        if (stream === this.activeSpeaker) return;
        this.activeSpeaker = stream;
        this.dispatch(makeEvent("activeSpeakerChanged", { stream }));
        return;
      }
      default:
        ignoreUnknown(ev);
    }
  }

  private onDisconnected(reason: DisconnectReason, _detail: string): void {
    this.state = "disconnected";
    this.signaling = null;
    this.engine?.close();
    this.engine = null;
    for (const sub of this.subscribers) void sub.stop();
    this.subscribers.clear();
    for (const p of this.publishers) void p.stopPublishing();
    this.publishers.clear();
    this.connections.clear();
    this.streams.clear();
    this.earlyLayers.clear();
    this.activeSpeaker = null;
    this.welcomeMsg = null;
    this.baseKey = null;
    this.dispatch(makeEvent("sessionDisconnected", { reason }));
  }
}

// The public API, shaped like OpenTok.js: an app ports by loading this SDK instead of
// OpenTok.js (and passing its encryption secret to initSession).

import { browserEnvironment } from "./api/environment.js";
import { OTError, type OTErrorName } from "./api/errors.js";
import { EventEmitter, OTEvent } from "./api/events.js";
import { Publisher, type PublisherProperties } from "./api/publisher.js";
import { Session, type SessionEnvironment, type SessionOptions } from "./api/session.js";
import { detectE2eeSupport } from "./api/support.js";
import type { Target } from "./api/dom.js";

export { OTError, Session, Publisher, EventEmitter, OTEvent };
export type { OTErrorName, SessionOptions, PublisherProperties, SessionEnvironment };
export type { Subscriber, SubscriberProperties } from "./api/subscriber.js";
export type { Connection, Stream } from "./api/model.js";
export type {
  SessionEvents,
  PublisherEvents,
  SubscriberEvents,
  SignalEvent,
  ExceptionEvent,
  SessionDisconnectReason,
  ConnectionDestroyedReason,
  StreamDestroyedReason,
  PublisherStreamDestroyedReason,
  SubscriberDestroyedReason,
  StreamPropertyChange,
} from "./api/event-types.js";

/** OpenTok.js's global event target (`OT.on("exception", ...)`). */
const globalEvents = new EventEmitter();

type PublisherCallback = (error?: OTError) => void;

export const OT = {
  /** Umbra SDK version. */
  version: "0.1.0",

  /** Creates a Session object; `connect` it with a token. `options.encryptionSecret` enables E2EE. */
  initSession(apiKey: string, sessionId: string, options: SessionOptions = {}): Session {
    if (typeof sessionId !== "string" || sessionId.length === 0) throw new OTError("OT_INVALID_SESSION_ID", "initSession() needs a session id");
    return new Session(String(apiKey), sessionId, options, browserEnvironment());
  },

  /**
   * Creates a Publisher for the camera and microphone (or `videoSource: "screen"`), shown in
   * `target` (an element or its id). `callback` gets an error if media access fails.
   */
  initPublisher(target?: Target | PublisherProperties | PublisherCallback, properties?: PublisherProperties | PublisherCallback, callback?: PublisherCallback): Publisher {
    if (typeof target === "function") [callback, target, properties] = [target, undefined, {}];
    else if (typeof target === "object" && target !== null && !(typeof HTMLElement !== "undefined" && target instanceof HTMLElement)) [properties, target] = [target as PublisherProperties, undefined];
    if (typeof properties === "function") [callback, properties] = [properties, {}];
    const publisher = new Publisher(target as Target, properties ?? {});
    publisher.whenReady().then(
      () => callback?.(),
      (e: OTError) => {
        callback?.(e);
        globalEvents.dispatch(Object.assign(new OTEvent("exception"), { name: e.name, message: e.message, target: publisher }));
      },
    );
    return publisher;
  },

  /** Whether this browser can join end-to-end encrypted sessions (WebCrypto, workers, encoded transforms). */
  hasEndToEndEncryptionSupport(): boolean {
    return detectE2eeSupport().supported;
  },

  /** Whether this browser has WebRTC at all. */
  checkSystemRequirements(): 0 | 1 {
    return typeof (globalThis as { RTCPeerConnection?: unknown }).RTCPeerConnection === "function" ? 1 : 0;
  },

  on: globalEvents.on.bind(globalEvents),
  once: globalEvents.once.bind(globalEvents),
  off: globalEvents.off.bind(globalEvents),
};

export default OT;

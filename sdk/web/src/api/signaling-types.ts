// The signaling protocol as the Web SDK uses it. Every wire shape comes from protocol.gen.ts,
// which is generated from crates/umbra-protocol (the one definition of signaling v1); this file
// only names the parts the SDK talks about (a message of one type, the events, the requests a
// client may send) so that nothing here can drift from the server.

import type { AckBody, ClientMessage, ServerMessage } from "./protocol.gen.js";

export type {
  AckBody,
  ClientMessage,
  ConnectionInfo,
  ErrorCode,
  IceCandidate,
  MediaTarget,
  PropertyChange,
  PropertyChanged,
  PublishStream,
  Reason,
  RequestId,
  ServerFrame,
  ServerMessage,
  StreamInfo,
  VideoDimensions,
  VideoType,
} from "./protocol.gen.js";
export { CloseCode, ERROR_CODES, MAX_SIGNAL_DATA, MAX_SIGNAL_TYPE, PROTOCOL_VERSION, SERVER_MESSAGE_TYPES, SNAPSHOT_PAGE } from "./protocol.gen.js";

/** The server message of one `type`. */
export type ServerMessageOf<T extends ServerMessage["type"]> = Extract<ServerMessage, { type: T }>;

export type Welcome = ServerMessageOf<"welcome">;
export type Snapshot = ServerMessageOf<"snapshot">;

/** Messages that answer the handshake; they carry no `seq` and are never replayed. */
export type HandshakeType = "welcome" | "snapshot" | "resumed";
/** Messages that answer one request (by `id`); no `seq` either. */
export type ReplyType = "ack" | "error" | "pong";

/** A server event: every message that carries `seq` and is replayed after a resume. */
export type ServerEvent = Exclude<ServerMessage, { type: HandshakeType | ReplyType }>;
export type ServerEventType = ServerEvent["type"];

/**
 * The negotiation events of this client's peer connections, and the router's choice of
 * simulcast layers for its publications (`layers_wanted`), which the media engine handles.
 */
export type MediaEventType = "subscribe_offer" | "answer" | "ice" | "subscription_ended" | "media_restart" | "layers_wanted";
export type MediaEvent = Extract<ServerEvent, { type: MediaEventType }>;

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** The first message on a socket. */
export type HandshakeMessage = Extract<ClientMessage, { type: "connect" | "resume" }>;

/**
 * A request the client sends once connected, without its `id` (SignalingClient numbers them):
 * every client message but the handshake and `leave`, which the server does not answer.
 */
export type Request = DistributiveOmit<Exclude<ClientMessage, { type: HandshakeMessage["type"] | "leave" }>, "id">;
export type RequestType = Request["type"];

/** What the `ack` of a request carries besides its `id`. */
export type AckFor<T extends RequestType> = T extends "publish"
  ? Extract<AckBody, { stream_id: string }>
  : T extends "subscribe"
    ? Extract<AckBody, { subscription_id: string }>
    : T extends "renegotiate"
      ? Exclude<Extract<AckBody, { sdp_answer: string }>, { stream_id: string } | { subscription_id: string }>
      : Record<string, never>;

/**
 * The session as a client sees it when its connect completes: the welcome with the connections
 * and streams of every `snapshot` page that followed it (`complete` is then always true).
 */
export type Joined = Welcome & { complete: true };

/**
 * For the `default` of a `switch` over a protocol union: the compiler fails if a member was
 * left out, so a message type added to crates/umbra-protocol cannot be forgotten here. At run
 * time a newer server's unknown message reaches it and is ignored (signaling.md § Versioning:
 * old clients ignore new event types).
 */
export function ignoreUnknown(_message: never): void {
  // Deliberately nothing.
}

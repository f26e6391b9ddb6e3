// Compile-time checks of the public typings (type-checked by tsconfig.test.json, never run).
// Each @ts-expect-error line must stay an error: if the typings loosen, tsc fails.

import type { Session, Subscriber } from "../src/index.js";
import { ignoreUnknown, type ServerEvent } from "../src/api/signaling-types.js";
import type { SignalingClient } from "../src/api/signaling-client.js";

export function typedEvents(session: Session, subscriber: Subscriber): void {
  session.on("streamCreated", (e) => e.stream.streamId.toUpperCase());
  session.on("sessionDisconnected", (e) => e.reason === "networkDisconnected");
  session.on("signal:chat", (e) => e.from?.connectionId);
  session.once({ connectionCreated: (e) => e.connection.data, streamDestroyed: (e) => e.reason });
  subscriber.on("encryptionSecretMismatch", (e) => e.error.name === "OT_ENCRYPTION_SECRET_MISMATCH");
  subscriber.on("streamNotEncrypted", (e) => e.error.name === "OT_STREAM_NOT_ENCRYPTED" && e.message.length > 0);
  session.on("activeSpeakerChanged", (e) => e.stream?.streamId ?? null);
  subscriber.on("videoLayerChanged", (e) => (e.rid === "q" ? e.temporalLayer : e.paused));
  subscriber.on("audioLevelUpdated", (e) => e.audioLevel.toFixed(2));
  subscriber.setPreferredResolution({ width: 320, height: 180 }).setPreferredFrameRate(15).subscribeToVideo(true);
  // @ts-expect-error activeSpeakerChanged may name no stream
  session.on("activeSpeakerChanged", (e) => e.stream.streamId);
  // @ts-expect-error a streamCreated event has no `connection`
  session.on("streamCreated", (e) => e.connection.connectionId);
  // @ts-expect-error error names are a closed set
  subscriber.on("encryptionSecretMismatch", (e) => e.error.name === "OT_SOMETHING_ELSE");
}

// The protocol's unions are closed: a switch that forgets a server message type, or a request
// with a field the protocol does not have, fails to compile.

export function protocolIsTyped(ev: ServerEvent, signaling: SignalingClient): void {
  // @ts-expect-error an event is not `never`: every exhaustive switch must name its type
  ignoreUnknown(ev);
  // @ts-expect-error a publish needs its stream
  void signaling.request({ type: "publish" });
  // @ts-expect-error has_audio takes a boolean, not dimensions
  void signaling.request({ type: "set_stream_property", stream_id: "s", property: "has_audio", value: { width: 1, height: 1 } });
  void signaling.request({ type: "publish", stream: { name: "cam" } }).then((ack) => ack.stream_id.toUpperCase());
}

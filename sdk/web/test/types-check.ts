// Compile-time checks of the public typings (type-checked by tsconfig.test.json, never run).
// Each @ts-expect-error line must stay an error: if the typings loosen, tsc fails.

import type { Session, Subscriber } from "../src/index.js";

export function typedEvents(session: Session, subscriber: Subscriber): void {
  session.on("streamCreated", (e) => e.stream.streamId.toUpperCase());
  session.on("sessionDisconnected", (e) => e.reason === "networkDisconnected");
  session.on("signal:chat", (e) => e.from?.connectionId);
  session.once({ connectionCreated: (e) => e.connection.data, streamDestroyed: (e) => e.reason });
  subscriber.on("encryptionSecretMismatch", (e) => e.error.name === "OT_ENCRYPTION_SECRET_MISMATCH");
  // @ts-expect-error a streamCreated event has no `connection`
  session.on("streamCreated", (e) => e.connection.connectionId);
  // @ts-expect-error error names are a closed set
  subscriber.on("encryptionSecretMismatch", (e) => e.error.name === "OT_SOMETHING_ELSE");
}

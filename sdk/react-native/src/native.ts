// The native module as the components use it: found once, with one `onEvent` subscription that
// routes each event to whoever registered for its handle.
import NativeUmbra, {type NativeError, type NativeEvent, type Spec} from './NativeUmbra';

export function native(): Spec {
  if (NativeUmbra == null) {
    throw new Error(
      "Umbra's native module ('Umbra') is not linked into this app: see sdk/react-native/README.md",
    );
  }
  return NativeUmbra;
}

type Route = (event: NativeEvent) => void;
const routes = new Map<string, Route>();
let subscribed = false;

/** Delivers the events of one handle to `route` until the returned function is called. */
export function routeEvents(handle: string, route: Route): () => void {
  if (!subscribed) {
    native().onEvent(event => routes.get(event.handle)?.(event));
    subscribed = true;
  }
  routes.set(handle, route);
  return () => {
    if (routes.get(handle) === route) {
      routes.delete(handle);
    }
  };
}

/** What the components' `error` handlers receive. */
export type UmbraError = NativeError;

/** A thrown native error as an `error` event; anything else as an InternalError. */
export function toUmbraError(e: unknown): UmbraError {
  const err = e as {code?: unknown; message?: unknown};
  const code = typeof err?.code === 'string' ? err.code : 'InternalError';
  return {code, codeValue: CODE_VALUES[code] ?? 2000, message: String(err?.message ?? e)};
}

// The binding's numbers (crates/umbra-ffi/src/error.rs) for errors that are thrown rather than
// reported by an event, which carries its own.
const CODE_VALUES: Record<string, number> = {
  InvalidEncryptionSecret: 1570,
  EncryptionSecretMissing: 1571,
  NotConnected: 1010,
  IllegalState: 1015,
  InvalidParameter: 1011,
  StreamNotFound: 1604,
  ConnectionFailed: 1006,
  UnableToPublish: 1500,
  InternalError: 2000,
};

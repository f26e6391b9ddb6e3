// OpenTok.js-style events: `on/off/once` with a type string or a map of types to handlers, an
// optional context for `this`, and event objects with `type`, `target` and preventDefault.

export class OTEvent {
  private defaultPrevented = false;
  target: unknown = null;

  constructor(
    readonly type: string,
    readonly cancelable = false,
  ) {}

  preventDefault(): void {
    if (this.cancelable) this.defaultPrevented = true;
  }

  isDefaultPrevented(): boolean {
    return this.defaultPrevented;
  }
}

/** An event carrying extra fields (`stream`, `connection`, `reason`, `data`, ...). */
export type OTEventWith<T> = OTEvent & T;

export function makeEvent<T extends object>(type: string, fields: T, cancelable = false): OTEventWith<T> {
  if ("type" in fields) throw new TypeError("event fields must not override the event type");
  return Object.assign(new OTEvent(type, cancelable), fields);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Handler = (event: any) => void;
type HandlerMap = Record<string, Handler>;

interface Listener {
  handler: Handler;
  context: unknown;
  once: boolean;
}

export class EventEmitter {
  private readonly listeners = new Map<string, Listener[]>();

  /** `on("streamCreated", fn, ctx)` or `on({streamCreated: fn, signal: fn2}, ctx)`. */
  on(type: string | HandlerMap, handler?: Handler | unknown, context?: unknown): this {
    return this.add(type, handler, context, false);
  }

  once(type: string | HandlerMap, handler?: Handler | unknown, context?: unknown): this {
    return this.add(type, handler, context, true);
  }

  /** Removes matching listeners; with no arguments, all of them; with only a type, all of that type. */
  off(type?: string | HandlerMap, handler?: Handler | unknown, context?: unknown): this {
    if (type === undefined) {
      this.listeners.clear();
      return this;
    }
    if (typeof type === "object") {
      for (const [t, h] of Object.entries(type)) this.off(t, h, handler);
      return this;
    }
    for (const t of type.split(/\s+/).filter(Boolean)) {
      if (handler === undefined) {
        this.listeners.delete(t);
        continue;
      }
      const kept = (this.listeners.get(t) ?? []).filter((l) => !(l.handler === handler && (context === undefined || l.context === context)));
      if (kept.length) this.listeners.set(t, kept);
      else this.listeners.delete(t);
    }
    return this;
  }

  /** Whether anyone listens to `type` (work done only for listeners checks this). */
  hasListeners(type: string): boolean {
    return (this.listeners.get(type)?.length ?? 0) > 0;
  }

  /**
   * Calls the listeners of `listenersOf` (default: `event.type`); an exception in one is
   * reported and does not stop the others.
   */
  dispatch(event: OTEvent, listenersOf: string = event.type): OTEvent {
    event.target = this;
    const list = this.listeners.get(listenersOf);
    if (!list) return event;
    for (const l of [...list]) {
      if (l.once) this.off(listenersOf, l.handler, l.context);
      try {
        l.handler.call(l.context ?? this, event);
      } catch (e) {
        // A throwing app handler must not break the SDK's own state machine: report it the
        // way the browser reports an exception in an event listener, and go on.
        const report = (globalThis as { reportError?: (e: unknown) => void }).reportError;
        if (typeof report === "function") report(e);
        else
          setTimeout(() => {
            throw e;
          });
      }
    }
    return event;
  }

  private add(type: string | HandlerMap, handler: unknown, context: unknown, once: boolean): this {
    if (typeof type === "object") {
      for (const [t, h] of Object.entries(type)) this.add(t, h, handler, once);
      return this;
    }
    if (typeof handler !== "function") throw new TypeError(`a handler function is required for "${type}"`);
    for (const t of type.split(/\s+/).filter(Boolean)) {
      const list = this.listeners.get(t) ?? [];
      list.push({ handler: handler as Handler, context, once });
      this.listeners.set(t, list);
    }
    return this;
  }
}

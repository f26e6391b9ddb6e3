// OpenTok.js-style events.

import { test } from "node:test";
import assert from "node:assert/strict";
import { EventEmitter, makeEvent } from "../src/api/events.js";

test("on/once/off with strings, maps, contexts; handler exceptions do not stop others", async () => {
  const e = new EventEmitter();
  const seen: string[] = [];
  const ctx = { name: "ctx" };
  const h = function (this: { name: string }, ev: { type: string }) {
    seen.push(`${this.name}:${ev.type}`);
  };
  e.on("a", h, ctx);
  e.once({ b: (ev: { type: string }) => seen.push(`once:${ev.type}`) });
  e.on("a b", () => seen.push("multi"));
  e.on("a", () => {
    throw new Error("app bug");
  });
  const reported: Error[] = [];
  (globalThis as { reportError?: (e: Error) => void }).reportError = (err) => reported.push(err);
  e.dispatch(makeEvent("a", {}));
  e.dispatch(makeEvent("b", {}));
  e.dispatch(makeEvent("b", {}));
  assert.deepEqual(seen, ["ctx:a", "multi", "once:b", "multi", "multi"]);
  assert.deepEqual(reported.map((x) => x.message), ["app bug"], "reported like an exception in a browser event listener");
  e.off("a", h, ctx);
  seen.length = 0;
  e.dispatch(makeEvent("b", {}));
  e.off("b");
  e.dispatch(makeEvent("b", {}));
  e.off();
  e.dispatch(makeEvent("a", {}));
  assert.deepEqual(seen, ["multi"]);
  const cancel = makeEvent("streamDestroyed", { reason: "x" }, true);
  cancel.preventDefault();
  assert.equal(cancel.isDefaultPrevented(), true);
  assert.throws(() => makeEvent("x", { type: "y" }));
  assert.throws(() => e.on("a", 42 as unknown as () => void), TypeError);
});

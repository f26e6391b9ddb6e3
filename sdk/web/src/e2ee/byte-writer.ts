// A growable output buffer: framing writes frames byte by byte (H.264 escaping) and in pieces,
// and repeated concatenation would copy the frame many times.

export class ByteWriter {
  private buf: Uint8Array;
  private len = 0;

  constructor(capacity = 256) {
    this.buf = new Uint8Array(Math.max(16, capacity));
  }

  get length(): number {
    return this.len;
  }

  private reserve(extra: number): void {
    if (this.len + extra <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + extra) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  push(b: number): void {
    this.reserve(1);
    this.buf[this.len++] = b;
  }

  pushBytes(bytes: Uint8Array): void {
    this.reserve(bytes.length);
    this.buf.set(bytes, this.len);
    this.len += bytes.length;
  }

  /** The bytes written so far (a view; the writer must not be used afterwards). */
  finish(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }

  /**
   * The bytes written so far in an ArrayBuffer of exactly their length (what an encoded frame's
   * `data` takes): the writer's own buffer when the capacity was exact, else a copy.
   */
  finishExact(): Uint8Array<ArrayBuffer> {
    const whole = this.len === this.buf.length && this.buf.byteOffset === 0 && this.buf.buffer instanceof ArrayBuffer;
    return (whole ? this.buf : this.buf.slice(0, this.len)) as Uint8Array<ArrayBuffer>;
  }
}

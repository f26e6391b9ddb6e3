#!/usr/bin/env python3
"""Splits an encoder's output into frames and writes them as `u32 big-endian length || bytes`
records (the `.frames` fixtures the umbra-e2ee tests read).

usage: split.py ivf|annexb|ogg INPUT OUTPUT
  ivf     IVF container (VP8, VP9, AV1): one record per IVF frame (for AV1, a temporal unit)
  annexb  H.264 Annex B stream with access unit delimiters: one record per access unit
  ogg     Ogg Opus: one record per Opus packet, after the OpusHead and OpusTags headers
"""
import struct
import sys


def ivf(data):
    assert data[:4] == b"DKIF", "not IVF"
    header_len = struct.unpack_from("<H", data, 6)[0]
    pos = header_len
    while pos < len(data):
        size = struct.unpack_from("<I", data, pos)[0]
        pos += 12
        yield data[pos:pos + size]
        pos += size


def annexb(data):
    # Access units start at an AUD (nal_unit_type 9) preceded by a start code.
    starts = []
    i = 0
    while True:
        i = data.find(b"\x00\x00\x01", i)
        if i < 0:
            break
        if i + 3 < len(data) and data[i + 3] & 0x1F == 9:
            s = i - 1 if i > 0 and data[i - 1] == 0 else i
            starts.append(s)
        i += 3
    starts.append(len(data))
    for a, b in zip(starts, starts[1:]):
        yield data[a:b]


def ogg(data):
    packets, current, pos = [], b"", 0
    while pos < len(data):
        assert data[pos:pos + 4] == b"OggS", "lost Ogg sync"
        nsegs = data[pos + 26]
        lacing = data[pos + 27:pos + 27 + nsegs]
        pos += 27 + nsegs
        for lace in lacing:
            current += data[pos:pos + lace]
            pos += lace
            if lace < 255:
                packets.append(current)
                current = b""
    assert packets[0].startswith(b"OpusHead") and packets[1].startswith(b"OpusTags")
    return packets[2:]


def main():
    kind, src, dst = sys.argv[1:4]
    data = open(src, "rb").read()
    frames = list({"ivf": ivf, "annexb": annexb, "ogg": ogg}[kind](data))
    with open(dst, "wb") as out:
        for f in frames:
            out.write(struct.pack(">I", len(f)))
            out.write(f)
    print(f"{dst}: {len(frames)} frames, {sum(map(len, frames))} bytes")


if __name__ == "__main__":
    main()

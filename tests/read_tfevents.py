#!/usr/bin/env python3
"""read_tfevents.py - a TensorBoard event file reader written from the formats' specs, for
tests/test_summary.c (no TensorFlow, no protobuf package, nothing of sdl's code):
  TFRecord: u64 length, u32 masked CRC-32C of those 8 bytes, data, u32 masked CRC-32C of
  the data (little-endian; mask(c) = ((c >> 15) | (c << 17)) + 0xa282ead8 mod 2^32).
  protobuf wire format: key = field << 3 | wire type; 0 varint, 1 fixed64, 2 length, 5 fixed32.
  tensorflow/core/util/event.proto: Event{wall_time=1 double, step=2 int64,
  file_version=3 string, summary=5 Summary}; summary.proto: Summary{value=1 repeated Value},
  Value{tag=1 string, simple_value=2 float, image=4 Image}, Image{height=1, width=2,
  colorspace=3, encoded_image_string=4 bytes}.
Prints one line per event: "version V step S", "scalar TAG STEP VALUE" (9 digits: the float32 exactly),
"image TAG STEP H W C PNG_W PNG_H" (the PNG's own IHDR size); exits 1 with a reason on any
malformed byte."""
import struct, sys

def crc32c_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t
TABLE = crc32c_table()

def masked_crc(data):
    c = 0xFFFFFFFF
    for b in data:
        c = TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    c ^= 0xFFFFFFFF
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF

def records(blob):
    pos, n = 0, 0
    while pos < len(blob):
        if len(blob) - pos < 12: sys.exit("record %d: truncated header" % n)
        head = blob[pos:pos + 8]
        (length,) = struct.unpack("<Q", head)
        (hcrc,) = struct.unpack("<I", blob[pos + 8:pos + 12])
        if hcrc != masked_crc(head): sys.exit("record %d: bad length CRC" % n)
        data = blob[pos + 12:pos + 12 + length]
        if len(data) != length or len(blob) < pos + 16 + length: sys.exit("record %d: truncated data" % n)
        (dcrc,) = struct.unpack("<I", blob[pos + 12 + length:pos + 16 + length])
        if dcrc != masked_crc(data): sys.exit("record %d: bad data CRC" % n)
        yield data
        pos += 16 + length
        n += 1

def varint(b, i):
    v, shift = 0, 0
    while True:
        if i >= len(b) or shift > 63: sys.exit("bad varint")
        v |= (b[i] & 0x7F) << shift
        i += 1
        if not b[i - 1] & 0x80: return v, i
        shift += 7

def fields(b):
    i = 0
    while i < len(b):
        key, i = varint(b, i)
        f, w = key >> 3, key & 7
        if w == 0: v, i = varint(b, i)
        elif w == 1: v, i = b[i:i + 8], i + 8
        elif w == 5: v, i = b[i:i + 4], i + 4
        elif w == 2:
            n, i = varint(b, i)
            v, i = b[i:i + n], i + n
        else: sys.exit("wire type %d" % w)
        if i > len(b): sys.exit("field %d runs past its message" % f)
        yield f, w, v

def main(path):
    for rec in records(open(path, "rb").read()):
        ev = {f: v for f, w, v in fields(rec)}
        (wall,) = struct.unpack("<d", ev[1])
        step = ev.get(2, 0)
        if step >= 1 << 63: step -= 1 << 64
        if wall < 1.5e9: sys.exit("wall_time %r is not a Unix time" % wall)
        if 3 in ev:
            print("version %s step %d" % (ev[3].decode(), step))
            continue
        for f, w, value in fields(ev[5]):
            if f != 1: sys.exit("Summary field %d" % f)
            val = {vf: vv for vf, vw, vv in fields(value)}
            tag = val[1].decode()
            if 2 in val:
                print("scalar %s %d %.9g" % (tag, step, struct.unpack("<f", val[2])[0]))
            elif 4 in val:
                im = {k: v for k, w, v in fields(val[4])}
                png = im[4]
                if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR": sys.exit("image %s: not a PNG" % tag)
                pw, ph = struct.unpack(">II", png[16:24])
                print("image %s %d %d %d %d %d %d" % (tag, step, im[1], im[2], im[3], pw, ph))
            else:
                sys.exit("Value %s holds neither simple_value nor image" % tag)

if __name__ == "__main__":
    main(sys.argv[1])

#!/usr/bin/python3
"""tfrecord_ref.py - an independent TFRecord / tf.train.Example / TensorProto reader and
writer, written from the format descriptions (no TensorFlow, no protobuf library), used by
tests/test_tfrecord.c to check sdl's files and to give sdl files it did not write.

    tfrecord_ref.py check FILE    read FILE (checking both CRCs of every record) and check
                                  that it holds the records of expected(i); exit 1 if not
    tfrecord_ref.py write FILE    write those records with this file's own encoder

Format: each record is u64 length, u32 masked CRC-32C of the 8 length bytes, the data,
u32 masked CRC-32C of the data (little-endian); masked(c) = ((c >> 15 | c << 17) + 0xa282ead8)
mod 2^32. CRC-32C: reflected polynomial 0x82F63B78, init and final xor 0xFFFFFFFF.
Protobuf: tags are varints (field << 3 | wire type); 0 varint, 1 fixed64, 2 length-delimited,
5 fixed32. Example{features=1: Features{feature=1: map entry{key=1, value=2: Feature}}},
Feature{bytes_list=1 | float_list=2 | int64_list=3: {value=1 (repeated)}}.
TensorProto{dtype=1, tensor_shape=2: {dim=2: {size=1}}, tensor_content=4, float_val=5}.
"""
import struct, sys

TABLE = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
    TABLE.append(c)

def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF

def masked(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF

def f32(x):
    return struct.unpack('<f', struct.pack('<f', x))[0]

NREC = 6
def expected(i):
    """record i: an Example (the last one empty) as {name: (kind, values)}"""
    if i == NREC - 1:
        return {}
    image = bytes(((i * 31 + k * 7) & 255) for k in range(10 + i))
    tensor = ('f32', (2, i + 1), [f32(k * 0.25 - i) for k in range(2 * (i + 1))])
    return {'label': ('int64', [i, -3 * i, (1 << 40) + i]),
            'image': ('bytes', [image, b'key-%d' % i]),
            'score': ('float', [f32(i * 0.5), -1.25, f32(i * 0.125)]),
            'tensor': ('tensor', tensor)}

# ---- protobuf wire format ----
def varint(b, p):
    v, s = 0, 0
    while True:
        if p >= len(b) or s > 63:
            raise ValueError('bad varint')
        x = b[p]; p += 1
        v |= (x & 0x7F) << s; s += 7
        if not x & 0x80:
            return v, p

def fields(b):
    p, out = 0, []
    while p < len(b):
        tag, p = varint(b, p)
        f, w = tag >> 3, tag & 7
        if w == 0:
            v, p = varint(b, p)
        elif w == 1:
            v = b[p:p + 8]; p += 8
        elif w == 5:
            v = b[p:p + 4]; p += 4
        elif w == 2:
            n, p = varint(b, p)
            v = b[p:p + n]; p += n
        else:
            raise ValueError('wire type %d' % w)
        if p > len(b):
            raise ValueError('truncated field')
        out.append((f, w, v))
    return out

def parse_tensor(b):
    dtype, shape, content, floats = 0, [], None, []
    for f, w, v in fields(b):
        if f == 1: dtype = v
        elif f == 2:
            shape = [dict((g, x) for g, _, x in fields(d)).get(1, 0) for h, _, d in fields(v) if h == 2]
        elif f == 4: content = v
        elif f == 5:
            floats += list(struct.unpack('<%df' % (len(v) // 4), v)) if w == 2 else [struct.unpack('<f', v)[0]]
    assert dtype == 1, 'dtype %d' % dtype
    if content is not None:
        floats = list(struct.unpack('<%df' % (len(content) // 4), content))
    return ('f32', tuple(shape), floats)

def parse_example(b):
    out = {}
    for f, w, v in fields(b):
        if f != 1: continue
        for g, _, entry in fields(v):
            if g != 1: continue
            kv = dict((h, x) for h, _, x in fields(entry))
            name, feat = kv.get(1, b'').decode(), kv.get(2, b'')
            for kind, _, lst in fields(feat):
                vals = []
                for h, wt, x in fields(lst):
                    if kind == 1: vals.append(bytes(x))
                    elif kind == 2:
                        vals += list(struct.unpack('<%df' % (len(x) // 4), x)) if wt == 2 else [struct.unpack('<f', x)[0]]
                    elif kind == 3:
                        if wt == 2:
                            p = 0
                            while p < len(x):
                                u, p = varint(x, p); vals.append(u)
                        else:
                            vals.append(x)
                if kind == 3:
                    vals = [u - (1 << 64) if u >= 1 << 63 else u for u in vals]
                out[name] = (['bytes', 'float', 'int64'][kind - 1], vals)
    if 'tensor' in out:
        out['tensor'] = ('tensor', parse_tensor(out['tensor'][1][0]))
    return out

def read_records(path):
    data = open(path, 'rb').read()
    p, recs = 0, []
    while p < len(data):
        assert len(data) - p >= 12, '%s: record %d: truncated header' % (path, len(recs))
        n, = struct.unpack('<Q', data[p:p + 8])
        assert struct.unpack('<I', data[p + 8:p + 12])[0] == masked(data[p:p + 8]), 'record %d: length CRC' % len(recs)
        body = data[p + 12:p + 12 + n]
        assert len(body) == n and len(data) >= p + 16 + n, 'record %d: truncated' % len(recs)
        assert struct.unpack('<I', data[p + 12 + n:p + 16 + n])[0] == masked(body), 'record %d: data CRC' % len(recs)
        recs.append(body)
        p += 16 + n
    return recs

# ---- this file's own encoder ----
def put_varint(v):
    v &= (1 << 64) - 1
    out = bytearray()
    while True:
        x = v & 0x7F; v >>= 7
        out.append(x | (0x80 if v else 0))
        if not v:
            return bytes(out)

def put_len(field, b):
    return put_varint(field << 3 | 2) + put_varint(len(b)) + b

def encode_example(d):
    feats = b''
    for name in sorted(d):  # another order than sdl's: readers must not care
        kind, vals = d[name]
        if kind == 'bytes':
            lst = b''.join(put_len(1, x) for x in vals); k = 1
        elif kind == 'float':
            lst = put_len(1, struct.pack('<%df' % len(vals), *vals)); k = 2
        elif kind == 'int64':  # unpacked, one field per value (proto2's default)
            lst = b''.join(put_varint(1 << 3) + put_varint(x) for x in vals); k = 3
        else:  # tensor: float_val packed instead of tensor_content
            _, shape, fl = vals
            shp = b''.join(put_len(2, put_varint(1 << 3) + put_varint(s)) for s in shape)
            tp = put_varint(1 << 3) + put_varint(1) + put_len(2, shp) + put_len(5, struct.pack('<%df' % len(fl), *fl))
            lst = put_len(1, tp); k = 1
        feats += put_len(1, put_len(1, name.encode()) + put_len(2, put_len(k, lst)))
    return put_len(1, feats)

def main():
    cmd, path = sys.argv[1], sys.argv[2]
    if cmd == 'write':
        with open(path, 'wb') as f:
            for i in range(NREC):
                body = encode_example(expected(i))
                n = struct.pack('<Q', len(body))
                f.write(n + struct.pack('<I', masked(n)) + body + struct.pack('<I', masked(body)))
        return 0
    recs = read_records(path)
    if len(recs) != NREC:
        print('%s: %d records, expected %d' % (path, len(recs), NREC)); return 1
    for i, r in enumerate(recs):
        got = parse_example(r)
        if got != expected(i):
            print('%s: record %d differs:\n  got      %r\n  expected %r' % (path, i, got, expected(i))); return 1
    print('%s: %d records, CRCs and contents match' % (path, len(recs)))
    return 0

if __name__ == '__main__':
    sys.exit(main())

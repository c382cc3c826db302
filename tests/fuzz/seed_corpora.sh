#!/bin/bash
# seed_corpora.sh OUTDIR - seed corpora for fuzz_tfrecord, fuzz_zip, fuzz_stream and
# fuzz_image from real files: Python's zipfile and tarfile, tests/tfrecord_ref.py's encoder
# (written from the format spec), and the JPEG fixture. Then, for example:
#   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I. \
#         -fsanitize-ignorelist=tests/fuzz/ubsan_ignore.txt \
#         tests/fuzz/fuzz_stream.c -o fuzz_stream -lm -lpthread
#   ./fuzz_stream OUTDIR/stream -max_total_time=600
# (-fno-sanitize-recover=undefined: undefined behaviour stops the run as a finding; the
# ignorelist turns off one check in stb 2.27, see tests/fuzz/README.md)
set -e
OUT=$1
[ -n "$OUT" ] || { echo "usage: $0 OUTDIR"; exit 2; }
cd "$(dirname "$0")/../.."
mkdir -p "$OUT/tfrecord" "$OUT/zip" "$OUT/stream" "$OUT/image"
/usr/bin/python3 tests/tfrecord_ref.py write "$OUT/tfrecord/ref.tfrecord"
/usr/bin/python3 tests/make_zip.py "$OUT/zip"
cp tests/data/*.npz "$OUT/zip/"
cp tests/data/rgb_8x8.jpg "$OUT/image/"
/usr/bin/python3 - "$OUT/image" <<'PY'
# small PNGs and JPEGs as PIL writes them: each colour type and bit depth stb's PNG decoder
# handles (grey, grey+alpha, RGB, RGBA, palette, 16 bit, Adam7 interlaced) and baseline,
# progressive, greyscale and 4:2:0 / 4:4:4 JPEGs
import struct, sys, zlib
from PIL import Image
out, w, h = sys.argv[1], 13, 9
rgb = Image.new('RGB', (w, h))
rgb.putdata([(x * 19 % 256, y * 28 % 256, (x * y * 7) % 256) for y in range(h) for x in range(w)])
for mode in ('L', 'LA', 'RGB', 'RGBA', 'P', 'I;16', '1'):
    rgb.convert(mode if mode != 'I;16' else 'I').save('%s/%s.png' % (out, mode.replace(';', '')))
def chunk(t, d): return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d))
raw = b''  # PIL writes no interlaced PNG: Adam7 by hand (7 passes, filter 0 on every row)
for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)):
    for y in range(y0, h, dy):
        if x0 < w: raw += b'\0' + b''.join(bytes(rgb.getpixel((x, y))) for x in range(x0, w, dx))
open(out + '/adam7.png', 'wb').write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 1))
                                      + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))
rgb.save(out + '/baseline.jpg', quality=90)
rgb.save(out + '/progressive.jpg', progressive=True, quality=75)
rgb.save(out + '/s444.jpg', subsampling=0)
rgb.save(out + '/s420.jpg', subsampling=2, optimize=True)
rgb.convert('L').save(out + '/grey.jpg')
PY
/usr/bin/python3 - "$OUT/stream" <<'PY'
import io, struct, sys, tarfile
sys.path.insert(0, 'tests')
import tfrecord_ref as R
out, jpg = sys.argv[1], open('tests/data/rgb_8x8.jpg', 'rb').read()
buf = io.BytesIO()  # fuzz_stream reads an input whose first byte is even as a tar: names start with 'b'
with tarfile.open(fileobj=buf, mode='w', format=tarfile.USTAR_FORMAT) as t:
    for i in range(3):
        for ext, data in (('cls', str(i).encode()), ('jpg', jpg)):
            ti = tarfile.TarInfo('b%03d.%s' % (i, ext)); ti.size = len(data); t.addfile(ti, io.BytesIO(data))
open(out + '/shard.tar', 'wb').write(buf.getvalue())
buf = io.BytesIO()  # raw images (fuzz_stream's raw_shape (2, 3, 3): 18 bytes) beside a JPEG and an extra member
with tarfile.open(fileobj=buf, mode='w', format=tarfile.USTAR_FORMAT) as t:
    for i, ext in enumerate(('bin', 'raw', 'jpg')):
        for e, data in (('cls', str(i).encode()), (ext, jpg if ext == 'jpg' else bytes(range(i, i + 18))), ('json', b'{}')):
            ti = tarfile.TarInfo('b%03d.%s' % (i, e)); ti.size = len(data); t.addfile(ti, io.BytesIO(data))
open(out + '/raw.tar', 'wb').write(buf.getvalue())
recs = b''  # and one whose first byte (the first record's length) is odd as a TFRecord
for i in range(3):
    pad = b'x'
    while True:
        ex = R.encode_example({'image': ('bytes', [jpg]), 'label': ('int64', [i]), 'pad': ('bytes', [pad])})
        if i or len(ex) % 2: break
        pad += b'x'
    n = struct.pack('<Q', len(ex))
    recs += n + struct.pack('<I', R.masked(n)) + ex + struct.pack('<I', R.masked(ex))
open(out + '/shard.tfrecord', 'wb').write(recs)
PY
ls -R "$OUT"

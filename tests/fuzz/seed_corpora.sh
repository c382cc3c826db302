#!/bin/bash
# seed_corpora.sh OUTDIR - seed corpora for fuzz_tfrecord, fuzz_zip, fuzz_stream and
# fuzz_image from real files: Python's zipfile and tarfile, tests/tfrecord_ref.py's encoder
# (written from the format spec), and the JPEG fixture. Then, for example:
#   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I. \
#         tests/fuzz/fuzz_stream.c -o fuzz_stream -lm -lpthread
#   ./fuzz_stream OUTDIR/stream -max_total_time=600
# (-fno-sanitize-recover=undefined: undefined behaviour stops the run as a finding)
set -e
OUT=$1
[ -n "$OUT" ] || { echo "usage: $0 OUTDIR"; exit 2; }
cd "$(dirname "$0")/../.."
mkdir -p "$OUT/tfrecord" "$OUT/zip" "$OUT/stream" "$OUT/image"
/usr/bin/python3 tests/tfrecord_ref.py write "$OUT/tfrecord/ref.tfrecord"
/usr/bin/python3 tests/make_zip.py "$OUT/zip"
cp tests/data/*.npz "$OUT/zip/"
cp tests/data/rgb_8x8.jpg "$OUT/image/"
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

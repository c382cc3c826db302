#!/usr/bin/env bash
# mutate.sh - part of sdl's CUDA emulator - public domain or MIT (see sdl.h)
#
#   bash tools/cuda_emu/mutate.sh 'OLD' 'NEW' [test_name ...]
#
# Checks that the CUDA test catches a bug: copies sdl_cuda.h with the first OLD replaced by
# NEW (plain text, not a pattern), builds tests/cuda_test_ops.cu (TEST=cuda_test_graph: that
# test instead) against it under the emulator and runs it (only the named tests, e.g.
# test_activations, when names are given). The work
# goes to build/cuda_emu-mutant; the repository is not touched. Prints the test's closing
# line; a mutant that still passes is a hole in the tests.
set -eu
cd "$(dirname "$0")/../.."
[ $# -ge 2 ] || { echo "usage: bash tools/cuda_emu/mutate.sh 'OLD' 'NEW' [test_name ...]"; exit 2; }
old=$1 new=$2; shift 2
T=${TEST:-cuda_test_ops}
D=build/cuda_emu-mutant
rm -rf "$D"; mkdir -p "$D/src"
cp tools/cuda_emu/inc/*.h "$D/"
python3 - "$old" "$new" "$D" "$T" "$@" <<'PY'
import re, sys
old, new, d, test, want = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], set(sys.argv[5:])
s = open('sdl_cuda.h', encoding='utf-8').read()
if old not in s:
    sys.exit('mutate.sh: OLD not found in sdl_cuda.h: %r' % old)
open(d + '/sdl_cuda.mutant.h', 'w', encoding='utf-8').write(s.replace(old, new, 1))
t = open('tests/%s.cu' % test, encoding='utf-8').read()
if want:
    t = re.sub(r'    RUN\((\w+)\);\n', lambda m: m.group(0) if m.group(1) in want else '', t)
open(d + '/%s.cu' % test, 'w', encoding='utf-8').write(t)
PY
python3 tools/cuda_emu/convert.py "$D/sdl_cuda.mutant.h" "$D/sdl_cuda.h"
python3 tools/cuda_emu/convert.py "$D/$T.cu" "$D/src/$T.cpp"
${CXX:-c++} -std=c++17 -O1 -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=0 -D__CUDACC__ -w -I"$D" -Itests -I. \
    "$D/src/$T.cpp" -o "$D/$T" -lm -lpthread
rc=0
"$D/$T" >"$D/log" 2>&1 || rc=$?
grep -E '^FAIL|emu:' "$D/log" | head -8 || true
echo "mutant (exit $rc): $(grep -E '^[0-9]+ passed, [0-9]+ failed' "$D/log" | tail -1)"

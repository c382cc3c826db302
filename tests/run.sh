#!/usr/bin/env bash
# tests/run.sh - builds and runs every test, then prints "N passed, N failed".
#   tests/test_*.c        plain C programs (cc), each ending with its own "N passed, N failed"
#   tests/test_*.cpp      C++ programs (c++)
#   tests/mpi_test_*.c    MPI programs (mpicc), run under mpirun with each -np listed in a
#                         line "// mpirun-np: 2 3" of the file
#   tests/cuda_test_*.cu  CUDA programs (nvcc); run only where a GPU is present. Each is also
#                         built with c++ against tools/cuda_emu (a CPU emulation of the CUDA
#                         runtime and cuBLAS) and run, named "(CPU emulation of CUDA)": that
#                         checks the kernels' logic, not the GPU (see tools/cuda_emu/README)
#   tests/mpi_cuda_test_*.cu  MPI + CUDA programs (sdl_mpi.h's GPU path): nvcc where present,
#                         and always with mpicxx against tools/cuda_emu (see the block below)
# and compiles every header as C99/C11 (gcc, clang), C++17 (g++, nvcc -x cu), and with SDL_STATIC.
# SAN=1 builds everything with -fsanitize=address,undefined.
set -u
cd "$(dirname "$0")/.."
B=build/tests${SAN:+-san}
mkdir -p "$B"
CC=${CC:-cc}
CXX=${CXX:-c++}
OPT=${TEST_OPT:--O3 -march=native}
WARN="-Wall -Wextra -Werror"
SANFLAGS=""
[ "${SAN:-}" = 1 ] && SANFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
NVCC=$(command -v nvcc || { [ -x /usr/local/cuda/bin/nvcc ] && echo /usr/local/cuda/bin/nvcc; })
MPICC=$(command -v mpicc)
MPIRUN=$(command -v mpirun)
PYTHON=$(command -v python3)
passed=0 failed=0 skipped=0

pass() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; [ -f "${2:-}" ] && sed 's/^/     /' "$2" | tail -40; }
skip() { skipped=$((skipped + 1)); echo "skip $1"; }

# adds the counts from a program's closing "N passed, N failed" line; a crash or a missing
# line counts as one failure
count_run() { # name log rc
    local line
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$2" | tail -1)
    if [ -n "$line" ]; then
        local p f
        p=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')
        f=$(echo "$line" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
        passed=$((passed + p)); failed=$((failed + f))
        echo "---- $1: $line"
        if [ "$f" -gt 0 ] || [ "$3" -ne 0 ]; then
            grep -E 'FAIL|ERROR|Sanitizer|runtime error' "$2" | head -40 | sed 's/^/     /'
            [ "$f" -eq 0 ] && fail "$1 exited with $3" "$2"
        fi
    else
        fail "$1 (exit $3, no closing line)" "$2"
    fi
}

# ---- the headers compile everywhere -------------------------------------------------------
hdr_check() { # name compiler args...
    local name=$1; shift
    if "$@" >"$B/hdr.log" 2>&1; then pass "$name"; else fail "$name" "$B/hdr.log"; fi
}
printf '#define SDL_IMPLEMENTATION\n#include "sdl.h"\nint main(void){return 0;}\n' >"$B/hdr_c.c"
printf '#define SDL_STATIC\n#define SDL_IMPLEMENTATION\n#include "sdl.h"\nint main(void){return 0;}\n' >"$B/hdr_static.c"
cp "$B/hdr_c.c" "$B/hdr_cpp.cpp"
for cc in gcc clang; do
    command -v $cc >/dev/null || { skip "headers with $cc: $cc not installed"; continue; }
    for std in c99 c11; do hdr_check "sdl.h compiles as $std with $cc -Wall -Wextra -Werror" $cc -std=$std $WARN -I. -c "$B/hdr_c.c" -o "$B/hdr.o"; done
done
hdr_check "sdl.h compiles with SDL_STATIC" $CC -std=c11 $WARN -Wno-unused-function -I. -c "$B/hdr_static.c" -o "$B/hdr.o"
hdr_check "sdl.h compiles as C++17 with g++" g++ -std=c++17 $WARN -I. -c "$B/hdr_cpp.cpp" -o "$B/hdr.o"
if [ -n "$MPICC" ]; then
    printf '#define SDL_IMPLEMENTATION\n#include "sdl.h"\n#define SDL_MPI_IMPLEMENTATION\n#include "sdl_mpi.h"\nint main(void){return 0;}\n' >"$B/hdr_mpi.c"
    hdr_check "sdl_mpi.h compiles with mpicc -std=c99 $WARN" "$MPICC" -std=c99 $WARN -I. -c "$B/hdr_mpi.c" -o "$B/hdr.o"
    hdr_check "sdl_mpi.h compiles with mpicc -std=c11 $WARN" "$MPICC" -std=c11 $WARN -I. -c "$B/hdr_mpi.c" -o "$B/hdr.o"
    cp "$B/hdr_mpi.c" "$B/hdr_mpi.cpp"
    hdr_check "sdl_mpi.h compiles as C++17" "$MPICC" -x c++ -std=c++17 $WARN -I. -c "$B/hdr_mpi.cpp" -o "$B/hdr.o"
else
    skip "sdl_mpi.h compile checks: mpicc not found (apt-get install libopenmpi-dev openmpi-bin)"
fi
if [ -n "$NVCC" ]; then
    printf '#define SDL_IMPLEMENTATION\n#include "sdl.h"\n#define SDL_CUDA_IMPLEMENTATION\n#include "sdl_cuda.h"\nint main(void){return 0;}\n' >"$B/hdr_cuda.cu"
    hdr_check "sdl.h + sdl_cuda.h compile with nvcc -x cu -std=c++17 $WARN" "$NVCC" -std=c++17 -x cu -Xcompiler "-Wall,-Wextra,-Werror" -I. -c "$B/hdr_cuda.cu" -o "$B/hdr.o"
else
    skip "sdl_cuda.h compile check: nvcc not found (CUDA Toolkit not installed)"
fi

# ---- test programs ---------------------------------------------------------------------------
run_prog() { # name log cmd...
    local name=$1 log=$2; shift 2
    timeout 600 "$@" >"$log" 2>&1
    count_run "$name" "$log" $?
}
for src in tests/test_*.c; do
    [ -e "$src" ] || continue
    name=$(basename "$src" .c)
    if $CC -std=c11 $OPT -g $WARN $SANFLAGS -Itests -I. "$src" -o "$B/$name" -lm -lpthread >"$B/$name.build.log" 2>&1; then
        run_prog "$name" "$B/$name.log" "$B/$name"
    else
        fail "$name (build)" "$B/$name.build.log"
    fi
done
for src in tests/test_*.cpp; do
    [ -e "$src" ] || continue
    name=$(basename "$src" .cpp)
    if $CXX -std=c++17 $OPT -g $WARN $SANFLAGS -Itests -I. "$src" -o "$B/$name" -lm -lpthread >"$B/$name.build.log" 2>&1; then
        run_prog "$name" "$B/$name.log" "$B/$name"
    else
        fail "$name (build)" "$B/$name.build.log"
    fi
done
for src in tests/mpi_test_*.c; do
    [ -e "$src" ] || continue
    name=$(basename "$src" .c)
    if [ -z "$MPICC" ] || [ -z "$MPIRUN" ]; then skip "$name: mpicc/mpirun not found (apt-get install libopenmpi-dev openmpi-bin)"; continue; fi
    if ! "$MPICC" -std=c11 $OPT -g $WARN $SANFLAGS -Itests -I. "$src" -o "$B/$name" -lm -lpthread >"$B/$name.build.log" 2>&1; then
        fail "$name (build)" "$B/$name.build.log"; continue
    fi
    nps=$(grep -m1 -E '^// mpirun-np:' "$src" | sed 's/.*://')
    for np in ${nps:-2}; do
        run_prog "$name -np $np" "$B/$name.np$np.log" "$MPIRUN" --allow-run-as-root --oversubscribe -np "$np" "$B/$name"
    done
done
# ---- the emulator's order checks (tools/cuda_emu/README: EMU_SCHEDULE, EMU_DIGEST, race
# checks). Each emulated test runs twice: in order (built with $CXX) and shuffled
# (EMU_SCHEDULE=shuffle: blocks and threads in a random order) in a build with the race checks
# (clang++ with -fsanitize-coverage=trace-loads,trace-stores and -DEMU_RACECHECK; without
# such a clang, shuffled only). Both print a digest of every device-to-host copy: sdl_cuda.h
# has no atomics, so the two must match bit for bit. The shuffled run leaves device memory
# readable by the host (EMU_NO_PROTECT=1: half the time; the in-order run checks that).
EMU_RACE_CXX="" EMU_RACE_FLAGS=""
emu_race_setup() { # picks the compiler for the shuffled runs, once
    [ -n "$EMU_RACE_CXX" ] && return
    EMU_RACE_CXX=$CXX
    local f="-DEMU_RACECHECK -fsanitize-coverage=inline-bool-flag,trace-loads,trace-stores"
    mkdir -p "$B/cuda_emu"
    echo 'int main(){return 0;}' >"$B/cuda_emu/probe.cpp"
    if command -v clang++ >/dev/null && clang++ $f -c "$B/cuda_emu/probe.cpp" -o "$B/cuda_emu/probe.o" >/dev/null 2>&1; then
        EMU_RACE_CXX=clang++ EMU_RACE_FLAGS="$f"
    fi
}
# emu_build_race out.cpp exe log allowlist [compiler]: the shuffled run's build
emu_build_race() {
    local allow=""
    [ -n "$EMU_RACE_FLAGS" ] && allow="-fsanitize-coverage-allowlist=$4"
    # shellcheck disable=SC2086
    ${5:-$EMU_RACE_CXX} -std=c++17 -O2 -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=0 -D__CUDACC__ -DSDL_MPI_NCCL -w $EMU_RACE_FLAGS $allow \
        -I"$(dirname "$1")/.." -Itests -I. "$1" -o "$2" -lm -lpthread >>"$3" 2>&1
}
# same_digest name log_in_order log_shuffled
same_digest() {
    local a b
    a=$(grep '^emu: digest' "$2" | sort)
    b=$(grep '^emu: digest' "$3" | sort)
    if [ -n "$a" ] && [ "$a" = "$b" ]; then pass "$1: the same bits in order and shuffled"
    else fail "$1: the results depend on the schedule (in order: ${a:-no digest}; shuffled: ${b:-no digest})"; fi
}
for src in tests/cuda_test_*.cu; do
    [ -e "$src" ] || continue
    name=$(basename "$src" .cu)
    if [ -z "$NVCC" ]; then
        skip "$name: nvcc not found"
    elif ! "$NVCC" -std=c++17 -O2 -Xcompiler "-Wall,-Wextra,-Werror" -Itests -I. "$src" -o "$B/$name" -lcublas -lcublasLt >"$B/$name.build.log" 2>&1; then
        fail "$name (build)" "$B/$name.build.log"
    else
        pass "$name builds with nvcc"
        if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
            run_prog "$name" "$B/$name.log" "$B/$name"
        else
            skip "$name: no GPU on this machine (built, not run)"
        fi
    fi
    # the same program on the CPU emulator: convert.py turns kernel<<<...>>>(...) into calls,
    # the emulator's cuda_runtime.h/cublas_v2.h replace CUDA's. _FORTIFY_SOURCE is off because
    # its longjmp check rejects the jumps between fiber stacks.
    ename="$name (CPU emulation of CUDA)"
    if [ "${SAN:-}" = 1 ]; then
        skip "$ename: not under SAN=1 (ASan does not support the emulator's swapcontext/longjmp fibers: false reports, and over 5 min); the plain run covers it"
        continue
    fi
    if [ -z "$PYTHON" ]; then skip "$ename: python3 not found (apt-get install python3)"; continue; fi
    if ! command -v "$CXX" >/dev/null; then skip "$ename: $CXX not found"; continue; fi
    E="$B/cuda_emu"
    mkdir -p "$E/src" "$E/race/src"
    if cp tools/cuda_emu/inc/*.h "$E/" && cp tools/cuda_emu/inc/*.h "$E/race/" &&
        "$PYTHON" tools/cuda_emu/convert.py sdl_cuda.h "$E/sdl_cuda.h" >"$E/$name.build.log" 2>&1 &&
        "$PYTHON" tools/cuda_emu/convert.py "$src" "$E/src/$name.cpp" >>"$E/$name.build.log" 2>&1 &&
        $CXX -std=c++17 -O2 -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=0 -D__CUDACC__ -w -I"$E" -Itests -I. \
            "$E/src/$name.cpp" -o "$E/$name" -lm -lpthread >>"$E/$name.build.log" 2>&1; then
        run_prog "$ename" "$E/$name.log" env EMU_DIGEST=1 "$E/$name"
    else
        fail "$ename (build)" "$E/$name.build.log"
        continue
    fi
    emu_race_setup
    rname="$name (CPU emulation of CUDA, shuffled${EMU_RACE_FLAGS:+, race checks})"
    rm -f "$E/$name.allow"
    if "$PYTHON" tools/cuda_emu/convert.py sdl_cuda.h "$E/race/sdl_cuda.h" "$E/$name.allow" >"$E/$name.race.build.log" 2>&1 &&
        "$PYTHON" tools/cuda_emu/convert.py "$src" "$E/race/src/$name.cpp" "$E/$name.allow" >>"$E/$name.race.build.log" 2>&1 &&
        emu_build_race "$E/race/src/$name.cpp" "$E/race/$name" "$E/$name.race.build.log" "$E/$name.allow"; then
        run_prog "$rname" "$E/$name.race.log" env EMU_SCHEDULE=shuffle EMU_DIGEST=1 EMU_NO_PROTECT=1 "$E/race/$name"
        same_digest "$name (CPU emulation of CUDA)" "$E/$name.log" "$E/$name.race.log"
    else
        fail "$rname (build)" "$E/$name.race.build.log"
    fi
done
# the order checks themselves can fail: tools/cuda_emu/test_emu.cu runs broken kernels (a
# missing __syncthreads, blocks reading each other's writes, ...) and checks they are reported
if [ "${SAN:-}" != 1 ] && [ -n "$PYTHON" ] && [ -d "$B/cuda_emu/race" ]; then
    E="$B/cuda_emu"
    rm -f "$E/test_emu.allow"
    if "$PYTHON" tools/cuda_emu/convert.py tools/cuda_emu/test_emu.cu "$E/race/src/test_emu.cpp" "$E/test_emu.allow" >"$E/test_emu.build.log" 2>&1 &&
        emu_build_race "$E/race/src/test_emu.cpp" "$E/race/test_emu" "$E/test_emu.build.log" "$E/test_emu.allow"; then
        run_prog "tools/cuda_emu/test_emu (the emulator's order checks)" "$E/test_emu.log" "$E/race/test_emu"
    else
        fail "tools/cuda_emu/test_emu (build)" "$E/test_emu.build.log"
    fi
fi
# ---- tests/mpi_cuda_test_*.cu: sdl_mpi.h's GPU path (MPI + CUDA). With nvcc: built with
# -Werror (and -DSDL_MPI_NCCL -lnccl where nccl.h is found); on a GPU run with mpirun -np 1
# (NCCL with one rank) and -np 2 (two ranks sharing the GPU: host staging). Always (not under
# SAN=1): built with mpicxx against tools/cuda_emu, whose nccl.h does NCCL's calls over MPI on
# host copies (the call sequence and the arithmetic, not NCCL), and run with each -np of the
# file's "// mpirun-np:" line, every rank with an emulated device of its own (EMU_DEVICES=np),
# then with -np 2 sharing one device (EMU_DEVICES=1).
if [ -n "$NVCC" ] && [ -n "$MPICC" ]; then
    printf '#define SDL_IMPLEMENTATION\n#include "sdl.h"\n#define SDL_CUDA_IMPLEMENTATION\n#include "sdl_cuda.h"\n#define SDL_MPI_IMPLEMENTATION\n#include "sdl_mpi.h"\nint main(void){return 0;}\n' >"$B/hdr_mpi_cuda.cu"
    # shellcheck disable=SC2046
    hdr_check "sdl_mpi.h's GPU path (without NCCL) compiles with nvcc $WARN" "$NVCC" -std=c++17 -Xcompiler "-Wall,-Wextra,-Werror" \
        $("$MPICC" --showme:compile) -I. -c "$B/hdr_mpi_cuda.cu" -o "$B/hdr.o"
fi
for src in tests/mpi_cuda_test_*.cu; do
    [ -e "$src" ] || continue
    name=$(basename "$src" .cu)
    MPICXX=$(command -v mpicxx)
    if [ -z "$MPICC" ] || [ -z "$MPICXX" ] || [ -z "$MPIRUN" ]; then skip "$name: mpicc/mpicxx/mpirun not found (apt-get install libopenmpi-dev openmpi-bin)"; continue; fi
    nps=$(grep -m1 -E '^// mpirun-np:' "$src" | sed 's/.*://')
    if [ -z "$NVCC" ]; then
        skip "$name: nvcc not found"
    else
        nccl=""
        for inc in "$(dirname "$NVCC")/../include" /usr/include; do [ -f "$inc/nccl.h" ] && nccl="-DSDL_MPI_NCCL"; done
        # shellcheck disable=SC2046
        if "$NVCC" -std=c++17 -O2 $nccl -Xcompiler "-Wall,-Wextra,-Werror" $("$MPICC" --showme:compile) -Itests -I. "$src" \
            -o "$B/$name" -lcublas -lcublasLt ${nccl:+-lnccl} $("$MPICC" --showme:link) >"$B/$name.build.log" 2>&1; then
            pass "$name builds with nvcc${nccl:+ and NCCL}"
            if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
                for np in 1 2; do run_prog "$name -np $np (GPU)" "$B/$name.gpu$np.log" "$MPIRUN" --allow-run-as-root --oversubscribe -np $np "$B/$name"; done
            else
                skip "$name: no GPU on this machine (built, not run)"
            fi
        else
            fail "$name (nvcc build)" "$B/$name.build.log"
        fi
    fi
    ename="$name (CPU emulation of CUDA, emulated NCCL over MPI)"
    if [ "${SAN:-}" = 1 ]; then skip "$ename: not under SAN=1 (the emulator's fibers; the plain run covers it)"; continue; fi
    if [ -z "$PYTHON" ]; then skip "$ename: python3 not found"; continue; fi
    E="$B/cuda_emu"
    mkdir -p "$E/src"
    if cp tools/cuda_emu/inc/*.h "$E/" &&
        "$PYTHON" tools/cuda_emu/convert.py sdl_cuda.h "$E/sdl_cuda.h" >"$E/$name.build.log" 2>&1 &&
        "$PYTHON" tools/cuda_emu/convert.py sdl_mpi.h "$E/sdl_mpi.h" >>"$E/$name.build.log" 2>&1 &&
        "$PYTHON" tools/cuda_emu/convert.py "$src" "$E/src/$name.cpp" >>"$E/$name.build.log" 2>&1 &&
        "$MPICXX" -std=c++17 -O2 -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=0 -D__CUDACC__ -DSDL_MPI_NCCL -w -I"$E" -Itests -I. \
            "$E/src/$name.cpp" -o "$E/$name" -lm -lpthread >>"$E/$name.build.log" 2>&1; then
        for np in ${nps:-2}; do
            run_prog "$ename -np $np" "$E/$name.np$np.log" env EMU_DIGEST=1 EMU_DEVICES="$np" "$MPIRUN" --allow-run-as-root --oversubscribe -np "$np" "$E/$name"
        done
        run_prog "$ename -np 2 sharing one device" "$E/$name.shared.log" env EMU_DEVICES=1 "$MPIRUN" --allow-run-as-root --oversubscribe -np 2 "$E/$name"
    else
        fail "$ename (build)" "$E/$name.build.log"
        continue
    fi
    # shuffled with the race checks (see the order checks above), -np 2: the same bits as in order
    emu_race_setup
    rname="$name (CPU emulation of CUDA, shuffled${EMU_RACE_FLAGS:+, race checks}) -np 2"
    mkdir -p "$E/race/src"
    rm -f "$E/$name.allow"
    if cp tools/cuda_emu/inc/*.h "$E/race/" &&
        "$PYTHON" tools/cuda_emu/convert.py sdl_cuda.h "$E/race/sdl_cuda.h" "$E/$name.allow" >"$E/$name.race.build.log" 2>&1 &&
        "$PYTHON" tools/cuda_emu/convert.py sdl_mpi.h "$E/race/sdl_mpi.h" "$E/$name.allow" >>"$E/$name.race.build.log" 2>&1 &&
        "$PYTHON" tools/cuda_emu/convert.py "$src" "$E/race/src/$name.cpp" "$E/$name.allow" >>"$E/$name.race.build.log" 2>&1 &&
        OMPI_CXX=$EMU_RACE_CXX emu_build_race "$E/race/src/$name.cpp" "$E/race/$name" "$E/$name.race.build.log" "$E/$name.allow" "$MPICXX"; then
        run_prog "$rname" "$E/$name.race.log" env EMU_SCHEDULE=shuffle EMU_DIGEST=1 EMU_NO_PROTECT=1 EMU_DEVICES=2 \
            "$MPIRUN" --allow-run-as-root --oversubscribe -np 2 "$E/race/$name"
        if [ -f "$E/$name.np2.log" ]; then same_digest "$name -np 2 (CPU emulation of CUDA)" "$E/$name.np2.log" "$E/$name.race.log"; fi
    else
        fail "$rname (build)" "$E/$name.race.build.log"
    fi
done
# ---- bench/bench_cuda.sh's GPU programs at their real sizes (GPT-2 124M B 16 T 1024, ResNet-18
# b256, bench_cuda's MLP/CNN b64), one or two steps each as a dry run of the emulator
# (EMU_DRY=1: launches and GEMMs checked and counted, not run; device memory reserved, not
# touched): no launch or cuBLAS error, and each peak fits an 80 GB H100. tools/cuda_emu/dry_run.sh
# prints the table (launches, GEMM TFLOP per step, peak GiB). About 1.5 min on 2 cores.
dname="dry run of bench_cuda.sh's GPU programs at full size (CPU emulation of CUDA)"
if [ "${SAN:-}" = 1 ]; then
    skip "$dname: not under SAN=1 (the emulator is built without sanitizers; the plain run covers it)"
elif [ -z "$PYTHON" ] || ! command -v "$CXX" >/dev/null; then
    skip "$dname: python3 or $CXX not found"
else
    timeout 600 bash tools/cuda_emu/dry_run.sh "$B/cuda_dry" >"$B/cuda_dry.log" 2>&1
    count_run "$dname" "$B/cuda_dry.log" $?
    sed -n '/^run /,/^(per step/p' "$B/cuda_dry.log" | sed 's/^/     /'
fi
echo
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]

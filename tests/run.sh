#!/usr/bin/env bash
# tests/run.sh - builds and runs every test, JOBS at a time (default: the number of cores), then
# prints the longest jobs, what it skipped and the closing line "N passed, N failed, N skipped".
#   tests/test_*.c        plain C programs (cc), each ending with its own "N passed, N failed".
#                         Each is compiled with -DSDL_IMPLEMENTATION_DONE and linked against the
#                         library built once for the tests ($B/sdl_test.o: tests/sdl_test.h's
#                         counting allocator, SDL_DEBUG_POISON, and the private names tests use,
#                         exported as sdl_test_*); one that uses another private name or defines
#                         another configuration (SDL_NO_STB, ...) compiles the implementation itself
#   tests/test_*.cpp      C++ programs (c++), each compiling the implementation as C++
#   tests/mpi_test_*.c    MPI programs (mpicc; linked the same way), run under mpirun with each
#                         -np listed in a line "// mpirun-np: 2 3" of the file
#   tests/cuda_test_*.cu  CUDA programs (nvcc); run only where a GPU is present. Each is also
#                         built with c++ against tools/cuda_emu (a CPU emulation of the CUDA
#                         runtime and cuBLAS) and run, named "(CPU emulation of CUDA)": that
#                         checks the kernels' logic, not the GPU (see tools/cuda_emu/README)
#   tests/mpi_cuda_test_*.cu  MPI + CUDA programs (sdl_mpi.h's GPU path): nvcc where present,
#                         and always with mpicxx against tools/cuda_emu (see the block below)
# and compiles every header as C99/C11 (gcc, clang), C++17 (g++, nvcc -x cu), and with SDL_STATIC.
# That is the quick tier (make test). TEST_FULL=1 (make test-full, CI) adds the emulator's
# shuffled race-checked runs of every CUDA test, its own order checks (test_emu.cu) and the dry
# run of bench_cuda.sh's programs at full size. SAN=1 builds everything with
# -fsanitize=address,undefined. A missing tool is a skip that names the package to install.
# Arguments run only the test files whose names start with one of them, without the header
# checks:  bash tests/run.sh test_core mpi_test  (test_core.c and every tests/mpi_test_*.c)
# JOBS=n: jobs at once (default: the number of cores); TEST_TIMEOUT=s: wall-clock limit per
# program run (default 600; a busy machine may need more).
set -u
cd "$(dirname "$0")/.."
B=build/tests${SAN:+-san}
mkdir -p "$B"
CC=${CC:-cc}
CXX=${CXX:-c++}
OPT=${TEST_OPT:--O3 -march=native}
WARN="-Wall -Wextra -Werror"
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
SANFLAGS=""
[ "${SAN:-}" = 1 ] && SANFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
NVCC=$(command -v nvcc || { [ -x /usr/local/cuda/bin/nvcc ] && echo /usr/local/cuda/bin/nvcc; })
MPICC=$(command -v mpicc)
MPICXX=$(command -v mpicxx)
MPIRUN=$(command -v mpirun)
PYTHON=$(command -v python3)
HAVE_CXX=$(command -v "$CXX")
NEED_MPI="mpicc/mpirun not found (apt-get install libopenmpi-dev openmpi-bin)"
NEED_CXX="$CXX not found (apt-get install g++)"
NEED_PY="python3 not found (apt-get install python3)"
NEED_NVCC="nvcc not found (the CUDA Toolkit: apt-get install nvidia-cuda-toolkit, or NVIDIA's cuda-toolkit package)"
if [ -n "$NVCC" ] && ! command -v g++ >/dev/null; then NVCC="" NEED_NVCC="nvcc needs g++ as its host compiler (apt-get install g++)"; fi
passed=0 failed=0 skipped=0
# wanted src args...: no arguments, or the file's name starts with one of them
wanted() { local f=$1 a; shift; [ $# -eq 0 ] && return 0; for a in "$@"; do [[ $(basename "$f") = "$a"* ]] && return 0; done; return 1; }

pass() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; [ -f "${2:-}" ] && sed 's/^/     /' "$2" | tail -40; }
skip() { skipped=$((skipped + 1)); echo "skip $1"; echo "  $1" >>"$J/skips"; }

# ---- the job queue: each job runs in the background with its own counters and log, and
# prints its lines when it ends; at most JOBS run at once
J=$B/jobs
rm -rf "$J"
mkdir -p "$J"
njob=0
job() { # function args...
    local id
    id=$(printf '%03d' $njob)
    njob=$((njob + 1))
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
    (
        passed=0 failed=0 skipped=0 t0=$SECONDS
        "$@" >"$J/$id.out" 2>&1
        echo "$passed $failed $skipped" >"$J/$id.cnt"
        echo "$((SECONDS - t0)) s $1${2:+ $(basename "$2")}" >"$J/$id.time"
        { flock 9; cat "$J/$id.out"; } 9>"$J/print.lock"
    ) &
}
# a job waits for a file another job makes (a library object, a converted header)
await() { # file done-marker...
    while [ ! -e "$1.done" ]; do sleep 0.2; done
    [ "$(cat "$1.done")" = ok ]
}
mark() { if [ "$2" = 0 ]; then echo ok >"$1.done"; else echo failed >"$1.done"; fi; }

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
run_prog() { # name log cmd...
    local name=$1 log=$2; shift 2
    timeout "${TEST_TIMEOUT:-600}" "$@" >"$log" 2>&1
    count_run "$name" "$log" $?
}

# ---- the library, once per configuration: tests/sdl_test.h's (counting allocator, poison)
LIB=$B/sdl_test.o
build_lib() { # kept while it is newer than the headers and built with the same command
    local cmd="$CC -std=c11 $OPT -g $WARN -Wno-unused-variable $SANFLAGS -Itests -I. -c $B/sdl_test_impl.c -o $LIB" rc=0
    if [ "$LIB" -nt sdl.h ] && [ "$LIB" -nt tests/sdl_test.h ] && [ "$(cat "$LIB.cmd" 2>/dev/null)" = "$cmd" ]; then
        pass "the library for the tests ($LIB, up to date)"; mark "$LIB" 0; return
    fi
    rm -f "$LIB.cmd"
    printf '#define SDL_IMPLEMENTATION\n#include "sdl_test.h"\n' >"$B/sdl_test_impl.c"
    $cmd >"$LIB.log" 2>&1 || rc=$?
    [ $rc = 0 ] && echo "$cmd" >"$LIB.cmd"
    if [ $rc = 0 ]; then pass "the library for the tests ($LIB: sdl_test.h's allocator, SDL_DEBUG_POISON)"; else fail "$LIB (build)" "$LIB.log"; fi
    mark "$LIB" $rc
}
rm -f "$LIB.done"
job build_lib

# ---- the implementation once for the programs the tutorial tests and mpi_test_examples build
# (examples/, linked as make links them; tests/sdl_test.h's sdl_test_tutorial_link): cc -O1
# -march=native (the GEMM's SIMD kernel: the training runs are several times faster), sdl_mpi.h's
# with mpicc
TUTO=$B/tutorial_impl
export SDL_TUTORIAL_OBJ=$TUTO/sdl.o
[ -n "$MPICC" ] && export SDL_TUTORIAL_MPI_OBJ=$TUTO/sdl_mpi.o
build_tutorial_impl() {
    local rc=0
    mkdir -p "$TUTO"
    printf '#define SDL_IMPLEMENTATION\n#include "sdl.h"\n' >"$TUTO/impl.c"
    printf '#include "sdl.h"\n#define SDL_MPI_IMPLEMENTATION\n#include "sdl_mpi.h"\n' >"$TUTO/impl_mpi.c"
    $CC -std=c99 -O1 -march=native $WARN -I. -c "$TUTO/impl.c" -o "$SDL_TUTORIAL_OBJ" >"$TUTO/build.log" 2>&1 || rc=1
    if [ -n "$MPICC" ]; then "$MPICC" -std=c99 -O1 -march=native $WARN -I. -c "$TUTO/impl_mpi.c" -o "$SDL_TUTORIAL_MPI_OBJ" >>"$TUTO/build.log" 2>&1 || rc=1; fi
    if [ $rc = 0 ]; then pass "the implementation for the tutorial tests ($TUTO)"; else fail "$TUTO (build)" "$TUTO/build.log"; fi
    mark "$TUTO/objs" $rc
}
if [ $# -eq 0 ] || ls tests/test_tutorials*.c tests/mpi_test_examples.c | while read -r f; do wanted "$f" "$@" && echo y; done | grep -q y; then
    rm -f "$TUTO/objs.done"
    job build_tutorial_impl
fi

# ---- the headers compile everywhere -------------------------------------------------------
hdr_check() { # name compiler args...
    local name=$1 log; shift
    log="$B/hdr.$(echo "$name" | tr -c 'a-zA-Z0-9' _ | cut -c1-60).log"
    if "$@" >"$log" 2>&1; then pass "$name"; else fail "$name" "$log"; fi
}
printf '#define SDL_IMPLEMENTATION\n#include "sdl.h"\nint main(void){return 0;}\n' >"$B/hdr_c.c"
printf '#define SDL_STATIC\n#define SDL_IMPLEMENTATION\n#include "sdl.h"\nint main(void){return 0;}\n' >"$B/hdr_static.c"
cp "$B/hdr_c.c" "$B/hdr_cpp.cpp"
hdr_c() {
    for cc in gcc clang; do
        command -v $cc >/dev/null || { skip "headers with $cc: $cc not installed (apt-get install $cc)"; continue; }
        for std in c99 c11; do hdr_check "sdl.h compiles as $std with $cc -Wall -Wextra -Werror" $cc -std=$std $WARN -I. -c "$B/hdr_c.c" -o "$B/hdr_$cc$std.o"; done
    done
    hdr_check "sdl.h compiles with SDL_STATIC" $CC -std=c11 $WARN -Wno-unused-function -I. -c "$B/hdr_static.c" -o "$B/hdr_static.o"
    if command -v g++ >/dev/null; then
        hdr_check "sdl.h compiles as C++17 with g++" g++ -std=c++17 $WARN -I. -c "$B/hdr_cpp.cpp" -o "$B/hdr_cpp.o"
    else
        skip "sdl.h as C++17: g++ not installed (apt-get install g++)"
    fi
}
[ $# -eq 0 ] && job hdr_c
hdr_mpi() {
    printf '#define SDL_IMPLEMENTATION\n#include "sdl.h"\n#define SDL_MPI_IMPLEMENTATION\n#include "sdl_mpi.h"\nint main(void){return 0;}\n' >"$B/hdr_mpi.c"
    hdr_check "sdl_mpi.h compiles with mpicc -std=c99 $WARN" "$MPICC" -std=c99 $WARN -I. -c "$B/hdr_mpi.c" -o "$B/hdr_mpi99.o"
    hdr_check "sdl_mpi.h compiles with mpicc -std=c11 $WARN" "$MPICC" -std=c11 $WARN -I. -c "$B/hdr_mpi.c" -o "$B/hdr_mpi11.o"
    if [ -n "$HAVE_CXX" ]; then
        cp "$B/hdr_mpi.c" "$B/hdr_mpi.cpp"
        hdr_check "sdl_mpi.h compiles as C++17" "$MPICC" -x c++ -std=c++17 $WARN -I. -c "$B/hdr_mpi.cpp" -o "$B/hdr_mpicpp.o"
    else
        skip "sdl_mpi.h as C++17: $NEED_CXX"
    fi
}
if [ $# -gt 0 ]; then :; elif [ -n "$MPICC" ]; then job hdr_mpi; else skip "sdl_mpi.h compile checks: $NEED_MPI"; fi
hdr_nvcc() {
    printf '#define SDL_IMPLEMENTATION\n#include "sdl.h"\n#define SDL_CUDA_IMPLEMENTATION\n#include "sdl_cuda.h"\nint main(void){return 0;}\n' >"$B/hdr_cuda.cu"
    hdr_check "sdl.h + sdl_cuda.h compile with nvcc -x cu -std=c++17 $WARN" "$NVCC" -std=c++17 -x cu -Xcompiler "-Wall,-Wextra,-Werror" -I. -c "$B/hdr_cuda.cu" -o "$B/hdr_cuda.o"
    if [ -n "$MPICC" ]; then
        printf '#define SDL_IMPLEMENTATION\n#include "sdl.h"\n#define SDL_CUDA_IMPLEMENTATION\n#include "sdl_cuda.h"\n#define SDL_MPI_IMPLEMENTATION\n#include "sdl_mpi.h"\nint main(void){return 0;}\n' >"$B/hdr_mpi_cuda.cu"
        # shellcheck disable=SC2046
        hdr_check "sdl_mpi.h's GPU path (without NCCL) compiles with nvcc $WARN" "$NVCC" -std=c++17 -Xcompiler "-Wall,-Wextra,-Werror" \
            $("$MPICC" --showme:compile) -I. -c "$B/hdr_mpi_cuda.cu" -o "$B/hdr_mpi_cuda.o"
    fi
}
if [ $# -gt 0 ]; then :; elif [ -n "$NVCC" ]; then job hdr_nvcc; else skip "sdl_cuda.h compile check: $NEED_NVCC"; fi

# ---- test programs ---------------------------------------------------------------------------
# own_impl src: the test needs the implementation in its own file (another configuration, or
# a private name of the implementation; tests/sdl_test.h exports the ones tests use); else it
# links $LIB. Private names sdl.h declares before its implementation (the formulas, the
# hashes) are in every file, and sdl_mpi.h's (sdl__mpi_) are in the test's own file.
HEAD_NAMES=$(sed -n '1,/^#ifdef SDL_IMPLEMENTATION$/p' sdl.h | grep -o 'sdl__[A-Za-z0-9_]*\|SDL__[A-Z0-9_]*' | sort -u)
own_impl() {
    grep -E '^#define (SDL_|STB)' "$1" | grep -qv '^#define SDL_IMPLEMENTATION$' && return 0
    grep -o 'sdl__[A-Za-z0-9_]*\|SDL__[A-Z0-9_]*' "$1" | grep -v '^sdl__mpi_' | sort -u | comm -23 - <(echo "$HEAD_NAMES") | grep -q .
}
c_test() { # src compiler: build (linked or own), run
    local src=$1 cc=$2 name link=""
    name=$(basename "$src" .c)
    if ! own_impl "$src"; then
        await "$LIB" || { fail "$name: $LIB did not build"; return; }
        link="-DSDL_IMPLEMENTATION_DONE $LIB"
    fi
    if [[ $name = test_tutorials* || $name = mpi_test_examples ]]; then await "$TUTO/objs" || { fail "$name: $TUTO did not build"; return; }; fi
    # shellcheck disable=SC2086
    if ! $cc -std=c11 $OPT -g $WARN $SANFLAGS -Itests -I. "$src" $link -o "$B/$name" -lm -lpthread >"$B/$name.build.log" 2>&1; then
        fail "$name (build)" "$B/$name.build.log"; return
    fi
    case $name in
    mpi_test_*)
        local nps np
        nps=$(grep -m1 -E '^// mpirun-np:' "$src" | sed 's/.*://')
        for np in ${nps:-2}; do
            run_prog "$name -np $np" "$B/$name.np$np.log" "$MPIRUN" --allow-run-as-root --oversubscribe -np "$np" "$B/$name"
        done ;;
    *) run_prog "$name" "$B/$name.log" "$B/$name" ;;
    esac
}
cpp_test() { # src
    local name
    name=$(basename "$1" .cpp)
    # shellcheck disable=SC2086
    if $CXX -std=c++17 $OPT -g $WARN $SANFLAGS -Itests -I. "$1" -o "$B/$name" -lm -lpthread >"$B/$name.build.log" 2>&1; then
        run_prog "$name" "$B/$name.log" "$B/$name"
    else
        fail "$name (build)" "$B/$name.build.log"
    fi
}

# ---- CUDA tests: nvcc builds, and the CPU emulation (tools/cuda_emu) -----------------------------
# The emulated programs: convert.py turns kernel<<<...>>>(...) into calls, the emulator's
# cuda_runtime.h/cublas_v2.h replace CUDA's. _FORTIFY_SOURCE is off because its longjmp check
# rejects the jumps between fiber stacks. The headers are converted once ($E, $E/race).
# -O1: half of -O2's build time (cuda_test_ops 11 s of CPU against 20 s), the same run time
# (12.7 and 12.2 s against 11.4 and 12.9 s, alternately) and the same digest.
E="$B/cuda_emu"
EMU_OPT=-O1
EMU=""
if [ "${SAN:-}" = 1 ]; then EMU="not under SAN=1 (ASan does not support the emulator's swapcontext/longjmp fibers: false reports, and over 5 min); the plain run covers it"
elif [ -z "$PYTHON" ]; then EMU=$NEED_PY
elif [ -z "$HAVE_CXX" ]; then EMU=$NEED_CXX
fi
emu_prep() {
    mkdir -p "$E/src"
    cp tools/cuda_emu/inc/*.h "$E/" &&
        "$PYTHON" tools/cuda_emu/convert.py sdl_cuda.h "$E/sdl_cuda.h" >"$E/prep.log" 2>&1 &&
        "$PYTHON" tools/cuda_emu/convert.py sdl_mpi.h "$E/sdl_mpi.h" >>"$E/prep.log" 2>&1
    local rc=$?
    [ $rc = 0 ] || fail "tools/cuda_emu/convert.py of sdl_cuda.h, sdl_mpi.h" "$E/prep.log"
    mark "$E/prep" $rc
}
# The emulator's order checks (tools/cuda_emu/README: EMU_SCHEDULE, EMU_DIGEST, race checks),
# TEST_FULL=1 only: each emulated test runs again shuffled (EMU_SCHEDULE=shuffle: blocks and
# threads in a random order) in a build with the race checks (clang++ with
# -fsanitize-coverage=trace-loads,trace-stores and -DEMU_RACECHECK; without such a clang,
# shuffled only). Both print a digest of every device-to-host copy: sdl_cuda.h has no atomics,
# so the two must match bit for bit. The shuffled run leaves device memory readable by the host
# (EMU_NO_PROTECT=1: half the time; the in-order run checks that).
EMU_RACE_CXX=$CXX EMU_RACE_FLAGS=""
if [ "${TEST_FULL:-}" = 1 ] && [ -z "$EMU" ]; then
    f="-DEMU_RACECHECK -fsanitize-coverage=inline-bool-flag,trace-loads,trace-stores"
    mkdir -p "$E"
    echo 'int main(){return 0;}' >"$E/probe.cpp"
    if command -v clang++ >/dev/null && clang++ $f -c "$E/probe.cpp" -o "$E/probe.o" >/dev/null 2>&1; then
        EMU_RACE_CXX=clang++ EMU_RACE_FLAGS="$f"
    fi
fi
# the converted sources of one program for the shuffled build, in a folder of its own
# (the allowlist names the kernels of the program and its headers)
emu_race_convert() { # src out.cpp allow log headers...
    local src=$1 out=$2 allow=$3 log=$4 h d; shift 4
    d=$(dirname "$out")/..
    mkdir -p "$d/src" && cp tools/cuda_emu/inc/*.h "$d/" || return 1
    rm -f "$allow"
    : >"$log"
    for h in "$@"; do "$PYTHON" tools/cuda_emu/convert.py "$h" "$d/$h" "$allow" >>"$log" 2>&1 || return 1; done
    "$PYTHON" tools/cuda_emu/convert.py "$src" "$out" "$allow" >>"$log" 2>&1
}
# emu_build_race out.cpp exe log allowlist [compiler]: the shuffled run's build
emu_build_race() {
    local allow=""
    [ -n "$EMU_RACE_FLAGS" ] && allow="-fsanitize-coverage-allowlist=$4"
    # shellcheck disable=SC2086
    ${5:-$EMU_RACE_CXX} -std=c++17 -O2 -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=0 -D__CUDACC__ -DSDL_MPI_NCCL -w $EMU_RACE_FLAGS $allow \
        -I"$(dirname "$1")/.." -Itests -I. "$1" -o "$2" -lm -lpthread >>"$3" 2>&1
}
# same_digest name log_in_order log_shuffled [shuffled build's program]: when the two builds
# come from different compilers (g++ in order, clang++ shuffled) their float code may differ
# in the last bits with no schedule involved; then the shuffled build also runs in order, and
# the schedule is what is judged: the same compiler in order and shuffled must agree
same_digest() {
    local a b c
    a=$(grep '^emu: digest' "$2" | sort)
    b=$(grep '^emu: digest' "$3" | sort)
    if [ -n "$a" ] && [ "$a" = "$b" ]; then pass "$1: the same bits in order and shuffled"; return; fi
    if [ -n "${4:-}" ] && [ "$EMU_RACE_CXX" != "$CXX" ] && [ -n "$b" ]; then
        timeout "${TEST_TIMEOUT:-600}" env EMU_DIGEST=1 EMU_NO_PROTECT=1 "$4" >"$3.inorder" 2>&1
        c=$(grep '^emu: digest' "$3.inorder" | sort)
        if [ "$c" = "$b" ]; then
            pass "$1: the same bits in order and shuffled ($EMU_RACE_CXX's build; $CXX's differs in the last bits)"; return
        fi
    fi
    fail "$1: the results depend on the schedule (in order: ${a:-no digest}; shuffled: ${b:-no digest})"
}
GPU=""
command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1 && GPU=1
gpu_present() { [ -n "$GPU" ]; }
# without a GPU an nvcc build only shows that the program compiles: -O0 for the host compiler,
# -G for the device code (cicc and ptxas unoptimised); cuda_test_ops: 7.9 s of CPU against
# 10.5 s with device -O3, and 30 s at -O2
NVCC_OPT="-O0 -Xcompiler -O0 -G" NVCC_WHY=" (-O0 -G: no GPU to run it)"
if gpu_present; then NVCC_OPT="-O2" NVCC_WHY=""; fi
cuda_nvcc() { # src: the nvcc build, run where a GPU is
    local name
    name=$(basename "$1" .cu)
    # shellcheck disable=SC2086
    if ! "$NVCC" -std=c++17 $NVCC_OPT -Xcompiler "-Wall,-Wextra,-Werror" -Itests -I. "$1" -o "$B/$name" -lcublas -lcublasLt >"$B/$name.build.log" 2>&1; then
        fail "$name (build)" "$B/$name.build.log"; return
    fi
    pass "$name builds with nvcc$NVCC_WHY"
    if gpu_present; then run_prog "$name" "$B/$name.log" "$B/$name"
    else skip "$name: no GPU on this machine (built, not run)"; fi
}
cuda_emu() { # src: in order; with TEST_FULL=1 also shuffled with the race checks
    local src=$1 name ename rname
    name=$(basename "$src" .cu)
    ename="$name (CPU emulation of CUDA)"
    await "$E/prep" || { fail "$ename: the headers did not convert"; return; }
    if "$PYTHON" tools/cuda_emu/convert.py "$src" "$E/src/$name.cpp" >"$E/$name.build.log" 2>&1 &&
        $CXX -std=c++17 $EMU_OPT -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=0 -D__CUDACC__ -w -I"$E" -Itests -I. \
            "$E/src/$name.cpp" -o "$E/$name" -lm -lpthread >>"$E/$name.build.log" 2>&1; then
        run_prog "$ename" "$E/$name.log" env EMU_DIGEST=1 "$E/$name"
    else
        fail "$ename (build)" "$E/$name.build.log"; return
    fi
    [ "${TEST_FULL:-}" = 1 ] || return
    rname="$name (CPU emulation of CUDA, shuffled${EMU_RACE_FLAGS:+, race checks})"
    if emu_race_convert "$src" "$E/race/$name/src/$name.cpp" "$E/$name.allow" "$E/$name.race.build.log" sdl_cuda.h &&
        emu_build_race "$E/race/$name/src/$name.cpp" "$E/race/$name/$name" "$E/$name.race.build.log" "$E/$name.allow"; then
        run_prog "$rname" "$E/$name.race.log" env EMU_SCHEDULE=shuffle EMU_DIGEST=1 EMU_NO_PROTECT=1 "$E/race/$name/$name"
        same_digest "$ename" "$E/$name.log" "$E/$name.race.log" "$E/race/$name/$name"
    else
        fail "$rname (build)" "$E/$name.race.build.log"
    fi
}
# the order checks themselves can fail: tools/cuda_emu/test_emu.cu runs broken kernels (a
# missing __syncthreads, blocks reading each other's writes, ...) and checks they are reported
emu_self_test() {
    if emu_race_convert tools/cuda_emu/test_emu.cu "$E/race/test_emu/src/test_emu.cpp" "$E/test_emu.allow" "$E/test_emu.build.log" &&
        emu_build_race "$E/race/test_emu/src/test_emu.cpp" "$E/race/test_emu/test_emu" "$E/test_emu.build.log" "$E/test_emu.allow"; then
        run_prog "tools/cuda_emu/test_emu (the emulator's order checks)" "$E/test_emu.log" "$E/race/test_emu/test_emu"
    else
        fail "tools/cuda_emu/test_emu (build)" "$E/test_emu.build.log"
    fi
}
# ---- tests/mpi_cuda_test_*.cu: sdl_mpi.h's GPU path (MPI + CUDA). With nvcc: built with
# -Werror (and -DSDL_MPI_NCCL -lnccl where nccl.h is found); on a GPU run with mpirun -np 1
# (NCCL with one rank) and -np 2 (two ranks sharing the GPU: host staging). Always (not under
# SAN=1): built with mpicxx against tools/cuda_emu, whose nccl.h does NCCL's calls over MPI on
# host copies (the call sequence and the arithmetic, not NCCL), and run with each -np of the
# file's "// mpirun-np:" line, every rank with an emulated device of its own (EMU_DEVICES=np),
# then with -np 2 sharing one device (EMU_DEVICES=1); with TEST_FULL=1 also shuffled with the
# race checks at -np 2.
mpi_cuda_nvcc() { # src
    local name nccl="" inc np
    name=$(basename "$1" .cu)
    for inc in "$(dirname "$NVCC")/../include" /usr/include; do [ -f "$inc/nccl.h" ] && nccl="-DSDL_MPI_NCCL"; done
    # shellcheck disable=SC2046
    if "$NVCC" -std=c++17 $NVCC_OPT $nccl -Xcompiler "-Wall,-Wextra,-Werror" $("$MPICC" --showme:compile) -Itests -I. "$1" \
        -o "$B/$name" -lcublas -lcublasLt ${nccl:+-lnccl} $("$MPICC" --showme:link) >"$B/$name.build.log" 2>&1; then
        pass "$name builds with nvcc${nccl:+ and NCCL}$NVCC_WHY"
        if gpu_present; then
            for np in 1 2; do run_prog "$name -np $np (GPU)" "$B/$name.gpu$np.log" "$MPIRUN" --allow-run-as-root --oversubscribe -np $np "$B/$name"; done
        else
            skip "$name: no GPU on this machine (built, not run)"
        fi
    else
        fail "$name (nvcc build)" "$B/$name.build.log"
    fi
}
mpi_cuda_emu() { # src
    local src=$1 name ename rname nps np
    name=$(basename "$src" .cu)
    nps=$(grep -m1 -E '^// mpirun-np:' "$src" | sed 's/.*://')
    ename="$name (CPU emulation of CUDA, emulated NCCL over MPI)"
    await "$E/prep" || { fail "$ename: the headers did not convert"; return; }
    if "$PYTHON" tools/cuda_emu/convert.py "$src" "$E/src/$name.cpp" >"$E/$name.build.log" 2>&1 &&
        "$MPICXX" -std=c++17 $EMU_OPT -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=0 -D__CUDACC__ -DSDL_MPI_NCCL -w -I"$E" -Itests -I. \
            "$E/src/$name.cpp" -o "$E/$name" -lm -lpthread >>"$E/$name.build.log" 2>&1; then
        for np in ${nps:-2}; do
            run_prog "$ename -np $np" "$E/$name.np$np.log" env EMU_DIGEST=1 EMU_DEVICES="$np" "$MPIRUN" --allow-run-as-root --oversubscribe -np "$np" "$E/$name"
        done
        run_prog "$ename -np 2 sharing one device" "$E/$name.shared.log" env EMU_DEVICES=1 "$MPIRUN" --allow-run-as-root --oversubscribe -np 2 "$E/$name"
    else
        fail "$ename (build)" "$E/$name.build.log"; return
    fi
    [ "${TEST_FULL:-}" = 1 ] || return
    rname="$name (CPU emulation of CUDA, shuffled${EMU_RACE_FLAGS:+, race checks}) -np 2"
    if emu_race_convert "$src" "$E/race/$name/src/$name.cpp" "$E/$name.allow" "$E/$name.race.build.log" sdl_cuda.h sdl_mpi.h &&
        OMPI_CXX=$EMU_RACE_CXX emu_build_race "$E/race/$name/src/$name.cpp" "$E/race/$name/$name" "$E/$name.race.build.log" "$E/$name.allow" "$MPICXX"; then
        run_prog "$rname" "$E/$name.race.log" env EMU_SCHEDULE=shuffle EMU_DIGEST=1 EMU_NO_PROTECT=1 EMU_DEVICES=2 \
            "$MPIRUN" --allow-run-as-root --oversubscribe -np 2 "$E/race/$name/$name"
        if [ -f "$E/$name.np2.log" ]; then same_digest "$name -np 2 (CPU emulation of CUDA)" "$E/$name.np2.log" "$E/$name.race.log"; fi
    else
        fail "$rname (build)" "$E/$name.race.build.log"
    fi
}
# ---- bench/bench_cuda.sh's GPU programs at their real sizes (GPT-2 124M B 16 T 1024, ResNet-18
# b256, bench_cuda's MLP/CNN b64), one or two steps each as a dry run of the emulator
# (EMU_DRY=1: launches and GEMMs checked and counted, not run; device memory reserved, not
# touched): no launch or cuBLAS error, and each peak fits an 80 GB H100. tools/cuda_emu/dry_run.sh
# prints the table (launches, GEMM TFLOP per step, peak GiB). About 1.5 min on 2 cores.
dry_run() { # name
    timeout 600 bash tools/cuda_emu/dry_run.sh "$B/cuda_dry" >"$B/cuda_dry.log" 2>&1
    count_run "$1" "$B/cuda_dry.log" $?
    sed -n '/^run /,/^(per step/p' "$B/cuda_dry.log" | sed 's/^/     /'
}

# ---- the queue, the longest builds first --------------------------------------------------------
[ -z "$EMU" ] && rm -f "$E/prep.done" && job emu_prep
for src in tests/cuda_test_*.cu tests/mpi_cuda_test_*.cu; do
    [ -e "$src" ] && wanted "$src" "$@" || continue
    name=$(basename "$src" .cu)
    if [ -z "$NVCC" ]; then skip "$name: $NEED_NVCC"
    elif [[ $name = mpi_* ]] && [ -z "$MPICC" ]; then skip "$name (nvcc): $NEED_MPI"
    elif [[ $name = mpi_* ]]; then job mpi_cuda_nvcc "$src"
    else job cuda_nvcc "$src"; fi
    if [ -n "$EMU" ]; then skip "$name (CPU emulation of CUDA): $EMU"
    elif [[ $name = mpi_* ]] && { [ -z "$MPICXX" ] || [ -z "$MPIRUN" ]; }; then skip "$name (CPU emulation of CUDA): $NEED_MPI"
    elif [[ $name = mpi_* ]]; then job mpi_cuda_emu "$src"
    else job cuda_emu "$src"; fi
done
if [ "${TEST_FULL:-}" = 1 ]; then
    dname="dry run of bench_cuda.sh's GPU programs at full size (CPU emulation of CUDA)"
    if [ -n "$EMU" ]; then skip "$dname: $EMU"; skip "tools/cuda_emu/test_emu: $EMU"
    else
        wanted tools/cuda_emu/dry_run.sh "$@" && job dry_run "$dname"
        wanted tools/cuda_emu/test_emu.cu "$@" && job emu_self_test
    fi
fi
for src in tests/test_*.cpp; do
    [ -e "$src" ] && wanted "$src" "$@" || continue
    if [ -n "$HAVE_CXX" ]; then job cpp_test "$src"; else skip "$(basename "$src" .cpp): $NEED_CXX"; fi
done
for src in tests/test_*.c; do [ -e "$src" ] && wanted "$src" "$@" && own_impl "$src" && job c_test "$src" "$CC"; done
for src in tests/mpi_test_*.c; do
    [ -e "$src" ] && wanted "$src" "$@" || continue
    if [ -z "$MPICC" ] || [ -z "$MPIRUN" ]; then skip "$(basename "$src" .c): $NEED_MPI"; else job c_test "$src" "$MPICC"; fi
done
for src in tests/test_*.c; do [ -e "$src" ] && wanted "$src" "$@" && ! own_impl "$src" && job c_test "$src" "$CC"; done
wait

# ---- the closing lines: every job's counts, what was skipped, then "N passed, N failed, N skipped"
for ((i = 0; i < njob; i++)); do
    id=$(printf '%03d' $i)
    if [ -f "$J/$id.cnt" ]; then
        read -r p f s <"$J/$id.cnt"
        passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
    else
        fail "job $id ended without its counts" "$J/$id.out"
    fi
done
echo
echo "the longest jobs (building and running): $(cat "$J"/*.time 2>/dev/null | sort -rn | head -6 | paste -sd, - | sed 's/,/, /g')"
if [ "$skipped" -gt 0 ]; then
    echo "skipped:"
    cat "$J/skips"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]

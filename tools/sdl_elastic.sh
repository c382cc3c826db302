#!/bin/sh
# sdl_elastic.sh - runs an MPI training job again after a failure, with the ranks that are
# left, up to --max-restarts times (torchrun --max-restarts, for mpirun or srun).
#
#   tools/sdl_elastic.sh [--np N] [--min-np M] [--max-restarts R] [--launcher CMD] -- prog args...
#
# Starts `CMD -np N prog args` (srun: -n N). When the job fails (a rank died: mpirun ends the
# others within a second and names it; a rank that hangs is named by sdl_mpi's collective
# checker after SDL_MPI_TIMEOUT seconds), it starts the job again with one rank fewer, until
# it succeeds, R restarts are spent or fewer than M ranks would be left. The program resumes
# from its own last checkpoint: examples/fashion_ddp.c --checkpoint-every K keeps the global
# batch through gradient accumulation and the loader's place in the epoch (sdl_loader_seek).
# Each attempt's end is logged with its time (date +%s.%N). Exit status: the last attempt's.
#
# Defaults: N from SLURM_NTASKS or 2, M 1, R 3, CMD "mpirun" (SDL_LAUNCHER overrides; e.g.
# "mpirun --allow-run-as-root --oversubscribe", or "srun" inside an allocation).
np=${SLURM_NTASKS:-2}
min_np=1
max_restarts=3
launcher=${SDL_LAUNCHER:-mpirun}
while [ $# -gt 0 ]; do
    case "$1" in
        --np) np=$2; shift 2 ;;
        --min-np) min_np=$2; shift 2 ;;
        --max-restarts) max_restarts=$2; shift 2 ;;
        --launcher) launcher=$2; shift 2 ;;
        --) shift; break ;;
        -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
        *) echo "sdl_elastic: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ $# -gt 0 ] || { echo "sdl_elastic: no program given (tools/sdl_elastic.sh [options] -- prog args...)" >&2; exit 2; }
case "$(basename "${launcher%% *}")" in srun) npflag=-n ;; *) npflag=-np ;; esac

attempt=1
while :; do
    echo "sdl_elastic: attempt $attempt with $np ranks: $launcher $npflag $np $*"
    $launcher $npflag "$np" "$@"
    rc=$?
    echo "sdl_elastic: attempt $attempt (np $np) exited with $rc at $(date +%s.%N)"
    [ $rc -eq 0 ] && exit 0
    if [ $attempt -gt "$max_restarts" ]; then echo "sdl_elastic: $max_restarts restarts spent; giving up"; exit $rc; fi
    if [ $((np - 1)) -lt "$min_np" ]; then echo "sdl_elastic: $((np - 1)) ranks would be left (--min-np $min_np); giving up"; exit $rc; fi
    np=$((np - 1))
    attempt=$((attempt + 1))
done

/* sdl_mpi_test.h - what the MPI test programs share: sdl_mpi.h with its implementation, MPI
   start-up that LeakSanitizer can live with, and a barrier that sleeps. Include it after
   defining SDL_IMPLEMENTATION and including sdl_test.h. */
#ifndef SDL_MPI_TEST_H
#define SDL_MPI_TEST_H
#define SDL_MPI_IMPLEMENTATION
#include "../sdl_mpi.h"
#include <time.h>

/* Under the sanitizers: Open MPI frees little of what MPI_Init takes, so LeakSanitizer ignores
   what MPI_Init allocates, the check at exit is off, and the test runs LeakSanitizer itself
   just before sdl_mpi_finalize, when MPI's memory is still reachable and only a leak of ours
   (models, ddp, buffers) would show. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "leak_check_at_exit=0"; }
const char *__lsan_default_suppressions(void); /* PMIx's own thread leaks a key lookup */
const char *__lsan_default_suppressions(void) { return "leak:libpmix.so\n"; }
static inline int leak_check(void) { return __lsan_do_recoverable_leak_check(); }
static inline sdl_result init_mpi(int *argc, char ***argv) {
    __lsan_disable();
    sdl_result r = sdl_mpi_init(argc, argv);
    __lsan_enable();
    return r;
}
#else
static inline sdl_result init_mpi(int *argc, char ***argv) { return sdl_mpi_init(argc, argv); }
static inline int leak_check(void) { return 0; }
#endif

/* waits for the other ranks without spinning, so that the ranks not starting child jobs
   leave the CPU to them (MPI's blocking calls busy-poll) */
static inline void quiet_barrier(void) {
    MPI_Request req;
    int done = 0;
    MPI_Ibarrier(MPI_COMM_WORLD, &req);
    struct timespec ts = {0, 5000000};
    while (MPI_Test(&req, &done, MPI_STATUS_IGNORE), !done) nanosleep(&ts, NULL);
}

/* counts over all ranks: a test passes when it passed on every rank; rank 0 prints */
static int g_passed, g_failed, g_rank;

static inline void mpi_test_collect(const char *name, int ok) {
    quiet_barrier();
    MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (ok) g_passed++;
    else g_failed++;
    if (g_rank == 0) printf("%s %s\n", ok ? "ok  " : "FAIL", name);
    fflush(stdout);
}

/* the leak check over all ranks, MPI_Finalize, the closing line; returns main's exit code */
static inline int mpi_test_finish(void) {
    sdl_arena_release();
    int leaks = leak_check();
    MPI_Allreduce(MPI_IN_PLACE, &leaks, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (leaks) g_failed++;
    if (g_rank == 0 && leaks) printf("FAIL leak check (LeakSanitizer)\n");
    sdl_mpi_finalize();
    if (g_rank == 0) printf("%d passed, %d failed\n", g_passed, g_failed);
    (void)sdl_test_run; (void)sdl_test_finish; (void)gradcheck; (void)test_ids;
    return g_failed ? 1 : 0;
}

#endif

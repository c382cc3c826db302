/* sdl_mpi.h - v0.1 - data-parallel training over MPI for sdl - public domain or MIT (see sdl.h)

   Do this:
      #define SDL_MPI_IMPLEMENTATION
   before you include this file in *one* C or C++ file. Include sdl.h first.
*/
#ifndef SDL_H_INCLUDED
#error "include sdl.h before sdl_mpi.h"
#endif
#ifndef SDL_MPI_H_INCLUDED
#define SDL_MPI_H_INCLUDED
/* the C API only: the deprecated C++ bindings do not compile warning-free */
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>
#endif /* SDL_MPI_H_INCLUDED */

/* sdl_cuda.h - v0.1 - the CUDA backend for sdl - public domain or MIT (see sdl.h)

   Do this:
      #define SDL_CUDA_IMPLEMENTATION
   before you include this file in *one* .cu file compiled by nvcc. Include sdl.h first.
*/
#ifndef SDL_H_INCLUDED
#error "include sdl.h before sdl_cuda.h"
#endif
#ifndef SDL_CUDA_H_INCLUDED
#define SDL_CUDA_H_INCLUDED
#endif /* SDL_CUDA_H_INCLUDED */

#define SDL_IMPLEMENTATION
#include "sdl.h"

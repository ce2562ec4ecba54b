/* DocQA: put in front of GCC's own amxtileintrin.h when llama-cpp-python is compiled (the
   README's install commands pass -isystem with this folder).

   GCC 12's _tile_loadconfig tells the compiler that ldtilecfg reads 8 bytes of the 64-byte tile
   configuration, so the stores that fill in the rest are dropped as dead; llama.cpp's AMX matrix
   multiply then loads a configuration of stack garbage and dies with a segmentation fault
   (ggml-org/llama.cpp#20824). tileloadd is likewise not told that it reads memory. These
   definitions say what the instructions really read and write; they are right for any GCC. */
#include_next <amxtileintrin.h>

#if defined(__x86_64__) && !defined(__clang__)
#undef _tile_loadconfig
#undef _tile_storeconfig
#undef _tile_loadd_internal
#undef _tile_stream_loadd_internal
#define _tile_loadconfig(config) \
  __asm__ volatile("ldtilecfg\t%X0" ::"m"(*(const char(*)[64])(config)))
#define _tile_storeconfig(config) \
  __asm__ volatile("sttilecfg\t%X0" : "=m"(*(char(*)[64])(config)))
#define _docqa_tile_load(op, dst, base, stride)                                          \
  __asm__ volatile("{" op "\t(%0,%1,1), %%tmm" #dst "|" op "\t%%tmm" #dst ", [%0+%1*1]}" ::"r"( \
                       (const void*)(base)),                                                \
                   "r"((long)(stride))                                                      \
                   : "memory")
#define _tile_loadd_internal(dst, base, stride) _docqa_tile_load("tileloadd", dst, base, stride)
#define _tile_stream_loadd_internal(dst, base, stride) \
  _docqa_tile_load("tileloaddt1", dst, base, stride)
#endif

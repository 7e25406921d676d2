/* The CLIP BPE merges built into the library: data/clip-tokenizer/merges.txt
 * (the SD 1.x / openai CLIP vocabulary's merges), assembled into .rodata with
 * .incbin (GNU as; GCC and clang) and NUL-terminated. tokenizer_load_builtin
 * (tokenizer_load.c) derives the vocabulary from it. The Makefile names the
 * data file as a prerequisite of this object, since -MMD cannot see it. */
#include "models/tokenizer_impl.h"

__asm__(".pushsection .rodata\n"
        ".balign 16\n"
        ".globl oir_builtin_clip_merges\n"
        ".hidden oir_builtin_clip_merges\n"
        ".type oir_builtin_clip_merges, @object\n"
        "oir_builtin_clip_merges:\n"
        ".incbin \"data/clip-tokenizer/merges.txt\"\n"
        ".globl oir_builtin_clip_merges_end\n"
        ".hidden oir_builtin_clip_merges_end\n"
        "oir_builtin_clip_merges_end:\n"
        ".byte 0\n"
        ".size oir_builtin_clip_merges, . - oir_builtin_clip_merges\n"
        ".popsection\n");

extern const char oir_builtin_clip_merges[] __attribute__((visibility("hidden")));
extern const char oir_builtin_clip_merges_end[] __attribute__((visibility("hidden")));

const char *tokenizer_builtin_merges(size_t *len) {
    *len = (size_t)(oir_builtin_clip_merges_end - oir_builtin_clip_merges);
    return oir_builtin_clip_merges;
}

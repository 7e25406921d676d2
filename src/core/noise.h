/* Standard normal noise from a counter-based generator, for the library's
 * own noise (the attention masks' noised latents). The same values as the
 * CLI's cli_gaussian_noise (src/cli/cli_sd.h), which may call this.
 *
 * Value pair k = Box-Muller(u1, u2) with u1, u2 from splitmix64 counters
 * 2k and 2k + 1 of a stream keyed by the seed. Each value depends only on
 * (seed, index): the same on every run and for every thread count; NOT
 * torch.randn's values for that seed. */
#ifndef OIR_CORE_NOISE_H
#define OIR_CORE_NOISE_H

#include <stddef.h>
#include <stdint.h>

/* out (n) = standard normal values of stream `seed`. */
void noise_gaussian(float *out, size_t n, uint64_t seed);

#endif

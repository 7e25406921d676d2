#include "core/noise.h"

#include <math.h>

/* splitmix64 output for counter i of stream `seed`. */
static uint64_t splitmix64_at(uint64_t seed, uint64_t i) {
    uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void noise_gaussian(float *out, size_t n, uint64_t seed) {
    /* Mix the seed once so that nearby seeds give unrelated streams. */
    uint64_t key = splitmix64_at(seed, 0x5eedull);
    const double two_pi = 6.283185307179586476925286766559;
    for (size_t k = 0; 2 * k < n; k++) {
        /* u1 in (0, 1] (log never sees 0), u2 in [0, 1): 53-bit uniforms */
        double u1 = ((splitmix64_at(key, 2 * k) >> 11) + 1) * 0x1.0p-53;
        double u2 = (splitmix64_at(key, 2 * k + 1) >> 11) * 0x1.0p-53;
        double r = sqrt(-2.0 * log(u1));
        out[2 * k] = (float)(r * cos(two_pi * u2));
        if (2 * k + 1 < n) out[2 * k + 1] = (float)(r * sin(two_pi * u2));
    }
}

/* rng.h - the examples' seeded generator: xoshiro256** seeded by
 * splitmix64.  Integer arithmetic only, so every platform draws the same
 * numbers for a seed (the benchmark's data and drpo-train's minibatch
 * orders are reproducible anywhere). */
#ifndef DRPO_EXAMPLES_RNG_H
#define DRPO_EXAMPLES_RNG_H

#include <stdint.h>

typedef struct rng {
    uint64_t s[4];
} rng;

static inline uint64_t rng_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

static inline void rng_seed(rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = rng_splitmix64(&seed);
}

static inline uint64_t rng_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t rng_next(rng *r)
{
    uint64_t *s = r->s, out = rng_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rng_rotl(s[3], 45);
    return out;
}

/* Uniform in [0, k), without modulo bias (rejection). */
static inline uint64_t rng_below(rng *r, uint64_t k)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % k, x;
    do
        x = rng_next(r);
    while (x >= limit);
    return x % k;
}

/* Uniform in [0, 1), 53 bits. */
static inline double rng_uniform(rng *r) { return (double)(rng_next(r) >> 11) * 0x1p-53; }

#endif

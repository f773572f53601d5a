/* vec.h - four-lane double arithmetic written once, run as AVX-512 or AVX2
 * where the CPU has it and as baseline SSE2 elsewhere (internal).
 *
 * A kernel's body is an always-inline function over drpo_v4d (GCC's vector
 * extensions); DRPO__KERNEL_DISPATCH instantiates it under target("avx512f,
 * avx512dq,avx512vl"), target("avx2") and the baseline and picks one per
 * call.  All instances perform the same IEEE operations in the same order
 * (no FMA: the library is built with -ffp-contract=off and calls no fma),
 * so the result does not depend on which one ran.  Vectors cross no call
 * between the instances (the targets pass them differently): every function
 * taking or returning one is always inlined, and the instances take
 * pointers and return structs that every target returns in memory. */
#ifndef DRPO_VEC_H
#define DRPO_VEC_H

#include "internal.h"

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) /* SSE2 is part of the x86-64 baseline */
#define DRPO__HAVE_SSE2 1
#include <emmintrin.h>
#endif

typedef double drpo_v4d __attribute__((vector_size(32)));
typedef int64_t drpo_v4i __attribute__((vector_size(32)));
typedef uint64_t drpo_v4u __attribute__((vector_size(32)));

/* A lane count's name for f, for code written once for several widths. */
#define DRPO__V4(f) drpo__v4_##f
#define DRPO__V8(f) drpo__v8_##f

DRPO__INLINE drpo_v4d drpo__v4_load(const double *x)
{
    drpo_v4d v;
    memcpy(&v, x, sizeof v);
    return v;
}

DRPO__INLINE void drpo__v4_store(double *x, drpo_v4d v) { memcpy(x, &v, sizeof v); }

DRPO__INLINE drpo_v4d drpo__v4_set1(double a) { return (drpo_v4d){a, a, a, a}; }

/* mask ? a : b, with mask lanes all-ones or zero (a vector comparison). */
DRPO__INLINE drpo_v4d drpo__v4_select(drpo_v4i mask, drpo_v4d a, drpo_v4d b)
{
    return (drpo_v4d)((mask & (drpo_v4i)a) | (~mask & (drpo_v4i)b));
}

/* 1.0 where mask is set, else 0.0. */
DRPO__INLINE drpo_v4d drpo__v4_ones(drpo_v4i mask)
{
    return (drpo_v4d)(mask & (drpo_v4i)drpo__v4_set1(1.0));
}

DRPO__INLINE int drpo__v4_any(drpo_v4i mask) { return (mask[0] | mask[1] | mask[2] | mask[3]) != 0; }

/* A mask's lanes as bits 0-3 (SSE2's movemask on each half: GCC turns
 * the generic forms into lane extractions). */
DRPO__INLINE unsigned drpo__v4_bits(drpo_v4i mask)
{
#ifdef DRPO__HAVE_SSE2
    __m128d lo, hi;
    memcpy(&lo, &mask, sizeof lo);
    memcpy(&hi, (const char *)&mask + sizeof lo, sizeof hi);
    return (unsigned)_mm_movemask_pd(lo) | (unsigned)_mm_movemask_pd(hi) << 2;
#else
    return (unsigned)((mask[0] & 1) | (mask[1] & 2) | (mask[2] & 4) | (mask[3] & 8));
#endif
}

typedef int32_t drpo_v8s __attribute__((vector_size(32)));

/* For each 4-bit mask, the 32-bit lanes that move the masked doubles to
 * the front, in order, and the others after them, in order (a permutation:
 * drpo__v4_compress_top relies on it). */
static const drpo_v8s drpo__compress_lanes[16] = {
#define DRPO__C4(a, b, c, d) {2 * (a), 2 * (a) + 1, 2 * (b), 2 * (b) + 1, 2 * (c), 2 * (c) + 1, 2 * (d), 2 * (d) + 1}
    DRPO__C4(0, 1, 2, 3), DRPO__C4(0, 1, 2, 3), DRPO__C4(1, 0, 2, 3), DRPO__C4(0, 1, 2, 3),
    DRPO__C4(2, 0, 1, 3), DRPO__C4(0, 2, 1, 3), DRPO__C4(1, 2, 0, 3), DRPO__C4(0, 1, 2, 3),
    DRPO__C4(3, 0, 1, 2), DRPO__C4(0, 3, 1, 2), DRPO__C4(1, 3, 0, 2), DRPO__C4(0, 1, 3, 2),
    DRPO__C4(2, 3, 0, 1), DRPO__C4(0, 2, 3, 1), DRPO__C4(1, 2, 3, 0), DRPO__C4(0, 1, 2, 3),
#undef DRPO__C4
};

/* The lanes of v that `bits` names, moved to the front in order (one
 * variable permute on AVX2; the rest of the lanes: don't care). */
DRPO__INLINE drpo_v4d drpo__v4_compress(drpo_v4d v, unsigned bits)
{
#if defined(__GNUC__) && !defined(__clang__)
    return (drpo_v4d)__builtin_shuffle((drpo_v8s)v, drpo__compress_lanes[bits]);
#else
    const drpo_v8s lanes = drpo__compress_lanes[bits];
    return (drpo_v4d){v[lanes[0] / 2], v[lanes[2] / 2], v[lanes[4] / 2], v[lanes[6] / 2]};
#endif
}

/* The lanes of v that `bits` names, moved to the top (the rest to the
 * front): the others compressed to the front. */
DRPO__INLINE drpo_v4d drpo__v4_compress_top(drpo_v4d v, unsigned bits)
{
    return drpo__v4_compress(v, ~bits & 15u);
}

/* 2^(j/32), j = 0..31, correctly rounded. */
static const double drpo__exp2_32[32] = {
    0x1.0000000000000p+0, 0x1.059b0d3158574p+0, 0x1.0b5586cf9890fp+0, 0x1.11301d0125b51p+0,
    0x1.172b83c7d517bp+0, 0x1.1d4873168b9aap+0, 0x1.2387a6e756238p+0, 0x1.29e9df51fdee1p+0,
    0x1.306fe0a31b715p+0, 0x1.371a7373aa9cbp+0, 0x1.3dea64c123422p+0, 0x1.44e086061892dp+0,
    0x1.4bfdad5362a27p+0, 0x1.5342b569d4f82p+0, 0x1.5ab07dd485429p+0, 0x1.6247eb03a5585p+0,
    0x1.6a09e667f3bcdp+0, 0x1.71f75e8ec5f74p+0, 0x1.7a11473eb0187p+0, 0x1.82589994cce13p+0,
    0x1.8ace5422aa0dbp+0, 0x1.93737b0cdc5e5p+0, 0x1.9c49182a3f090p+0, 0x1.a5503b23e255dp+0,
    0x1.ae89f995ad3adp+0, 0x1.b7f76f2fb5e47p+0, 0x1.c199bdd85529cp+0, 0x1.cb720dcef9069p+0,
    0x1.d5818dcfba487p+0, 0x1.dfc97337b9b5fp+0, 0x1.ea4afa2a490dap+0, 0x1.f50765b6e4540p+0,
};

/* exp and expm1 on four lanes (lib/vec_exp.h, written once for every lane
 * count). */
#define V drpo_v4d
#define VI drpo_v4i
#define VU drpo_v4u
#define VEC DRPO__V4
#define VEC_ATTR
#define VEC_TABLE(j)                                                                              \
    ((drpo_v4d){drpo__exp2_32[(j)[0]], drpo__exp2_32[(j)[1]], drpo__exp2_32[(j)[2]],              \
                drpo__exp2_32[(j)[3]]})
#include "vec_exp.h"

/* Neumaier's step on four lanes at once (see drpo__ksum_add). */
DRPO__INLINE void drpo__v4_ksum_add(drpo_v4d *s, drpo_v4d *c, drpo_v4d x)
{
    const drpo_v4i abs = (drpo_v4i)drpo__v4_set1(-0.0);
    drpo_v4d t = *s + x;
    drpo_v4i s_big = (~abs & (drpo_v4i)*s) >= (~abs & (drpo_v4i)x); /* |s| >= |x| as bits */
    *c += drpo__v4_select(s_big, (*s - t) + x, (x - t) + *s);
    *s = t;
}

/* The lanes of a four-lane compensated sum, to one value. */
DRPO__INLINE double drpo__v4_ksum_total(drpo_v4d s, drpo_v4d c)
{
    drpo_ksum k = {0.0, 0.0};
    for (int l = 0; l < 4; l++)
        drpo__ksum_add(&k, s[l]);
    for (int l = 0; l < 4; l++)
        drpo__ksum_add(&k, c[l]);
    return drpo__ksum_value(&k);
}

/* The lanes of a plain sum, in a fixed order. */
DRPO__INLINE double drpo__v4_hsum(drpo_v4d v) { return (v[0] + v[1]) + (v[2] + v[3]); }

/* Units j .. end-1 (fewer than four) of a problem as padded vectors: lanes
 * past the end get gap 0 and mass 0.  Returns the lanes that hold a unit. */
DRPO__INLINE drpo_v4i drpo__v4_tail(const drpo_problem *pb, size_t j, size_t end, drpo_v4d *d,
                                    drpo_v4d *p)
{
    drpo_v4i real = {0, 0, 0, 0};
    *d = *p = drpo__v4_set1(0.0);
    for (size_t l = 0; j + l < end; l++) {
        (*d)[l] = drpo__gap(pb, j + l);
        (*p)[l] = drpo__mass(pb, j + l);
        real[l] = -1;
    }
    return real;
}

/* Units j .. j+3, all of them units, as gaps and masses (the masses: pu
 * where `uniform`, a constant after inlining, or 1 with `count`). */
DRPO__INLINE void drpo__v4_units4(const drpo_problem *pb, size_t j, int uniform, int count,
                                  drpo_v4d *d, drpo_v4d *p)
{
    *d = drpo__v4_set1(pb->top) - drpo__v4_load(pb->x + j) * drpo__v4_set1(pb->down);
    *p = uniform ? drpo__v4_set1(count ? 1.0 : pb->pu) : drpo__v4_load(pb->p + j);
}

/* Units j .. j+3 (padded past end) as gaps and masses; returns the lanes
 * that hold a unit.  `uniform` (a constant after inlining) says the base is
 * uniform, so the masses are pu and the base array is not read; with
 * `count` as well they are ones, to be scaled by pu afterwards. */
DRPO__INLINE drpo_v4i drpo__v4_units(const drpo_problem *pb, size_t j, size_t end, int uniform,
                                     int count, drpo_v4d *d, drpo_v4d *p)
{
    const drpo_v4d one = drpo__v4_set1(1.0), mass = count ? one : drpo__v4_set1(pb->pu);
    if (j + 4 <= end) {
        drpo__v4_units4(pb, j, uniform, count, d, p);
        return (drpo_v4i)(one == one);
    }
    drpo_v4i real = drpo__v4_tail(pb, j, end, d, p);
    *p = uniform ? drpo__v4_select(real, mass, drpo__v4_set1(0.0)) : *p;
    return real;
}

/* Store four doubles bypassing the cache (two SSE2 non-temporal stores: the
 * baseline has them) when `stream`, for outputs far larger than the caches
 * that nobody reads before they are evicted anyway; x must then be 16-byte
 * aligned.  drpo__v4_stream_end orders such stores before the function
 * returns. */
DRPO__INLINE void drpo__v4_store_out(double *x, drpo_v4d v, int stream)
{
#ifdef DRPO__HAVE_SSE2
    if (stream) {
        _mm_stream_pd(x, _mm_set_pd(v[1], v[0]));
        _mm_stream_pd(x + 2, _mm_set_pd(v[3], v[2]));
        return;
    }
#else
    (void)stream;
#endif
    drpo__v4_store(x, v);
}

DRPO__INLINE void drpo__v4_stream_end(int stream)
{
#ifdef DRPO__HAVE_SSE2
    if (stream)
        _mm_sfence();
#else
    (void)stream;
#endif
}

/* Whether an output of m doubles at x is worth streaming: larger than the
 * last-level cache of common CPUs (32 MiB), and aligned for the stores. */
static inline int drpo__stream_output(const double *x, size_t m)
{
    return m >= ((size_t)1 << 22) && ((uintptr_t)x & 15) == 0;
}

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define DRPO__HAVE_AVX2_CLONE 1
/* Asked on every call (a few loads): the library keeps no global state. */
static inline int drpo__cpu_avx2(void)
{
    __builtin_cpu_init();
    return DRPO_ISA_MAX >= 1 && __builtin_cpu_supports("avx2");
}
/* The AVX2 and baseline instances of a kernel, name_avx2 and name_base. */
#define DRPO__NARROW_INSTANCES(ret, name, params, body_call)                                 \
    __attribute__((target("avx2"))) static ret name##_avx2 params { return body_call; }       \
    static ret name##_base params { return body_call; }
#endif

/* AVX-512 (GCC only: see DRPO__KERNEL_DISPATCH_WIDE) gives a four-lane
 * kernel 32 vector registers and mask registers for its comparisons and
 * selects: the kernels that keep many running values (the base's scan:
 * maxima with their tied mass, minima, compensated sums, in two chains)
 * spill in AVX2's 16.  Same operations, so the same results. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define DRPO__HAVE_AVX512_CLONE 1
#include <immintrin.h>

#define DRPO__WIDE __attribute__((target("avx512f,avx512dq,avx512vl")))

static inline int drpo__cpu_avx512(void)
{
    __builtin_cpu_init(); /* (libgcc also checks that the OS saves the zmm state) */
    return DRPO_ISA_MAX >= 2 && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
}

/* Every kernel has an AVX-512 instance: see DRPO__KERNEL_DISPATCH_WIDE. */
#define DRPO__KERNEL_DISPATCH(ret, name, params, args, body_call)                             \
    DRPO__KERNEL_DISPATCH_WIDE(ret, name, params, args, body_call, body_call)
#elif defined(DRPO__HAVE_AVX2_CLONE)
#define DRPO__KERNEL_DISPATCH(ret, name, params, args, body_call)                             \
    DRPO__NARROW_INSTANCES(ret, name, params, body_call)                                      \
    static ret name params { return drpo__cpu_avx2() ? name##_avx2 args : name##_base args; }
#else
#define DRPO__KERNEL_DISPATCH(ret, name, params, args, body_call)                             \
    static ret name params { return body_call; }
#endif

/* Eight lanes, for the kernels whose arithmetic per unit outweighs the
 * memory it reads (the exponentials of the KL passes): AVX-512 runs them in
 * half the instructions and looks up exp's table in registers.  A kernel
 * with a wide instance sums in eight lanes in every instance (the four-lane
 * ones as two groups of four), so all of them agree bit for bit.  GCC only:
 * a wide instance inlines the four-lane helpers, which take vectors by
 * value, and clang rejects such a call between targets even where it is
 * inlined (a clang build runs the AVX2 instance). */
#ifdef DRPO__HAVE_AVX512_CLONE
typedef double drpo_v8d __attribute__((vector_size(64)));
typedef int64_t drpo_v8i __attribute__((vector_size(64)));
typedef uint64_t drpo_v8u __attribute__((vector_size(64)));

DRPO__WIDE DRPO__INLINE drpo_v8d drpo__v8_load(const double *x)
{
    drpo_v8d v;
    memcpy(&v, x, sizeof v);
    return v;
}

DRPO__WIDE DRPO__INLINE void drpo__v8_store(double *x, drpo_v8d v) { memcpy(x, &v, sizeof v); }

DRPO__WIDE DRPO__INLINE drpo_v8d drpo__v8_set1(double a)
{
    return (drpo_v8d){a, a, a, a, a, a, a, a};
}

/* drpo__v4_store_out on eight lanes: streamed as four halves of sixteen
 * bytes, as the four-lane instances store (an output need only be 16-byte
 * aligned to be streamed; a 64-byte store was no faster). */
DRPO__WIDE DRPO__INLINE void drpo__v8_store_out(double *x, drpo_v8d v, int stream)
{
    if (stream) {
        __m512d w = (__m512d)v;
        _mm_stream_pd(x, _mm512_castpd512_pd128(w));
        _mm_stream_pd(x + 2, _mm512_extractf64x2_pd(w, 1));
        _mm_stream_pd(x + 4, _mm512_extractf64x2_pd(w, 2));
        _mm_stream_pd(x + 6, _mm512_extractf64x2_pd(w, 3));
    } else {
        drpo__v8_store(x, v);
    }
}

/* Lanes 0-3 and 4-7 (in registers: a memcpy of the halves went through
 * the stack). */
DRPO__WIDE DRPO__INLINE drpo_v4d drpo__v8_lo(drpo_v8d v)
{
    return (drpo_v4d)_mm512_castpd512_pd256((__m512d)v);
}

DRPO__WIDE DRPO__INLINE drpo_v4d drpo__v8_hi(drpo_v8d v)
{
    return (drpo_v4d)_mm512_extractf64x4_pd((__m512d)v, 1);
}

/* 2^(j/32) for j < 32: two two-register permutes and a blend on bit 4. */
DRPO__WIDE DRPO__INLINE drpo_v8d drpo__v8_exp2_32(drpo_v8u j)
{
    __m512i index = (__m512i)j;
    __m512d low = _mm512_permutex2var_pd(_mm512_loadu_pd(drpo__exp2_32), index,
                                         _mm512_loadu_pd(drpo__exp2_32 + 8));
    __m512d high = _mm512_permutex2var_pd(_mm512_loadu_pd(drpo__exp2_32 + 16), index,
                                          _mm512_loadu_pd(drpo__exp2_32 + 24));
    __mmask8 upper = _mm512_test_epi64_mask(index, _mm512_set1_epi64(16));
    return (drpo_v8d)_mm512_mask_blend_pd(upper, low, high);
}

#define V drpo_v8d
#define VI drpo_v8i
#define VU drpo_v8u
#define VEC DRPO__V8
#define VEC_ATTR DRPO__WIDE
#define VEC_TABLE(j) drpo__v8_exp2_32(j)
#include "vec_exp.h"

/* A kernel's three instances: body_call on AVX2 and the baseline, wide_call
 * where the CPU has AVX-512 (on eight lanes, or body_call itself). */
#define DRPO__KERNEL_DISPATCH_WIDE(ret, name, params, args, body_call, wide_call)            \
    DRPO__WIDE static ret name##_avx512 params { return wide_call; }                          \
    DRPO__NARROW_INSTANCES(ret, name, params, body_call)                                      \
    static ret name params                                                                    \
    {                                                                                         \
        return drpo__cpu_avx512() ? name##_avx512 args                                        \
               : drpo__cpu_avx2() ? name##_avx2 args                                          \
                                  : name##_base args;                                         \
    }
#else
#define DRPO__KERNEL_DISPATCH_WIDE(ret, name, params, args, body_call, wide_call)            \
    DRPO__KERNEL_DISPATCH(ret, name, params, args, body_call)
#endif

#endif

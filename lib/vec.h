/* vec.h - four-lane double arithmetic written once, run as AVX2 where the
 * CPU has it and as baseline SSE2 elsewhere (internal).
 *
 * A kernel's body is an always-inline function over drpo_v4d (GCC's vector
 * extensions); DRPO__KERNEL_DISPATCH instantiates it under target("avx2") and
 * under the baseline and picks one per call.  Both instances perform the same
 * IEEE operations in the same order (no FMA: neither target has it, and the
 * library is built with -ffp-contract=off), so the result does not depend on
 * which one ran. */
#ifndef DRPO_VEC_H
#define DRPO_VEC_H

#include "internal.h"

#include <stdint.h>
#include <string.h>

typedef double drpo_v4d __attribute__((vector_size(32)));
typedef int64_t drpo_v4i __attribute__((vector_size(32)));

#define DRPO__INLINE static inline __attribute__((always_inline))

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

/* exp(x) for x <= 0: x = k ln2 + r with |r| <= ln2/2, a degree-13 Taylor
 * polynomial for exp(r) (truncation below 1e-17 relative), and 2^k from its
 * exponent bits.  Below -708 the result (< 1e-307) is flushed to 0. */
DRPO__INLINE drpo_v4d drpo__v4_exp_nonpos(drpo_v4d x)
{
    const drpo_v4d floor = drpo__v4_set1(-708.0), shifter = drpo__v4_set1(0x1.8p52);
    drpo_v4i under = x < floor;
    drpo_v4d xc = drpo__v4_select(under, floor, x);
    drpo_v4d t = xc * 1.4426950408889634 + shifter, kd = t - shifter;
    drpo_v4d r = (xc - kd * 6.93147180369123816490e-01) - kd * 1.90821492927058770002e-10;
    drpo_v4d p = r * (1.0 / 6227020800.0) + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    drpo_v4i bits = ((drpo_v4i)t << 52) + ((int64_t)1023 << 52);
    drpo_v4d y = p * (drpo_v4d)bits;
    return (drpo_v4d)((drpo_v4i)y & ~under);
}

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
static inline double drpo__v4_ksum_total(drpo_v4d s, drpo_v4d c)
{
    drpo_ksum k = {0.0, 0.0};
    for (int l = 0; l < 4; l++)
        drpo__ksum_add(&k, s[l]);
    for (int l = 0; l < 4; l++)
        drpo__ksum_add(&k, c[l]);
    return drpo__ksum_value(&k);
}

/* The lanes of a plain sum, in a fixed order. */
static inline double drpo__v4_hsum(drpo_v4d v) { return (v[0] + v[1]) + (v[2] + v[3]); }

/* Units j .. end-1 (fewer than four) of a problem as padded vectors: lanes
 * past the end get gap 0 and mass 0.  Returns the lanes that hold a unit. */
DRPO__INLINE drpo_v4i drpo__v4_tail(const drpo_problem *pb, size_t j, size_t end, drpo_v4d *d,
                                    drpo_v4d *p)
{
    drpo_v4i real = {0, 0, 0, 0};
    *d = *p = drpo__v4_set1(0.0);
    for (size_t l = 0; j + l < end; l++) {
        (*d)[l] = drpo__gap(pb, j + l);
        (*p)[l] = pb->uniform ? pb->pu : pb->p[j + l];
        real[l] = -1;
    }
    return real;
}

/* Units j .. j+3 (padded past end) as gaps and masses; with `count` (a
 * uniform base) the masses are ones, to be scaled by pu afterwards. */
DRPO__INLINE void drpo__v4_units(const drpo_problem *pb, size_t j, size_t end, int count,
                                 drpo_v4d *d, drpo_v4d *p)
{
    const drpo_v4d one = drpo__v4_set1(1.0);
    if (j + 4 <= end) {
        *d = drpo__v4_set1(pb->top) - drpo__v4_load(pb->x + j) * drpo__v4_set1(pb->down);
        *p = count ? one : drpo__v4_load(pb->p + j);
    } else {
        drpo_v4i real = drpo__v4_tail(pb, j, end, d, p);
        *p = count ? drpo__v4_select(real, one, drpo__v4_set1(0.0)) : *p;
    }
}

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define DRPO__HAVE_AVX2_CLONE 1
/* Asked on every call (a few loads): the library keeps no global state. */
static inline int drpo__cpu_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
}
#define DRPO__KERNEL_DISPATCH(ret, name, params, args, body_call)                             \
    __attribute__((target("avx2"))) static ret name##_avx2 params { return body_call; }       \
    static ret name##_base params { return body_call; }                                       \
    static ret name params { return drpo__cpu_avx2() ? name##_avx2 args : name##_base args; }
#else
#define DRPO__KERNEL_DISPATCH(ret, name, params, args, body_call)                             \
    static ret name params { return body_call; }
#endif

#endif

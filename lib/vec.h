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

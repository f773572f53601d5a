/* kl_pass.c - the KL solver's pass over the gaps (kl.c): at inverse
 * temperature u, Z = sum p exp(-u d), the moments sum w (d - c)^k of
 * w = p exp(-u d) and, where Z is near 1, sum p expm1(-u d) for log1p.
 *
 * The exponentials outweigh the memory the pass reads, so besides the AVX2
 * and baseline instances of every other kernel this one has an AVX-512
 * instance on eight lanes (vec.h): it adds each half of its eight lanes
 * to the same four-lane sums in the same order, so all three instances
 * return the same bits (tests/test_kernels.c compares them). */
#include "../internal.h"
#include "../vec.h"

#include <stddef.h>

/* A pass's sums in four lanes each (reduced by drpo__kl_pass). */
typedef struct kl_sums {
    drpo_v4d z_s, z_c, em1, mom[KL_ORDER];
} kl_sums;

/* The weights w = p exp(-u d) of a group of gaps, or in the precise form
 * (u d <= 0.5) w = p (1 + e1) with e1 = expm1(-u d), and then *pe1 = p e1.
 * Written once for four and for eight lanes: the same operations per lane. */
#define KL_WEIGHTS(V, VEC, ATTR)                                                              \
    ATTR DRPO__INLINE V VEC(kl_weights)(V d, V p, V nu, int precise, V *pe1)                  \
    {                                                                                         \
        if (!precise)                                                                         \
            return p * VEC(exp_nonpos)(nu * d);                                               \
        V e1 = VEC(expm1_small)(nu * d);                                                      \
        *pe1 = p * e1;                                                                        \
        return p * (1.0 + e1);                                                                \
    }
KL_WEIGHTS(drpo_v4d, DRPO__V4, )

/* Four gaps' weights w and their terms into the running sums: w, p expm1
 * (precise form) and w (d - c)^k, k = 1..order (1 or 6). */
DRPO__INLINE void kl_add(drpo_v4d d, drpo_v4d w, drpo_v4d pe1, drpo_v4d vc, int precise,
                         int order, drpo_v4d *block, drpo_v4d *em1, drpo_v4d mom[KL_ORDER])
{
    if (precise)
        *em1 += pe1;
    *block += w;
    /* w x^k: w x and w x^2 times powers of x^2, a short chain */
    drpo_v4d x = d - vc, wx = w * x;
    mom[0] += wx;
    if (order >= KL_ORDER) {
        drpo_v4d x2 = x * x, wx2 = w * x2, wx3 = wx * x2, wx4 = wx2 * x2;
        mom[1] += wx2;
        mom[2] += wx3;
        mom[3] += wx4;
        mom[4] += wx3 * x2;
        mom[5] += wx4 * x2;
    }
}

/* Four gaps, their weights kept when `keep`. */
DRPO__INLINE void kl_lanes(drpo_v4d d, drpo_v4d p, drpo_v4d nu, drpo_v4d vc, int precise,
                           int order, double *keep, drpo_v4d *block, drpo_v4d *em1,
                           drpo_v4d mom[KL_ORDER])
{
    drpo_v4d pe1 = nu, w = DRPO__V4(kl_weights)(d, p, nu, precise, &pe1);
    if (keep)
        drpo__v4_store(keep, w);
    kl_add(d, w, pe1, vc, precise, order, block, em1, mom);
}

/* Units j .. end-1 of a block of the pass, four at a time, the last
 * m mod 4 padded with lanes that have no mass. */
DRPO__INLINE void kl_block(const drpo_problem *pb, size_t j, size_t end, drpo_v4d nu,
                           drpo_v4d vc, double *store, int uniform, int precise, int order,
                           drpo_v4d *block, drpo_v4d *em1, drpo_v4d mom[KL_ORDER])
{
    for (; j + 4 <= end; j += 4) {
        drpo_v4d d = drpo__v4_set1(pb->top) - drpo__v4_load(pb->x + j) * drpo__v4_set1(pb->down);
        drpo_v4d p = uniform ? drpo__v4_set1(pb->pu) : drpo__v4_load(pb->p + j);
        kl_lanes(d, p, nu, vc, precise, order, store ? store + j : NULL, block, em1, mom);
    }
    if (j < end) {
        drpo_v4d d, p;
        double w[4];
        drpo__v4_units(pb, j, end, uniform, 0, &d, &p);
        kl_lanes(d, p, nu, vc, precise, order, store ? w : NULL, block, em1, mom);
        for (size_t l = 0; store && j + l < end; l++)
            store[j + l] = w[l];
    }
}

/* sum w and sum w (d - c)^k, k = 1..order (1 or 6), with w = p exp(-u d)
 * over the problem, w kept in store (unless NULL); in the precise form
 * (u d <= 0.5) also sum p expm1(-u d), and w = p (1 + expm1).  Z is summed
 * in blocks of 256, compensated across blocks.  The sums live in locals
 * (the stores to `store` could alias a returned struct and keep them in
 * memory), and whether to store is decided once (`keeps`, a constant after
 * inlining). */
DRPO__INLINE kl_sums kl_pass(const drpo_problem *pb, double u, double c, double *store,
                             int uniform, int precise, int order, int keeps)
{
    const drpo_v4d nu = drpo__v4_set1(-u), vc = drpo__v4_set1(c), zero = drpo__v4_set1(0.0);
    drpo_v4d z_s = zero, z_c = zero, em1 = zero, mom[KL_ORDER];
    for (int k = 0; k < KL_ORDER; k++)
        mom[k] = zero;
    for (size_t j = 0, m = pb->m; j < m; j += 256) {
        drpo_v4d block = zero;
        size_t end = j + 256 < m ? j + 256 : m;
        kl_block(pb, j, end, nu, vc, keeps ? store : NULL, uniform, precise, order, &block, &em1,
                 mom);
        drpo__v4_ksum_add(&z_s, &z_c, block);
    }
    kl_sums s = {z_s, z_c, em1, {zero}};
    for (int k = 0; k < KL_ORDER; k++)
        s.mom[k] = mom[k];
    return s;
}

DRPO__INLINE kl_sums kl_body(const drpo_problem *pb, double u, double c, double *store,
                             int uniform, int precise, int order)
{
    return store ? kl_pass(pb, u, c, store, uniform, precise, order, 1)
                 : kl_pass(pb, u, c, store, uniform, precise, order, 0);
}

#ifdef DRPO__HAVE_AVX512_CLONE
KL_WEIGHTS(drpo_v8d, DRPO__V8, DRPO__WIDE)

/* kl_pass on eight lanes (AVX-512): the exponentials of units j..j+7 at
 * once, their terms added to the four-lane sums as units j..j+3, then
 * j+4..j+7, exactly as kl_pass adds them; the last m mod 8 by kl_block. */
DRPO__WIDE DRPO__INLINE kl_sums kl_pass_wide(const drpo_problem *pb, double u, double c,
                                              double *store, int uniform, int precise,
                                              int order, int keeps)
{
    const drpo_v4d nu = drpo__v4_set1(-u), vc = drpo__v4_set1(c), zero = drpo__v4_set1(0.0);
    const drpo_v8d nu8 = drpo__v8_set1(-u), top = drpo__v8_set1(pb->top),
                   down = drpo__v8_set1(pb->down), pu = drpo__v8_set1(pb->pu);
    const double *x = pb->x, *base = pb->p;
    drpo_v4d z_s = zero, z_c = zero, em1 = zero, mom[KL_ORDER];
    for (int k = 0; k < KL_ORDER; k++)
        mom[k] = zero;
    for (size_t j = 0, m = pb->m; j < m;) {
        drpo_v4d block = zero;
        size_t end = j + 256 < m ? j + 256 : m;
        for (; j + 8 <= end; j += 8) {
            drpo_v8d d = top - drpo__v8_load(x + j) * down;
            drpo_v8d p = uniform ? pu : drpo__v8_load(base + j);
            drpo_v8d pe1 = nu8, w = DRPO__V8(kl_weights)(d, p, nu8, precise, &pe1);
            if (keeps)
                drpo__v8_store(store + j, w);
            kl_add(drpo__v8_lo(d), drpo__v8_lo(w), drpo__v8_lo(pe1), vc, precise, order, &block,
                   &em1, mom);
            kl_add(drpo__v8_hi(d), drpo__v8_hi(w), drpo__v8_hi(pe1), vc, precise, order, &block,
                   &em1, mom);
        }
        kl_block(pb, j, end, nu, vc, keeps ? store : NULL, uniform, precise, order, &block, &em1,
                 mom);
        drpo__v4_ksum_add(&z_s, &z_c, block);
        j = end;
    }
    kl_sums s = {z_s, z_c, em1, {zero}};
    for (int k = 0; k < KL_ORDER; k++)
        s.mom[k] = mom[k];
    return s;
}

DRPO__WIDE DRPO__INLINE kl_sums kl_body_wide(const drpo_problem *pb, double u, double c,
                                              double *store, int uniform, int precise, int order)
{
    return store ? kl_pass_wide(pb, u, c, store, uniform, precise, order, 1)
                 : kl_pass_wide(pb, u, c, store, uniform, precise, order, 0);
}
#else
#define kl_body_wide kl_body
#endif

/* Instances by base, form of the sum (precise: Z near 1) and moments: the
 * radius form's Newton needs all six, the penalty form the mean alone. */
#define KL_KERNEL(name, uniform, precise, order)                                              \
    DRPO__KERNEL_DISPATCH_WIDE(kl_sums, name,                                                 \
                               (const drpo_problem *pb, double u, double c, double *store),   \
                               (pb, u, c, store),                                             \
                               kl_body(pb, u, c, store, uniform, precise, order),             \
                               kl_body_wide(pb, u, c, store, uniform, precise, order))
KL_KERNEL(kl_uniform, 1, 0, KL_ORDER)
KL_KERNEL(kl_weighted, 0, 0, KL_ORDER)
KL_KERNEL(kl_uniform_precise, 1, 1, KL_ORDER)
KL_KERNEL(kl_weighted_precise, 0, 1, KL_ORDER)
KL_KERNEL(kl_uniform_mean, 1, 0, 1)
KL_KERNEL(kl_weighted_mean, 0, 0, 1)
KL_KERNEL(kl_uniform_precise_mean, 1, 1, 1)
KL_KERNEL(kl_weighted_precise_mean, 0, 1, 1)

drpo_kl_sums drpo__kl_pass(const drpo_problem *pb, double u, double c, double *store,
                           int precise, int moments)
{
    typedef kl_sums (*kernel_fn)(const drpo_problem *, double, double, double *);
    static const kernel_fn kernel[2][2][2] = { /* [all moments][precise][uniform] */
        {{kl_weighted_mean, kl_uniform_mean}, {kl_weighted_precise_mean, kl_uniform_precise_mean}},
        {{kl_weighted, kl_uniform}, {kl_weighted_precise, kl_uniform_precise}}};
    kl_sums s = kernel[moments != 0][precise != 0][pb->uniform != 0](pb, u, c, store);
    drpo_kl_sums r = {drpo__v4_ksum_total(s.z_s, s.z_c), drpo__v4_hsum(s.em1), {0.0}};
    for (int k = 0; k < (moments ? KL_ORDER : 1); k++)
        r.mom[k] = drpo__v4_hsum(s.mom[k]);
    return r;
}

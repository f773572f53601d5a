/* kl_pass.c - the KL solver's pass over the gaps (kl.c): at inverse
 * temperature u, Z = sum p exp(-u d), the moments sum w (d - c)^k of
 * w = p exp(-u d) and, where Z is near 1, sum p expm1(-u d) for log1p.
 *
 * The exponentials outweigh the memory the pass reads, so besides the AVX2
 * and baseline instances of every other kernel this one has an AVX-512
 * instance on eight lanes (vec.h).  Every instance sums in the same eight
 * lanes (unit j into lane j mod 8; four-lane instances keep them as two
 * groups of four), joins them in the same order and adds the last m mod 8
 * units the same way, so all three return the same bits
 * (tests/test_kl_pass.c compares them).  Eight lanes rather than four also
 * halve the chains of dependent additions each sum carries per unit, which
 * bound the wide instance. */
#include "../internal.h"
#include "../vec.h"

#include <stddef.h>

/* A pass's sums in four lanes each (reduced by drpo__kl_pass). */
typedef struct kl_sums {
    drpo_v4d z_s, z_c, em1, mom[DRPO__KL_ORDER];
} kl_sums;

/* A group of gaps d with masses p into running sums: the weights w = p
 * exp(-u d) (in the precise form, u d <= 0.5: w = p (1 + e1) with e1 =
 * expm1(-u d), and p e1 into *em1) into *block, w (d - c)^k, k = 1..order
 * (1 or 6), into mom; w kept at `keep` unless it is NULL.  Written once for
 * four and for eight lanes: the same operations in each lane. */
#define KL_GROUP(V, VEC, ATTR)                                                                \
    ATTR DRPO__INLINE void VEC(kl_group)(V d, V p, V nu, V vc, int precise, int order,        \
                                         double *keep, V *block, V *em1,                      \
                                         V mom[DRPO__KL_ORDER])                               \
    {                                                                                         \
        V w;                                                                                  \
        if (precise) {                                                                        \
            V e1 = VEC(expm1_small)(nu * d);                                                  \
            *em1 += p * e1;                                                                   \
            w = p * (1.0 + e1);                                                               \
        } else {                                                                              \
            w = p * VEC(exp_nonpos)(nu * d);                                                  \
        }                                                                                     \
        if (keep)                                                                             \
            VEC(store)(keep, w);                                                              \
        *block += w;                                                                          \
        /* w x^k: w x and w x^2 times powers of x^2, a short chain */                         \
        V x = d - vc, wx = w * x;                                                             \
        mom[0] += wx;                                                                         \
        if (order >= DRPO__KL_ORDER) {                                                        \
            V x2 = x * x, wx2 = w * x2, wx3 = wx * x2, wx4 = wx2 * x2;                        \
            mom[1] += wx2;                                                                    \
            mom[2] += wx3;                                                                    \
            mom[3] += wx4;                                                                    \
            mom[4] += wx3 * x2;                                                               \
            mom[5] += wx4 * x2;                                                               \
        }                                                                                     \
    }
KL_GROUP(drpo_v4d, DRPO__V4, )

/* The end of every instance's pass: the last block's sum `block` and the
 * sums em1 and mom, their eight lanes joined into four, take units j..m-1
 * (fewer than eight: four at a time, the rest padded with lanes that have
 * no mass), and the block joins the compensated Z. */
DRPO__INLINE kl_sums kl_finish(const drpo_problem *pb, size_t j, double u, double c,
                               double *store, int uniform, int precise, int order,
                               drpo_v4d z_s, drpo_v4d z_c, drpo_v4d block, drpo_v4d em1,
                               const drpo_v4d mom_joined[DRPO__KL_ORDER])
{
    const drpo_v4d nu = drpo__v4_set1(-u), vc = drpo__v4_set1(c);
    size_t m = pb->m;
    drpo_v4d mom[DRPO__KL_ORDER];
    for (int k = 0; k < DRPO__KL_ORDER; k++)
        mom[k] = mom_joined[k];
    for (; j + 4 <= m; j += 4) {
        drpo_v4d d, p;
        drpo__v4_units4(pb, j, uniform, 0, &d, &p);
        DRPO__V4(kl_group)(d, p, nu, vc, precise, order, store ? store + j : NULL, &block, &em1,
                           mom);
    }
    if (j < m) {
        drpo_v4d d, p;
        double w[4];
        drpo__v4_units(pb, j, m, uniform, 0, &d, &p);
        DRPO__V4(kl_group)(d, p, nu, vc, precise, order, store ? w : NULL, &block, &em1, mom);
        for (size_t l = 0; store && j + l < m; l++)
            store[j + l] = w[l];
    }
    drpo__v4_ksum_add(&z_s, &z_c, block);
    kl_sums s;
    s.z_s = z_s;
    s.z_c = z_c;
    s.em1 = em1;
    for (int k = 0; k < DRPO__KL_ORDER; k++)
        s.mom[k] = mom[k];
    return s;
}

/* sum w and sum w (d - c)^k, k = 1..order (1 or 6), with w = p exp(-u d)
 * over the problem, w kept in store (unless NULL); in the precise form
 * (u d <= 0.5) also sum p expm1(-u d), and w = p (1 + expm1).  Z is summed
 * in blocks of 256 units, compensated across blocks, the last m mod 8
 * units in the last block.  Eight lanes as two groups of four: a, units
 * 8i..8i+3, and b, 8i+4..8i+7.  The sums live in locals (the stores to
 * `store` could alias a returned struct and keep them in memory), and
 * whether to store is decided once (`keeps`, a constant after inlining). */
DRPO__INLINE kl_sums kl_pass(const drpo_problem *pb, double u, double c, double *store,
                             int uniform, int precise, int order, int keeps)
{
    const drpo_v4d nu = drpo__v4_set1(-u), vc = drpo__v4_set1(c), zero = drpo__v4_set1(0.0);
    drpo_v4d z_s = zero, z_c = zero, em1_a = zero, em1_b = zero, block;
    drpo_v4d mom_a[DRPO__KL_ORDER], mom_b[DRPO__KL_ORDER];
    for (int k = 0; k < DRPO__KL_ORDER; k++)
        mom_a[k] = mom_b[k] = zero;
    size_t j = 0, full = pb->m - pb->m % 8;
    for (;;) {
        drpo_v4d block_a = zero, block_b = zero;
        size_t end = j + 256 < full ? j + 256 : full;
        for (; j < end; j += 8) {
            drpo_v4d d, p;
            drpo__v4_units4(pb, j, uniform, 0, &d, &p);
            DRPO__V4(kl_group)(d, p, nu, vc, precise, order, keeps ? store + j : NULL, &block_a,
                               &em1_a, mom_a);
            drpo__v4_units4(pb, j + 4, uniform, 0, &d, &p);
            DRPO__V4(kl_group)(d, p, nu, vc, precise, order, keeps ? store + j + 4 : NULL,
                               &block_b, &em1_b, mom_b);
        }
        block = block_a + block_b;
        if (j >= full)
            break;
        drpo__v4_ksum_add(&z_s, &z_c, block);
    }
    drpo_v4d mom[DRPO__KL_ORDER];
    for (int k = 0; k < DRPO__KL_ORDER; k++)
        mom[k] = mom_a[k] + mom_b[k];
    return kl_finish(pb, j, u, c, keeps ? store : NULL, uniform, precise, order, z_s, z_c, block,
                     em1_a + em1_b, mom);
}

DRPO__INLINE kl_sums kl_body(const drpo_problem *pb, double u, double c, double *store,
                             int uniform, int precise, int order)
{
    return store ? kl_pass(pb, u, c, store, uniform, precise, order, 1)
                 : kl_pass(pb, u, c, store, uniform, precise, order, 0);
}

#ifdef DRPO__HAVE_AVX512_CLONE
KL_GROUP(drpo_v8d, DRPO__V8, DRPO__WIDE)

/* kl_pass on eight lanes (AVX-512): the same sums, lane for lane; the
 * halves of a lane vector are joined low + high as kl_pass joins a + b. */
DRPO__WIDE DRPO__INLINE kl_sums kl_pass_wide(const drpo_problem *pb, double u, double c,
                                              double *store, int uniform, int precise,
                                              int order, int keeps)
{
    const drpo_v8d nu = drpo__v8_set1(-u), vc = drpo__v8_set1(c), zero = drpo__v8_set1(0.0),
                   top = drpo__v8_set1(pb->top), down = drpo__v8_set1(pb->down),
                   pu = drpo__v8_set1(pb->pu);
    const double *x = pb->x, *base = pb->p;
    drpo_v4d z_s = drpo__v8_lo(zero), z_c = z_s, block;
    drpo_v8d em1 = zero, mom[DRPO__KL_ORDER];
    for (int k = 0; k < DRPO__KL_ORDER; k++)
        mom[k] = zero;
    size_t j = 0, full = pb->m - pb->m % 8;
    for (;;) {
        drpo_v8d block8 = zero;
        size_t end = j + 256 < full ? j + 256 : full;
        for (; j < end; j += 8) {
            drpo_v8d d = top - drpo__v8_load(x + j) * down;
            drpo_v8d p = uniform ? pu : drpo__v8_load(base + j);
            DRPO__V8(kl_group)(d, p, nu, vc, precise, order, keeps ? store + j : NULL, &block8,
                               &em1, mom);
        }
        block = drpo__v8_lo(block8) + drpo__v8_hi(block8);
        if (j >= full)
            break;
        drpo__v4_ksum_add(&z_s, &z_c, block);
    }
    drpo_v4d joined[DRPO__KL_ORDER];
    for (int k = 0; k < DRPO__KL_ORDER; k++)
        joined[k] = drpo__v8_lo(mom[k]) + drpo__v8_hi(mom[k]);
    return kl_finish(pb, j, u, c, keeps ? store : NULL, uniform, precise, order, z_s, z_c, block,
                     drpo__v8_lo(em1) + drpo__v8_hi(em1), joined);
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
KL_KERNEL(kl_uniform, 1, 0, DRPO__KL_ORDER)
KL_KERNEL(kl_weighted, 0, 0, DRPO__KL_ORDER)
KL_KERNEL(kl_uniform_precise, 1, 1, DRPO__KL_ORDER)
KL_KERNEL(kl_weighted_precise, 0, 1, DRPO__KL_ORDER)
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
    for (int k = 0; k < (moments ? DRPO__KL_ORDER : 1); k++)
        r.mom[k] = drpo__v4_hsum(s.mom[k]);
    return r;
}

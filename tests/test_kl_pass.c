/* test_kl_pass.c - the KL solver's pass (lib/sets/kl_pass.c, compiled into
 * this test to reach its instances): the AVX-512, AVX2 and baseline
 * instances return the same bits, sums and kept weights, on every length
 * around the eight-lane groups, the four-lane tails and the blocks of
 * 256; and the sums match a long double reference. */
#include "check_util.h"
#include "suites.h"

/* the kernels' vectors are passed only between inlined functions */
#pragma GCC diagnostic ignored "-Wpsabi"
#include "../lib/sets/kl_pass.c"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef kl_sums (*kl_instance)(const drpo_problem *, double, double, double *);

typedef struct kl_kernel_set {
    const char *name;
    int uniform, precise, moments;
    kl_instance base, avx2, avx512;
} kl_kernel_set;

#if defined(DRPO__HAVE_AVX512_CLONE)
#define KL_SET(name, uniform, precise, moments)                                               \
    {#name, uniform, precise, moments, name##_base, name##_avx2, name##_avx512}
#elif defined(DRPO__HAVE_AVX2_CLONE)
#define KL_SET(name, uniform, precise, moments)                                               \
    {#name, uniform, precise, moments, name##_base, name##_avx2, NULL}
#else
#define KL_SET(name, uniform, precise, moments) {#name, uniform, precise, moments, name, NULL, NULL}
#endif

static const kl_kernel_set kl_sets[] = {
    KL_SET(kl_uniform, 1, 0, 1),      KL_SET(kl_weighted, 0, 0, 1),
    KL_SET(kl_uniform_precise, 1, 1, 1), KL_SET(kl_weighted_precise, 0, 1, 1),
    KL_SET(kl_uniform_mean, 1, 0, 0), KL_SET(kl_weighted_mean, 0, 0, 0),
    KL_SET(kl_uniform_precise_mean, 1, 1, 0), KL_SET(kl_weighted_precise_mean, 0, 1, 0),
};

/* Losses in [0, 1), gaps d = 1 - x, and with `far` a few far below (their
 * weights underflow to 0); masses random, summing to 1. */
static void kl_case(tu_rng *r, size_t m, int far, double *x, double *p)
{
    double sum = 0.0;
    for (size_t j = 0; j < m; j++) {
        x[j] = far && tu_below(r, 50) == 0 ? -300.0 * tu_unif(r) : tu_unif(r);
        p[j] = 0.1 + tu_unif(r);
        sum += p[j];
    }
    for (size_t j = 0; j < m; j++)
        p[j] /= sum;
}

static int same_sums(const kl_sums *a, const kl_sums *b) { return !memcmp(a, b, sizeof *a); }

START_TEST(test_kl_pass_instances_agree)
{
    static const size_t lengths[] = {1, 3, 4, 5, 7, 8, 9, 12, 13, 255, 256, 257, 263, 1000, 4101};
    const size_t cap = 4101;
    double *x = malloc(cap * sizeof *x), *p = malloc(cap * sizeof *p);
    double *w[3] = {malloc(cap * sizeof(double)), malloc(cap * sizeof(double)),
                    malloc(cap * sizeof(double))};
    ck_assert(x && p && w[0] && w[1] && w[2]);
    tu_rng r;
    tu_rng_seed(&r, 4711);
    int compared = 0;
    for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
        size_t m = lengths[li];
        for (size_t k = 0; k < sizeof kl_sets / sizeof kl_sets[0]; k++) {
            const kl_kernel_set *ks = &kl_sets[k];
            kl_case(&r, m, !ks->precise, x, p);
            drpo_problem pb = {.m = m, .x = x, .top = 1.0, .down = 1.0,
                               .p = ks->uniform ? NULL : p, .uniform = ks->uniform,
                               .pu = 1.0 / (double)m};
            /* precise kernels are for u d <= 0.5 */
            double u = ks->precise ? 0.4 : 3.0, c = 0.37;
            for (int keep = 0; keep < 2; keep++) {
                kl_instance inst[3] = {ks->base, ks->avx2, ks->avx512};
#ifdef DRPO__HAVE_AVX2_CLONE
                if (!drpo__cpu_avx2())
                    inst[1] = NULL;
#endif
#ifdef DRPO__HAVE_AVX512_CLONE
                if (!drpo__cpu_avx512())
                    inst[2] = NULL;
#endif
                kl_sums s[3];
                for (int i = 0; i < 3; i++) {
                    if (!inst[i])
                        continue;
                    for (size_t j = 0; j < m; j++)
                        w[i][j] = -1.0;
                    s[i] = inst[i](&pb, u, c, keep ? w[i] : NULL);
                }
                for (int i = 1; i < 3; i++) {
                    if (!inst[i])
                        continue;
                    compared++;
                    ck_assert_msg(same_sums(&s[0], &s[i]),
                                  "%s, m = %zu, keep %d: instance %d's sums differ from the "
                                  "baseline's (z %a vs %a)",
                                  ks->name, m, keep, i, s[i].z_s[0], s[0].z_s[0]);
                    ck_assert_msg(!memcmp(w[0], w[i], m * sizeof(double)),
                                  "%s, m = %zu, keep %d: instance %d kept other weights",
                                  ks->name, m, keep, i);
                }
            }
        }
    }
    if (getenv("DRPO_TEST_VERBOSE"))
        printf("kl_pass: %d instance comparisons\n", compared);
    free(x);
    free(p);
    for (int i = 0; i < 3; i++)
        free(w[i]);
}
END_TEST

/* drpo__kl_pass against sums in long double. */
START_TEST(test_kl_pass_sums)
{
    const size_t m = 3001;
    double *x = malloc(m * sizeof *x), *p = malloc(m * sizeof *p), *w = malloc(m * sizeof *w);
    ck_assert(x && p && w);
    tu_rng r;
    tu_rng_seed(&r, 99);
    for (int uniform = 0; uniform < 2; uniform++)
        for (int precise = 0; precise < 2; precise++) {
            drpo_problem pb = {.m = m, .x = x, .top = 1.0, .down = 1.0,
                               .p = uniform ? NULL : p, .uniform = uniform,
                               .pu = 1.0 / (double)m};
            kl_case(&r, m, !precise, x, p);
            double u = precise ? 0.4 : 3.0, c = 0.37;
            drpo_kl_sums s = drpo__kl_pass(&pb, u, c, w, precise, 1);
            long double z = 0.0L, em1 = 0.0L, mom[DRPO__KL_ORDER] = {0.0L};
            for (size_t j = 0; j < m; j++) {
                /* the gap and exponent as the pass rounds them: its error is exp's */
                double dd = 1.0 - x[j], t = -u * dd;
                long double d = dd, pj = uniform ? 1.0L / m : p[j];
                long double wj = t < -708.0 ? 0.0L : pj * expl((long double)t); /* (flushed) */
                ck_assert_msg(fabsl(w[j] - wj) <= 1e-15L * wj, "weight %zu: %.17g vs %.17Lg", j,
                              w[j], wj);
                z += wj;
                em1 += pj * expm1l((long double)t);
                long double term = wj;
                for (int k = 0; k < DRPO__KL_ORDER; k++)
                    mom[k] += (term *= d - c);
            }
            ck_assert_msg(fabsl(s.z - z) <= 1e-14L * z, "z %.17g vs %.17Lg", s.z, z);
            if (precise)
                ck_assert_msg(fabsl(s.em1 - em1) <= 1e-14L * fabsl(em1), "em1 %.17g vs %.17Lg",
                              s.em1, em1);
            for (int k = 0; k < DRPO__KL_ORDER; k++) {
                long double scale = 0.0L, t;
                for (size_t j = 0; j < m; j++) { /* sum |terms|: the bound on rounding */
                    long double d = 1.0 - x[j];
                    t = (uniform ? 1.0L / m : p[j]) * expl(-u * (1.0 - x[j]));
                    for (int i = 0; i <= k; i++)
                        t *= fabsl(d - c);
                    scale += t;
                }
                ck_assert_msg(fabsl(s.mom[k] - mom[k]) <= 1e-13L * scale,
                              "moment %d: %.17g vs %.17Lg", k + 1, s.mom[k], mom[k]);
            }
        }
    free(x);
    free(p);
    free(w);
}
END_TEST

Suite *suite_kl_pass(void)
{
    Suite *s = suite_create("kl_pass");
    TCase *tc = tcase_create("instances");
    tcase_add_test(tc, test_kl_pass_instances_agree);
    tcase_add_test(tc, test_kl_pass_sums);
    suite_add_tcase(s, tc);
    return s;
}

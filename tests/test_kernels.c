/* test_kernels.c - the vector kernels' special functions (lib/vec.h: exp,
 * expm1, log1p):
 * accuracy against the C library, the AVX-512 (eight lanes), AVX2 and
 * baseline instances agreeing bit for bit, and the mask helpers. */
#include "check_util.h"
#include "suites.h"

/* the kernels' vectors are passed only between inlined functions */
#pragma GCC diagnostic ignored "-Wpsabi"
#include "../lib/vec.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The log1p arguments in [0, 1] for the grid's x in [-745, 0]: y = exp(x /
 * 16), from e^-47 (where log1p(y) = y) to 1, log-spaced, so that the range
 * around the reduction's switch at sqrt(2) - 1 is as dense as the rest. */
static double log1p_arg(double x) { return exp(x / 16.0); }

/* exp(x), expm1(x * 0.5 / 745) and log1p(y) of four values, through
 * pointers: a vector argument would cross between the two targets' calling
 * conventions. */
DRPO__INLINE void both(const double *x, const double *y, double *exp_out, double *expm1_out,
                       double *log1p_out)
{
    drpo_v4d v = drpo__v4_load(x);
    drpo__v4_store(exp_out, drpo__v4_exp_nonpos(v));
    drpo__v4_store(expm1_out, drpo__v4_expm1_small(v * (0.5 / 745.0)));
    drpo__v4_store(log1p_out, drpo__v4_log1p_unit(drpo__v4_load(y)));
}

#ifdef DRPO__HAVE_AVX2_CLONE
__attribute__((target("avx2"))) static void both_avx2(const double *x, const double *y,
                                                      double *e, double *m, double *lp)
{
    both(x, y, e, m, lp);
}
#endif
static void both_base(const double *x, const double *y, double *e, double *m, double *lp)
{
    both(x, y, e, m, lp);
}

#ifdef DRPO__HAVE_AVX512_CLONE
/* The eight-lane forms on x[0..7]. */
DRPO__WIDE static void both_avx512(const double *x, const double *y, double *exp_out,
                                   double *expm1_out, double *log1p_out)
{
    drpo_v8d v = drpo__v8_load(x);
    drpo__v8_store(exp_out, drpo__v8_exp_nonpos(v));
    drpo__v8_store(expm1_out, drpo__v8_expm1_small(v * (0.5 / 745.0)));
    drpo__v8_store(log1p_out, drpo__v8_log1p_unit(drpo__v8_load(y)));
}
#endif

/* x from 0 down to -745 (and a few special points), four at a time. */
static double grid(int i, int n)
{
    static const double special[] = {0.0, -0.0, -1e-300, -DBL_MIN, -1e-17, -0.5,
                                     -708.0, -708.0 - 1e-13, -745.0, -700.5};
    int ns = (int)(sizeof special / sizeof special[0]);
    return i < ns ? special[i] : -745.0 * (double)(i - ns) / (double)(n - ns);
}

START_TEST(test_exp_accuracy)
{
    const int n = 400000;
    double worst_exp = 0.0, worst_expm1 = 0.0, worst_log1p = 0.0;
    for (int i = 0; i < n; i += 4) {
        double x[4], y[4], ex[4], em[4], lp[4];
        for (int l = 0; l < 4; l++) {
            x[l] = grid(i + l, n);
            y[l] = log1p_arg(x[l]);
        }
        /* the ends and a few points about the switch at sqrt(2) - 1 */
        if (i == 0) {
            const double ends[4] = {0.0, 1.0, 0x1.a827999fcef34p-2, 0x1.a827999fcef38p-2};
            memcpy(y, ends, sizeof ends);
        }
        both_base(x, y, ex, em, lp);
        for (int l = 0; l < 4; l++) {
            if (x[l] < -708.0) {
                ck_assert_msg(ex[l] == 0.0, "exp(%.17g) = %g, flushed to 0 expected", x[l],
                              ex[l]);
            } else {
                double u = tu_ulps(ex[l], exp(x[l]));
                ck_assert_msg(u <= 4.0, "exp(%.17g): %.17g vs %.17g (%.1f ulps)", x[l], ex[l],
                              exp(x[l]), u);
                worst_exp = fmax(worst_exp, u);
            }
            double xm = x[l] * (0.5 / 745.0); /* [-0.5, 0] */
            double u = tu_ulps(em[l], expm1(xm));
            ck_assert_msg(u <= 4.0, "expm1(%.17g): %.17g vs %.17g (%.1f ulps)", xm, em[l],
                          expm1(xm), u);
            worst_expm1 = fmax(worst_expm1, u);
            u = tu_ulps(lp[l], log1p(y[l]));
            ck_assert_msg(u <= 2.0, "log1p(%.17g): %.17g vs %.17g (%.1f ulps)", y[l], lp[l],
                          log1p(y[l]), u);
            worst_log1p = fmax(worst_log1p, u);
        }
    }
    if (getenv("DRPO_TEST_VERBOSE"))
        printf("exp: worst %.2f ulps; expm1 on [-0.5, 0]: worst %.2f ulps; log1p on [0, 1]: "
               "worst %.2f ulps\n",
               worst_exp, worst_expm1, worst_log1p);
}
END_TEST

/* The instances this CPU runs against the baseline, eight points at a time. */
static void compare_instances(const char *name,
                              void (*run)(const double *, const double *, double *, double *,
                                          double *),
                              int lanes)
{
    const int n = 100000;
    for (int i = 0; i < n; i += 8) {
        double x[8], y[8], ea[8], ma[8], la[8], eb[8], mb[8], lb[8];
        for (int l = 0; l < 8; l++) {
            x[l] = grid(i + l, n);
            y[l] = log1p_arg(x[l]);
        }
        for (int l = 0; l < 8; l += lanes)
            run(x + l, y + l, ea + l, ma + l, la + l);
        both_base(x, y, eb, mb, lb);
        both_base(x + 4, y + 4, eb + 4, mb + 4, lb + 4);
        for (int l = 0; l < 8; l++) {
            ck_assert_msg(!memcmp(&ea[l], &eb[l], sizeof(double)),
                          "exp(%.17g): %s %a, baseline %a", x[l], name, ea[l], eb[l]);
            ck_assert_msg(!memcmp(&ma[l], &mb[l], sizeof(double)),
                          "expm1(%.17g): %s %a, baseline %a", x[l] * (0.5 / 745.0), name,
                          ma[l], mb[l]);
            ck_assert_msg(!memcmp(&la[l], &lb[l], sizeof(double)),
                          "log1p(%.17g): %s %a, baseline %a", y[l], name, la[l], lb[l]);
        }
    }
}

START_TEST(test_instances_agree)
{
#ifdef DRPO__HAVE_AVX2_CLONE
    if (drpo__cpu_avx2())
        compare_instances("AVX2", both_avx2, 4);
#endif
#ifdef DRPO__HAVE_AVX512_CLONE
    if (drpo__cpu_avx512())
        compare_instances("AVX-512", both_avx512, 8);
#endif
}
END_TEST

/* Every lane mask: its bits, and the masked lanes moved to the front in
 * order (the window copy keeps the gaps inside its bracket with these). */
START_TEST(test_mask_compress)
{
    const drpo_v4d v = {10.0, 11.0, 12.0, 13.0};
    for (unsigned mask = 0; mask < 16; mask++) {
        drpo_v4i m;
        for (int l = 0; l < 4; l++)
            m[l] = mask >> l & 1 ? -1 : 0;
        ck_assert_uint_eq(drpo__v4_bits(m), mask);
        drpo_v4d c = drpo__v4_compress(v, mask);
        int front = 0;
        for (int l = 0; l < 4; l++)
            if (mask >> l & 1) {
                ck_assert_msg(c[front] == v[l], "mask %u: lane %d holds %g, not %g", mask, front,
                              c[front], v[l]);
                front++;
            }
    }
}
END_TEST

Suite *suite_kernels(void)
{
    Suite *s = suite_create("kernels");
    TCase *tc = tcase_create("special functions");
    /* (Check's default is 4 s a test: under ASan, beside CI's valgrind runs,
     * the 400000 exponentials against libm's took longer) */
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_exp_accuracy);
    tcase_add_test(tc, test_instances_agree);
    tcase_add_test(tc, test_mask_compress);
    suite_add_tcase(s, tc);
    return s;
}

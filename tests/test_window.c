/* test_window.c - the window's pass over a uniform base (lib/sets/window.c,
 * compiled into this test to reach its instances): the AVX-512, AVX2 and
 * baseline instances count the same gaps below the bracket, keep the same
 * gaps inside it in the same order and return the same moments bit for bit,
 * on every length around the eight-lane groups and the four-lane tail; and
 * they match a plain loop (the moments within rounding of a long double
 * one). */
#include "check_util.h"
#include "suites.h"

/* the kernels' vectors are passed only between inlined functions */
#pragma GCC diagnostic ignored "-Wpsabi"
#include "../lib/sets/window.c"
#include "instances.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef fill_sums (*fill_instance)(const drpo_problem *, double, double, double);

/* by moments: 0, 1, 2 */
static const fill_instance fill_sets[3][3] = {
    TU_INSTANCES(fill_u0), TU_INSTANCES(fill_u1), TU_INSTANCES(fill_u2)};

static double count_lanes(drpo_v4i v) { return (double)(v[0] + v[1] + v[2] + v[3]); }

START_TEST(test_fill_uniform_instances_agree)
{
    static const size_t lengths[] = {1,   3,   4,   5,   7,   8,    9,    12,   13,   15,  16,
                                     17,  255, 256, 257, 260, 263,  264,  1000, 4099, 4100, 4094};
    const size_t cap = 4100;
    double *x = malloc(cap * sizeof *x), *ref_kept = malloc(cap * sizeof *ref_kept);
    drpo_pair *pairs[3];
    for (int i = 0; i < 3; i++)
        pairs[i] = malloc(cap * sizeof(drpo_pair));
    ck_assert(x && ref_kept && pairs[0] && pairs[1] && pairs[2]);
    tu_rng rng;
    tu_rng_seed(&rng, 5150);
    for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
        size_t m = lengths[li];
        double top = -INFINITY;
        for (size_t j = 0; j < m; j++) { /* ties on odd lengths: gaps on the bracket's ends */
            x[j] = m % 2 ? (double)tu_below(&rng, 20) / 20.0 : tu_unif(&rng);
            top = x[j] > top ? x[j] : top;
        }
        /* brackets inside, one from the start, one of everything */
        const double brackets[4][2] = {
            {0.25, 0.6}, {0.7, 0.75}, {-INFINITY, 0.3}, {-INFINITY, INFINITY}};
        for (int bi = 0; bi < 4; bi++)
            for (int moments = 0; moments < 3; moments++) {
                double lo = brackets[bi][0], hi = brackets[bi][1], centre = 0.375;
                drpo_problem pb = {.m = m, .x = x, .top = top, .down = 1.0, .uniform = 1,
                                   .pu = 1.0 / (double)m};
                /* the loop */
                double below = 0.0;
                long double s1 = 0.0L, s2 = 0.0L;
                size_t kept = 0;
                for (size_t j = 0; j < m; j++) {
                    double d = top - x[j], xc = moments >= 2 ? d - centre : d;
                    if (d < lo) {
                        below++;
                        s1 += xc;
                        s2 += (long double)xc * xc;
                    } else if (d < hi) {
                        ref_kept[kept++] = d;
                    }
                }
                fill_sums got[3];
                for (int i = 0; i < 3; i++) {
                    if (!fill_sets[moments][i] || !tu_instance_runs(i))
                        continue;
                    pb.pairs = pairs[i];
                    got[i] = fill_sets[moments][i](&pb, lo, hi, centre);
                    double g1 = drpo__v4_hsum(got[i].c.s1), g2 = drpo__v4_hsum(got[i].c.s2);
                    ck_assert_msg(count_lanes(got[i].c.below) == below && got[i].k == kept &&
                                      !memcmp(pairs[i], ref_kept, kept * sizeof(double)),
                                  "instance %d, m = %zu, bracket %d: %g below, %zu kept, not "
                                  "%g, %zu",
                                  i, m, bi, count_lanes(got[i].c.below), got[i].k, below, kept);
                    ck_assert_msg(moments < 1 || fabsl(g1 - s1) <= 1e-13L * (fabsl(s1) + 1.0L),
                                  "instance %d, m = %zu: first moment %.17g, not %.17Lg", i, m,
                                  g1, s1);
                    ck_assert_msg(moments < 2 || fabsl(g2 - s2) <= 1e-13L * (s2 + 1.0L),
                                  "instance %d, m = %zu: second moment %.17g, not %.17Lg", i, m,
                                  g2, s2);
                    ck_assert_msg(i == 0 || (!memcmp(&got[i].c.s1, &got[0].c.s1,
                                                     sizeof got[i].c.s1) &&
                                             !memcmp(&got[i].c.s2, &got[0].c.s2,
                                                     sizeof got[i].c.s2) &&
                                             !memcmp(got[i].mass_s, got[0].mass_s,
                                                     sizeof got[i].mass_s)),
                                  "instance %d, m = %zu, moments %d: not the baseline's bits", i,
                                  m, moments);
                }
            }
    }
    free(x);
    free(ref_kept);
    for (int i = 0; i < 3; i++)
        free(pairs[i]);
}
END_TEST

Suite *suite_window(void)
{
    Suite *s = suite_create("window");
    TCase *tc = tcase_create("fill");
    tcase_add_test(tc, test_fill_uniform_instances_agree);
    suite_add_tcase(s, tc);
    return s;
}

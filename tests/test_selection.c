/* test_selection.c - the solvers' ordered scans by selection
 * (drpo__pairs_scan, lib/sets/common.c, compiled into this test: its
 * symbols are hidden in the library) against a sort and a linear scan. */
#include "check_util.h"
#include "suites.h"

#include "../lib/sets/common.c"

#include <stdlib.h>

/* The chi-square-like stop rule: the running mass before a group, times its
 * gap, minus the running first moment, reaches a level (monotone in an
 * ascending scan). */
static int excess_reached(const drpo_scan_sums *before, double gap, const drpo_scan_sums *group,
                          const void *ctx)
{
    (void)group;
    return drpo__ksum_value(&before->mass) * gap - before->s1 >= *(const double *)ctx;
}

/* The reference: sort, then walk the groups of equal gaps in order. */
static int reference(const drpo_pair *in, size_t n, double start, int descending,
                     drpo_scan_stop stop, const void *ctx, double *gap, double *mass_before)
{
    drpo_pair *a = malloc(n * sizeof *a + 1);
    memcpy(a, in, n * sizeof *a);
    drpo_scan_sums s = {{start, 0.0}, 0.0, 0.0};
    int found = scan_sorted(a, n, &s, descending, stop, ctx, gap);
    *mass_before = drpo__ksum_value(&s.mass);
    free(a);
    return found;
}

/* Gap layouts that stress three-way partitions: random with many ties,
 * sorted, reversed, all equal, organ pipe. */
static double layout(int kind, size_t i, size_t n, tu_rng *r)
{
    switch (kind) {
    case 0: return (double)tu_below(r, 17) / 8.0;
    case 1: return (double)i / (double)n;
    case 2: return (double)(n - i) / (double)n;
    case 3: return 0.5;
    default: return (double)(i < n / 2 ? i : n - i) / (double)n;
    }
}

START_TEST(test_scan_matches_sorted_scan)
{
    tu_rng r;
    tu_rng_seed(&r, 108);
    const size_t sizes[] = {1, 2, 3, 7, 64, 1000, 5003};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        size_t n = sizes[si];
        drpo_pair *a = malloc(n * sizeof *a), *work = malloc(n * sizeof *work);
        for (int kind = 0; kind < 5; kind++) {
            double total = 0.0;
            for (size_t i = 0; i < n; i++) {
                a[i].d = layout(kind, i, n, &r);
                a[i].p = (double)(1 + tu_below(&r, 100));
                total += a[i].p;
            }
            for (size_t i = 0; i < n; i++)
                a[i].p /= total;
            for (int t = 0; t <= 10; t++) {
                for (int desc = 0; desc <= 1; desc++) {
                    double target = 0.1 * t + 0.0123, g1 = -1.0, g2 = -1.0, m2; /* (off the sums of masses: no tie with rounding) */
                    memcpy(work, a, n * sizeof *a);
                    int f1 = drpo__pairs_crossing(work, n, 0.0, target, desc, &g1);
                    int f2 = reference(a, n, 0.0, desc, mass_reached, &target, &g2, &m2);
                    ck_assert_msg(f1 == f2 && (!f1 || g1 == g2),
                                  "mass %g, n %zu, layout %d, %s: found %d at %g, sorted scan %d "
                                  "at %g",
                                  target, n, kind, desc ? "descending" : "ascending", f1, g1, f2,
                                  g2);
                    /* the moments rule (monotone ascending only), and the sums before
                     * the stop */
                    if (desc)
                        continue;
                    double level = 0.02 * t;
                    drpo_scan_sums s = {{0.0, 0.0}, 0.0, 0.0};
                    memcpy(work, a, n * sizeof *a);
                    f1 = drpo__pairs_scan(work, n, &s, desc, excess_reached, &level, &g1);
                    f2 = reference(a, n, 0.0, desc, excess_reached, &level, &g2, &m2);
                    ck_assert_msg(f1 == f2 && (!f1 || g1 == g2), "excess %g, n %zu: %d at %g vs %d at %g",
                                  level, n, f1, g1, f2, g2);
                    ck_assert_msg(fabs(drpo__ksum_value(&s.mass) - m2) <= 1e-14,
                                  "mass before the stop %.17g vs %.17g (n %zu, layout %d, %s, "
                                  "level %g, found %d)",
                                  drpo__ksum_value(&s.mass), m2, n, kind,
                                  desc ? "descending" : "ascending", level, f1);
                }
            }
        }
        free(a);
        free(work);
    }
}
END_TEST

Suite *suite_selection(void)
{
    Suite *s = suite_create("selection");
    TCase *tc = tcase_create("scans");
    tcase_add_test(tc, test_scan_matches_sorted_scan);
    suite_add_tcase(s, tc);
    return s;
}

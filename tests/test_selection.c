/* test_selection.c - the solvers' ordered scans by selection
 * (drpo__pairs_scan, lib/sets/common.c) and their ranks (lib/sets/rank.c),
 * compiled into this test (their symbols are hidden in the library),
 * against a sort and a linear scan; the rank's partition on every
 * instance. */
#include "check_util.h"
#include "suites.h"

#include "../lib/sets/common.c"
/* the kernels' vectors are passed only between inlined functions */
#pragma GCC diagnostic ignored "-Wpsabi"
#include "../lib/sets/rank.c"

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

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The reference: sort, then walk the groups of equal gaps in order. */
static int reference(const drpo_pair *in, size_t n, double start, int descending,
                     drpo_scan_stop stop, const void *ctx, double *gap, double *mass_before)
{
    drpo_pair *a = malloc(n * sizeof *a + 1);
    memcpy(a, in, n * sizeof *a);
    drpo_scan_sums s = {{start, 0.0}, 0.0, 0.0, 0.0};
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
                    drpo_scan_sums s = {{0.0, 0.0}, 0.0, 0.0, 0.0};
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

/* The crossing of equal masses by rank (drpo__rank_crossing) against its
 * definition on a sort: the gap of the first unit, in scan order, at which
 * (start + its rank) pu reaches the target, else the last; the masses before
 * it and at it.  Targets on the exact boundaries of the counts too, and an
 * ulp below them, with ties (layouts 0 and 3). */
START_TEST(test_rank_crossing_matches_ranks)
{
    tu_rng r;
    tu_rng_seed(&r, 110);
    const size_t sizes[] = {1, 2, 5, 64, 1000, 5003};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        size_t n = sizes[si];
        double *x = malloc(n * sizeof *x), *sorted = malloc(n * sizeof *sorted),
               *buf = malloc(2 * n * sizeof *buf);
        for (int kind = 0; kind < 5; kind++) {
            for (int trial = 0; trial < 12; trial++) {
                size_t start = trial % 3 == 0 ? 0 : tu_below(&r, 3 * n);
                size_t units = start + n + tu_below(&r, 2 * n + 1); /* window, before and after */
                double pu = 1.0 / (double)units;
                for (size_t i = 0; i < n; i++)
                    x[i] = layout(kind, i, n, &r);
                memcpy(sorted, x, n * sizeof *x);
                qsort(sorted, n, sizeof *sorted, cmp_double);
                /* on a count boundary, just off one, or random */
                size_t k = tu_below(&r, n + 2);
                double target = trial % 4 == 3 ? tu_unif(&r)
                                : trial % 4 == 2 ? nextafter((double)(start + k) * pu, 0.0)
                                                 : (double)(start + k) * pu;
                for (int desc = 0; desc <= 1; desc++) {
                    size_t rank = 1; /* the first count (1-based) that reaches it */
                    while (rank <= n && (double)(start + rank) * pu < target)
                        rank++;
                    int expect = rank <= n;
                    double want = sorted[desc ? (expect ? n - rank : 0) : (expect ? rank - 1 : n - 1)];
                    size_t before = 0, at = 0;
                    for (size_t i = 0; i < n; i++) {
                        before += desc ? sorted[i] > want : sorted[i] < want;
                        at += sorted[i] == want;
                    }
                    drpo_crossing c = drpo__rank_crossing(x, n, 0.0, -1.0, (double)start, pu,
                                                          target, desc, buf, buf + n);
                    ck_assert_msg(c.reached == expect && c.gap == want &&
                                      c.before == (double)(start + before) * pu &&
                                      c.at == (double)at * pu,
                                  "n %zu layout %d start %zu target %.17g %s: reached %d at %g "
                                  "(before %g, at %g), expected %d at %g (%zu, %zu)",
                                  n, kind, start, target, desc ? "descending" : "ascending",
                                  c.reached, c.gap, c.before, c.at, expect, want, start + before,
                                  at);
                }
            }
        }
        free(x);
        free(sorted);
        free(buf);
    }
}
END_TEST

/* rank_select (lib/sets/rank.c) against a sort, at every rank of
 * small problems and at scattered ranks of large ones, on the layouts with
 * ties, through the problem's gaps top - x down (losses and scale as the
 * objective makes them); and count_reaching against a linear search. */
START_TEST(test_rank_select_matches_sort)
{
    tu_rng r;
    tu_rng_seed(&r, 111);
    const size_t sizes[] = {1, 2, 7, 33, 100, 1000, 4096};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        size_t n = sizes[si];
        double *x = malloc(n * sizeof *x), *gaps = malloc(n * sizeof *gaps),
               *scratch = malloc(n * sizeof *scratch);
        drpo_pair *pairs = malloc(n * sizeof *pairs);
        for (int kind = 0; kind < 6; kind++) {
            for (size_t i = 0; i < n; i++) /* kind 5: every gap distinct, random */
                x[i] = kind == 5 ? tu_unif(&r) : layout(kind, i, n, &r);
            double top = -INFINITY;
            for (size_t i = 0; i < n; i++)
                top = fmax(top, x[i]);
            drpo_problem pb = {.m = n, .x = x, .top = top * 0.25, .down = 0.25, .uniform = 1,
                               .pu = 1.0 / (double)n, .pairs = pairs, .scratch = scratch};
            for (size_t i = 0; i < n; i++)
                gaps[i] = pb.top - x[i] * pb.down;
            qsort(gaps, n, sizeof *gaps, cmp_double);
            for (size_t t = 0; t < (n <= 100 ? n : 40); t++) {
                size_t k = n <= 100 ? t : tu_below(&r, n);
                size_t below = 0, at = 0, want_below = 0, want_at = 0;
                double g = rank_select(pb.x, pb.m, pb.top, pb.down, k, pb.scratch, (double *)pb.pairs,
                                       &below, &at);
                for (size_t i = 0; i < n; i++) {
                    want_below += gaps[i] < gaps[k];
                    want_at += gaps[i] == gaps[k];
                }
                ck_assert_msg(g == gaps[k] && below == want_below && at == want_at,
                              "n %zu layout %d rank %zu: %g (%zu below, %zu at), sorted %g "
                              "(%zu, %zu)",
                              n, kind, k, g, below, at, gaps[k], want_below, want_at);
            }
        }
        free(x);
        free(gaps);
        free(scratch);
        free(pairs);
    }
    /* the least count reaching a target, rounding included */
    for (int t = 0; t < 2000; t++) {
        size_t units = 1 + tu_below(&r, 5000), start = tu_below(&r, units);
        double pu = 1.0 / (double)units, target = t % 2 ? tu_unif(&r)
                                                        : (double)(start + tu_below(&r, units)) * pu;
        size_t want = 1;
        while ((double)(start + want) * pu < target)
            want++;
        ck_assert_uint_eq(count_reaching((double)start, pu, target), want);
    }
}
END_TEST

typedef split3 (*split3_instance)(const double *, size_t, double, double, double, double *);

/* The rank's partition: on every instance the same parts, in the same
 * order (the baseline's bits), and each part on its side of the pivot;
 * lengths around the vector loop's end (it stops eight short). */
START_TEST(test_split3_instances)
{
    enum { INSTANCES = 3, CAP = 600 };
#if defined(DRPO__HAVE_AVX512_CLONE)
    split3_instance inst[INSTANCES] = {split3_pass_base,
                                       drpo__cpu_avx2() ? split3_pass_avx2 : NULL,
                                       drpo__cpu_avx512() ? split3_pass_avx512 : NULL};
#elif defined(DRPO__HAVE_AVX2_CLONE)
    split3_instance inst[INSTANCES] = {split3_pass_base,
                                       drpo__cpu_avx2() ? split3_pass_avx2 : NULL, NULL};
#else
    split3_instance inst[INSTANCES] = {split3_pass, NULL, NULL};
#endif
    static double x[CAP], dst[INSTANCES][CAP];
    tu_rng r;
    tu_rng_seed(&r, 112);
    const size_t lengths[] = {0, 1, 4, 7, 8, 9, 12, 15, 16, 17, 100, 513, CAP};
    for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
        size_t n = lengths[li];
        for (int kind = 0; kind < 5; kind++) {
            for (size_t i = 0; i < n; i++)
                x[i] = layout(kind, i, n, &r);
            double pivot = n ? 0.5 * 0.25 - x[tu_below(&r, n)] * -0.5 : 0.0;
            split3 got[INSTANCES];
            for (int k = 0; k < INSTANCES; k++) {
                if (!inst[k])
                    continue;
                got[k] = inst[k](x, n, 0.125, -0.5, pivot, dst[k]);
                size_t lo = got[k].below, hi = got[k].above, eq = 0;
                for (size_t i = 0; i < n; i++)
                    eq += 0.125 - x[i] * -0.5 == pivot;
                ck_assert_msg(got[k].equal == eq && lo + hi + eq == n,
                              "instance %d, n %zu: %zu below, %zu equal, %zu above", k, n, lo,
                              got[k].equal, hi);
                for (size_t i = 0; i < lo; i++)
                    ck_assert(dst[k][i] < pivot);
                for (size_t i = n - hi; i < n; i++)
                    ck_assert(dst[k][i] > pivot);
                ck_assert_msg(got[k].below == got[0].below && got[k].above == got[0].above &&
                                  !memcmp(dst[k], dst[0], lo * sizeof(double)) &&
                                  !memcmp(dst[k] + n - hi, dst[0] + n - hi, hi * sizeof(double)),
                              "instance %d, n %zu, layout %d: not the baseline's parts", k, n,
                              kind);
            }
        }
    }
}
END_TEST

/* Masses c/N (c = 1..3 pairs a unit, N the pairs) whose running sum lands
 * on the target exactly at a group boundary: the crossing must not depend
 * on the order the units come in (a data-parallel merge orders them by
 * rank), though the rounded sums of c/N are then decided by their last
 * bits.  Sums plain within blocks crossed at either group, by order. */
START_TEST(test_crossing_ignores_order_at_exact_ties)
{
    enum { UMAX = 300 };
    tu_rng r;
    tu_rng_seed(&r, 109);
    drpo_pair a[UMAX], work[UMAX];
    /* 40 units: partitions pair by pair; 300: in blocks from both ends */
    for (int trial = 0; trial < 200; trial++) {
        size_t U = trial % 2 ? UMAX : 40;
        size_t c[UMAX], pairs = 0;
        for (size_t i = 0; i < U; i++) {
            c[i] = 1 + tu_below(&r, 3);
            pairs += c[i];
        }
        for (size_t i = 0; i < U; i++)
            a[i] = (drpo_pair){(double)i, (double)c[i] / (double)pairs};
        /* a target that the ascending running sum reaches exactly, in
         * exact arithmetic, at the end of some group */
        size_t cut = 1 + tu_below(&r, U - 2), below = 0;
        for (size_t i = 0; i <= cut; i++)
            below += c[i];
        double target = (double)below / (double)pairs, first = -1.0;
        for (int order = 0; order < 30; order++) {
            memcpy(work, a, U * sizeof *a);
            for (size_t i = U - 1; i > 0; i--) { /* a random order */
                size_t j = tu_below(&r, i + 1);
                drpo_pair t = work[i];
                work[i] = work[j];
                work[j] = t;
            }
            double g = -1.0;
            ck_assert(drpo__pairs_crossing(work, U, 0.0, target, 0, &g));
            if (order == 0)
                first = g;
            ck_assert_msg(g == first, "trial %d: target %.17g crossed at %g, first at %g", trial,
                          target, g, first);
        }
    }
}
END_TEST

Suite *suite_selection(void)
{
    Suite *s = suite_create("selection");
    TCase *tc = tcase_create("scans");
    tcase_add_test(tc, test_scan_matches_sorted_scan);
    tcase_add_test(tc, test_crossing_ignores_order_at_exact_ties);
    tcase_add_test(tc, test_rank_crossing_matches_ranks);
    tcase_add_test(tc, test_rank_select_matches_sort);
    tcase_add_test(tc, test_split3_instances);
    suite_add_tcase(s, tc);
    return s;
}

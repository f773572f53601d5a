/* test_base_scan.c - the scan of a caller's base (lib/base.c, compiled into
 * this test to reach its instances): on AVX-512, AVX2 and the baseline it
 * returns the same bits, and it matches a plain loop: the range of the
 * losses on the support, the mass and count of the units tied at the
 * largest, the base's sum and first moment, and the flags for entries off
 * the support, negative or not finite. */
#include "check_util.h"
#include "suites.h"

/* the kernels' vectors are passed only between inlined functions */
#pragma GCC diagnostic ignored "-Wpsabi"
#include "../lib/base.c"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef drpo_base_scan (*base_instance)(size_t, const double *, const double *);

enum { INSTANCES = 3 }; /* the baseline first: the others must give its bits */

/* Each instance's unmasked and masked scans, as drpo__scan_base runs them. */
typedef struct instance_pair {
    base_instance unmasked, masked;
} instance_pair;

static drpo_base_scan scan_with(instance_pair f, size_t n, const double *loss, const double *b)
{
    drpo_base_scan r = f.unmasked(n, loss, b);
    return r.off_support ? f.masked(n, loss, b) : r;
}

/* Two scans' results bit for bit (field by field: the struct has padding). */
static int same_scan(const drpo_base_scan *a, const drpo_base_scan *b)
{
    const double da[] = {a->l_max, a->l_min, a->p_top, a->sum, a->moment};
    const double db[] = {b->l_max, b->l_min, b->p_top, b->sum, b->moment};
    return !memcmp(da, db, sizeof da) && a->tied == b->tied && a->ok == b->ok &&
           a->off_support == b->off_support;
}

/* The scan by a plain loop, its sums in long double. */
typedef struct reference {
    double l_max, l_min;
    long double p_top, sum, moment;
    size_t tied;
    int off_support;
} reference;

static reference scan_reference(size_t n, const double *loss, const double *b)
{
    reference r = {-INFINITY, INFINITY, 0.0L, 0.0L, 0.0L, 0, 0};
    for (size_t j = 0; j < n; j++) {
        r.sum += b[j];
        r.moment += (long double)b[j] * ((long double)loss[j] - loss[0]);
        if (b[j] == 0.0) {
            r.off_support = 1;
            continue;
        }
        r.l_max = fmax(r.l_max, loss[j]);
        r.l_min = fmin(r.l_min, loss[j]);
    }
    for (size_t j = 0; j < n; j++)
        if (b[j] != 0.0 && loss[j] == r.l_max) {
            r.p_top += b[j];
            r.tied++;
        }
    return r;
}

/* Losses drawn from `levels` values (ties everywhere, at the top too) or,
 * with levels 0, continuous; a base summing to 1 with, about one unit in
 * `zeros` (none if 0), units off the support (the largest loss on them). */
static void base_case(tu_rng *r, size_t n, size_t levels, size_t zeros, double *loss, double *b)
{
    double total = 0.0;
    for (size_t j = 0; j < n; j++) {
        loss[j] = levels ? (double)tu_below(r, levels) / (double)levels : tu_unif(r);
        b[j] = 0.05 + tu_unif(r);
        total += b[j];
    }
    for (size_t j = 0; j < n; j++)
        b[j] /= total;
    for (size_t j = 1; zeros && j < n; j++) /* (unit 0 stays: some unit must) */
        if (tu_below(r, zeros) == 0) {
            b[j] = 0.0;
            loss[j] = 5.0; /* off the support: must not count as the largest */
        }
}

static void close_to(const char *what, size_t n, int i, double got, long double want)
{
    long double tol = 1e-14L * (fabsl(want) + 1e-300L) + 1e-300L;
    ck_assert_msg(fabsl((long double)got - want) <= tol, "instance %d, n = %zu: %s %.17g, not %.17Lg",
                  i, n, what, got, want);
}

START_TEST(test_base_scan_instances)
{
    static const size_t lengths[] = {1,   2,   7,   8,   9,   15,   16,   17,   255,  256,
                                     257, 263, 264, 511, 513, 2000, 2048, 2049, 9000, 20003};
    const size_t cap = 20003;
    double *loss = malloc(cap * sizeof *loss), *b = malloc(cap * sizeof *b);
    ck_assert(loss && b);
#if defined(DRPO__HAVE_AVX512_CLONE)
    instance_pair inst[INSTANCES] = {
        {base_scan_base, base_scan_masked_base},
        {base_scan_avx2, base_scan_masked_avx2},
        {base_scan_avx512, base_scan_masked_avx512},
    };
    int runs[INSTANCES] = {1, drpo__cpu_avx2(), drpo__cpu_avx512()};
#elif defined(DRPO__HAVE_AVX2_CLONE)
    instance_pair inst[INSTANCES] = {
        {base_scan_base, base_scan_masked_base},
        {base_scan_avx2, base_scan_masked_avx2},
        {NULL, NULL},
    };
    int runs[INSTANCES] = {1, drpo__cpu_avx2(), 0};
#else
    instance_pair inst[INSTANCES] = {{base_scan, base_scan_masked}, {NULL, NULL}, {NULL, NULL}};
    int runs[INSTANCES] = {1, 0, 0};
#endif
    tu_rng r;
    tu_rng_seed(&r, 31337);
    static const size_t level_counts[] = {0, 3, 1000}, zero_rates[] = {0, 7, 3000};
    for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++)
        for (size_t lc = 0; lc < 3; lc++)
            for (size_t zc = 0; zc < 3; zc++) {
                size_t n = lengths[li];
                base_case(&r, n, level_counts[lc], zero_rates[zc], loss, b);
                reference ref = scan_reference(n, loss, b);
                drpo_base_scan got[INSTANCES];
                for (int i = 0; i < INSTANCES; i++) {
                    if (!runs[i])
                        continue;
                    got[i] = scan_with(inst[i], n, loss, b);
                    ck_assert_msg(got[i].ok && got[i].l_max == ref.l_max &&
                                      got[i].l_min == ref.l_min && got[i].tied == ref.tied &&
                                      got[i].off_support == ref.off_support,
                                  "instance %d, n = %zu, levels %zu, zeros %zu: max %g/%g, "
                                  "min %g/%g, tied %zu/%zu, off %d/%d, ok %d",
                                  i, n, level_counts[lc], zero_rates[zc], got[i].l_max,
                                  ref.l_max, got[i].l_min, ref.l_min, got[i].tied, ref.tied,
                                  got[i].off_support, ref.off_support, got[i].ok);
                    close_to("mass at the largest loss", n, i, got[i].p_top, ref.p_top);
                    close_to("sum", n, i, got[i].sum, ref.sum);
                    /* the moment's terms cancel: its tolerance is the sum of |terms| */
                    long double scale = 0.0L;
                    for (size_t j = 0; j < n; j++)
                        scale += fabsl((long double)b[j] * ((long double)loss[j] - loss[0]));
                    ck_assert_msg(fabsl((long double)got[i].moment - ref.moment) <=
                                      1e-14L * scale + 1e-300L,
                                  "instance %d, n = %zu: moment %.17g, not %.17Lg", i, n,
                                  got[i].moment, ref.moment);
                    ck_assert_msg(same_scan(&got[i], &got[0]),
                                  "instance %d, n = %zu, levels %zu, zeros %zu: not the "
                                  "baseline's bits (sum %a vs %a, moment %a vs %a)",
                                  i, n, level_counts[lc], zero_rates[zc], got[i].sum, got[0].sum,
                                  got[i].moment, got[0].moment);
                }
            }
    /* a negative entry, a non-finite loss or base entry anywhere: not ok */
    const size_t n = 300;
    for (size_t at = 0; at < n; at += 37)
        for (int kind = 0; kind < 4; kind++) {
            base_case(&r, n, 0, 0, loss, b);
            if (kind == 0)
                b[at] = -b[at];
            else if (kind == 1)
                loss[at] = at % 2 ? NAN : -INFINITY;
            else if (kind == 2)
                b[at] = INFINITY;
            else
                b[at] = NAN;
            for (int i = 0; i < INSTANCES; i++)
                if (runs[i])
                    ck_assert_msg(!scan_with(inst[i], n, loss, b).ok,
                                  "instance %d: bad entry %d at %zu passed", i, kind, at);
        }
    free(loss);
    free(b);
}
END_TEST

Suite *suite_base_scan(void)
{
    Suite *s = suite_create("base_scan");
    TCase *tc = tcase_create("instances");
    tcase_add_test(tc, test_base_scan_instances);
    suite_add_tcase(s, tc);
    return s;
}

/* test_scan.c - the input scan (lib/scan.c, compiled into this test to
 * reach its instances): the scan, with and without a window, on AVX-512, AVX2 and the
 * baseline return the same bits, and both match a plain loop: range, ties at the
 * maximum, the losses kept in (x0, x1) in order and those counted from x1
 * up. */
#include "check_util.h"
#include "suites.h"

/* the kernels' vectors are passed only between inlined functions */
#pragma GCC diagnostic ignored "-Wpsabi"
#include "../lib/scan.c"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef drpo_loss_scan (*scan_instance)(size_t, const double *, double, double, double *);
typedef drpo_loss_scan (*plain_instance)(size_t, const double *);

/* Losses drawn from `levels` values (ties everywhere, at the top too) or,
 * with levels 0, continuous; the first unit sometimes the maximum. */
static void scan_case(tu_rng *r, size_t n, size_t levels, double *x)
{
    for (size_t j = 0; j < n; j++)
        x[j] = levels ? (double)tu_below(r, levels) / (double)levels : tu_unif(r);
    if (n && tu_below(r, 4) == 0)
        x[0] = 2.0;
}

/* Two scans' results bit for bit (field by field: the struct has padding). */
static int same_scan(const drpo_loss_scan *a, const drpo_loss_scan *b)
{
    const double da[] = {a->max, a->min, a->at_max, a->shifted_sum, a->over};
    const double db[] = {b->max, b->min, b->at_max, b->shifted_sum, b->over};
    return !memcmp(da, db, sizeof da) && a->finite == b->finite && a->kept == b->kept;
}

/* The scan by a plain loop. */
static void scan_reference(size_t n, const double *x, double x0, double x1, drpo_loss_scan *r,
                           double *kept)
{
    r->max = r->min = x[0];
    r->at_max = r->over = 0.0;
    r->kept = 0;
    for (size_t j = 0; j < n; j++) {
        r->max = fmax(r->max, x[j]);
        r->min = fmin(r->min, x[j]);
    }
    for (size_t j = 0; j < n; j++) {
        r->at_max += x[j] == r->max;
        r->over += x[j] >= x1;
        if (x[j] > x0 && x[j] < x1)
            kept[r->kept++] = x[j];
    }
}

START_TEST(test_scan_window_instances)
{
    static const size_t lengths[] = {1,   2,   7,   8,   9,   15,  16,   17,   255,
                                     256, 257, 263, 264, 511, 513, 2000, 9000, 20000};
    const size_t cap = 20000;
    enum { INSTANCES = 3 }; /* the baseline first: the others must give its bits */
    double *x = malloc(cap * sizeof *x), *kept[INSTANCES + 1]; /* and the reference's */
    for (int i = 0; i <= INSTANCES; i++)
        kept[i] = malloc(cap * sizeof(double));
    ck_assert(x && kept[0] && kept[1] && kept[2] && kept[3]);
#if defined(DRPO__HAVE_AVX512_CLONE)
    scan_instance inst[INSTANCES] = {scan_window_dispatch_base,
                                     drpo__cpu_avx2() ? scan_window_dispatch_avx2 : NULL,
                                     drpo__cpu_avx512() ? scan_window_dispatch_avx512 : NULL};
    plain_instance plain[INSTANCES] = {scan_dispatch_base, scan_dispatch_avx2,
                                       scan_dispatch_avx512};
#elif defined(DRPO__HAVE_AVX2_CLONE)
    scan_instance inst[INSTANCES] = {scan_window_dispatch_base,
                                     drpo__cpu_avx2() ? scan_window_dispatch_avx2 : NULL, NULL};
    plain_instance plain[INSTANCES] = {scan_dispatch_base, scan_dispatch_avx2, NULL};
#else
    scan_instance inst[INSTANCES] = {scan_window_dispatch, NULL, NULL};
    plain_instance plain[INSTANCES] = {scan_dispatch, NULL, NULL};
#endif
    tu_rng r;
    tu_rng_seed(&r, 2718);
    static const size_t level_counts[] = {0, 3, 1000};
    for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++)
        for (size_t lc = 0; lc < 3; lc++) {
            size_t n = lengths[li];
            scan_case(&r, n, level_counts[lc], x);
            /* a window inside, one on tied values, one holding everything */
            const double windows[3][2] = {{0.3, 0.45}, {1.0 / 3.0, 2.0 / 3.0}, {-1.0, 3.0}};
            for (int wi = 0; wi < 3; wi++) {
                double x0 = windows[wi][0], x1 = windows[wi][1];
                drpo_loss_scan ref, got[INSTANCES];
                scan_reference(n, x, x0, x1, &ref, kept[INSTANCES]);
                for (int i = 0; i < INSTANCES; i++) {
                    if (!inst[i])
                        continue;
                    got[i] = inst[i](n, x, x0, x1, kept[i]);
                    ck_assert_msg(got[i].finite && got[i].max == ref.max &&
                                      got[i].min == ref.min && got[i].at_max == ref.at_max &&
                                      got[i].over == ref.over && got[i].kept == ref.kept,
                                  "instance %d, n = %zu, levels %zu, window %d: max %g/%g, "
                                  "ties %g/%g, over %g/%g, kept %zu/%zu",
                                  i, n, level_counts[lc], wi, got[i].max, ref.max,
                                  got[i].at_max, ref.at_max, got[i].over, ref.over, got[i].kept,
                                  ref.kept);
                    ck_assert_msg(!memcmp(kept[i], kept[INSTANCES], ref.kept * sizeof(double)),
                                  "instance %d, n = %zu: other losses kept", i, n);
                    ck_assert_msg(same_scan(&got[i], &got[0]),
                                  "instance %d, n = %zu, levels %zu, window %d: not the "
                                  "baseline's bits (shifted sum %a vs %a)",
                                  i, n, level_counts[lc], wi, got[i].shifted_sum,
                                  got[0].shifted_sum);
                    /* the scan without a window: the same range, ties and sum */
                    drpo_loss_scan p = plain[i](n, x);
                    ck_assert_msg(p.finite && p.max == got[i].max && p.min == got[i].min &&
                                      p.at_max == got[i].at_max &&
                                      !memcmp(&p.shifted_sum, &got[i].shifted_sum,
                                              sizeof p.shifted_sum),
                                  "instance %d, n = %zu: the plain scan differs", i, n);
                }
            }
        }
    /* a NaN or an infinity anywhere: not finite, whichever instance */
    for (size_t at = 0; at < 300; at += 37) {
        scan_case(&r, 300, 0, x);
        x[at] = at % 2 ? NAN : -INFINITY;
        for (int i = 0; i < INSTANCES; i++)
            if (inst[i])
                ck_assert_msg(!inst[i](300, x, 0.2, 0.4, kept[i]).finite,
                              "instance %d: a non-finite loss at %zu passed", i, at);
    }
    free(x);
    for (int i = 0; i <= INSTANCES; i++)
        free(kept[i]);
}
END_TEST

Suite *suite_scan(void)
{
    Suite *s = suite_create("scan");
    TCase *tc = tcase_create("instances");
    tcase_add_test(tc, test_scan_window_instances);
    suite_add_tcase(s, tc);
    return s;
}

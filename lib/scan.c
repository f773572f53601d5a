/* scan.c - the pass every solve with a uniform base begins with: the losses
 * checked finite, their range, the ties at the maximum and their sum, in
 * one vectorised read (finiteness through the sum: no test per element). */
#include "internal.h"
#include "vec.h"

#include <math.h>

/* The largest lane (sign -1: the smallest). */
DRPO__INLINE double lanes_extreme(drpo_v4d m, double sign)
{
    double r = m[0];
    for (int l = 1; l < 4; l++)
        r = sign * m[l] > sign * r ? m[l] : r;
    return r;
}

/* Blocks that may hold the maximum, remembered by the scan (more of them:
 * every unit is compared once more, a rare pass: heavy ties at the top). */
#define SCAN_CANDIDATES 32

/* The units of x[from, to) equal to v, four lanes at a time (into one
 * double, each add waits on the last; at a thousand units these blocks
 * are most of the scan). */
DRPO__INLINE double count_equal(const double *x, size_t from, size_t to, double v)
{
    const drpo_v4d vv = drpo__v4_set1(v);
    drpo_v4i lanes = {0, 0, 0, 0}; /* (a true lane is -1) */
    size_t i = from;
    for (; i + 4 <= to; i += 4)
        lanes -= drpo__v4_load(x + i) == vv;
    int64_t c = lanes[0] + lanes[1] + lanes[2] + lanes[3];
    for (; i < to; i++)
        c += x[i] == v;
    return (double)c;
}

/* The running extremes and sums of one chain of groups of eight. */
typedef struct scan_chain {
    drpo_v4d mx, mn, block;
    drpo_v4i rise; /* lanes whose max rose (or was met) in this block */
} scan_chain;

/* Eight units x[i, i + 8) into chain c; `window`: also counted from x1 up
 * and kept in (x0, x1) at kept[*k...]. */
DRPO__INLINE void scan_group(const double *x, size_t i, drpo_v4d origin, scan_chain *c,
                             int window, drpo_v4d lo, drpo_v4d hi, drpo_v4i *over, double *kept,
                             size_t *k)
{
    drpo_v4d v = drpo__v4_load(x + i), w = drpo__v4_load(x + i + 4);
    drpo_v4i w_gt = w > v;
    drpo_v4d big = drpo__v4_select(w_gt, w, v), small = drpo__v4_select(w_gt, v, w);
    drpo_v4i ge = big >= c->mx;
    c->mx = drpo__v4_select(ge, big, c->mx);
    c->mn = drpo__v4_select(small < c->mn, small, c->mn);
    c->rise |= ge;
    c->block += (v - origin) + (w - origin);
    if (window) {
        drpo_v4i av = v >= hi, aw = w >= hi;
        *over += av + aw;
        unsigned bv = drpo__v4_bits(~av & (v > lo)), bw = drpo__v4_bits(~aw & (w > lo));
        drpo__v4_store(kept + *k, drpo__v4_compress(v, bv));
        *k += (size_t)__builtin_popcount(bv);
        drpo__v4_store(kept + *k, drpo__v4_compress(w, bw));
        *k += (size_t)__builtin_popcount(bw);
    }
}

/* `window` (a constant after inlining): the losses in (x0, x1) are also
 * kept (copied in order to kept[0, r.kept)), those from x1 up counted
 * (r.over): the first pass of a threshold solve, taken in loss space
 * (drpo_loss_window). */
DRPO__INLINE drpo_loss_scan scan_body(size_t n, const double *x, double x0, double x1,
                                      double *kept, int window)
{
    const double first = x[0];
    const drpo_v4d zero = drpo__v4_set1(0.0), origin = drpo__v4_set1(first);
    /* two chains of running max, min and sum, each meeting two groups of
     * four already compared with each other: a compare and a blend, or an
     * add, per group is the loop's longest dependency, and with one chain
     * the scan waited on it */
    scan_chain c[2];
    for (int h = 0; h < 2; h++)
        c[h] = (scan_chain){origin, origin, zero, {0, 0, 0, 0}};
    drpo_v4d ks = zero, kc = zero;
    const drpo_v4d lo = drpo__v4_set1(x0), hi = drpo__v4_set1(x1);
    drpo_v4i over = {0, 0, 0, 0}; /* a true lane is -1 */
    /* the ties at the maximum, without a count per unit: a unit equal to the
     * final maximum is at or above its chain's lane's running max when it is
     * read, so its block is remembered, and no later block raises the
     * maximum past it; the blocks remembered are counted again at the end */
    size_t cand[SCAN_CANDIDATES] = {0}, n_cand = 0, i = 0, k = 0, vec_end = n - n % 8;
    int spilled = 0;
    double best = first, over_tail = 0.0;
    while (i + 8 <= n) { /* blocks of up to 256 plain sums, compensated across blocks */
        size_t start = i, end = i + 256 <= n ? i + 256 : vec_end;
        for (int h = 0; h < 2; h++) {
            c[h].block = zero;
            c[h].rise = (drpo_v4i){0, 0, 0, 0};
        }
        for (; i + 16 <= end; i += 16) {
            scan_group(x, i, origin, &c[0], window, lo, hi, &over, kept, &k);
            scan_group(x, i + 8, origin, &c[1], window, lo, hi, &over, kept, &k);
        }
        if (i < end) { /* (end - i is a multiple of 8) */
            scan_group(x, i, origin, &c[0], window, lo, hi, &over, kept, &k);
            i += 8;
        }
        drpo__v4_ksum_add(&ks, &kc, c[0].block + c[1].block);
        if (drpo__v4_any(c[0].rise | c[1].rise)) {
            drpo_v4d mx = drpo__v4_select(c[1].mx > c[0].mx, c[1].mx, c[0].mx);
            double m = lanes_extreme(mx, 1.0);
            if (m > best) { /* the blocks before hold no unit at the new maximum */
                best = m;
                n_cand = 0;
                spilled = 0;
            }
            if (n_cand < SCAN_CANDIDATES)
                cand[n_cand++] = start;
            else
                spilled = 1;
        }
    }
    drpo_v4d mx = drpo__v4_select(c[1].mx > c[0].mx, c[1].mx, c[0].mx);
    drpo_v4d mn = drpo__v4_select(c[1].mn < c[0].mn, c[1].mn, c[0].mn);
    drpo_loss_scan r;
    r.max = lanes_extreme(mx, 1.0);
    r.min = lanes_extreme(mn, -1.0);
    int finite = 1;
    drpo_ksum sum = {drpo__v4_ksum_total(ks, kc), 0.0};
    for (; i < n; i++) { /* the last n mod 8 */
        double v = x[i];
        finite &= v - v == 0.0;
        r.max = v > r.max ? v : r.max;
        r.min = v < r.min ? v : r.min;
        drpo__ksum_add(&sum, v - first);
        if (window) {
            over_tail += v >= x1;
            if (v > x0 && v < x1)
                kept[k++] = v;
        }
    }
    if (spilled) {
        r.at_max = count_equal(x, 0, n, r.max);
    } else {
        r.at_max = count_equal(x, vec_end, n, r.max);
        for (size_t c = 0; c < n_cand; c++)
            r.at_max += count_equal(x, cand[c], cand[c] + 256 < vec_end ? cand[c] + 256 : vec_end,
                                    r.max);
    }
    r.shifted_sum = drpo__ksum_value(&sum);
    r.over = over_tail - (double)(over[0] + over[1] + over[2] + over[3]);
    r.kept = k;
    /* a NaN or an infinity anywhere makes the sum of l - l_0 NaN or infinite,
     * so the elements are only checked one by one when it is (finite losses
     * near DBL_MAX can overflow it too) */
    if (!isfinite(r.shifted_sum))
        for (size_t j = 0; j < n && finite; j++)
            finite = x[j] - x[j] == 0.0;
    r.finite = finite;
    return r;
}

DRPO__KERNEL_DISPATCH(drpo_loss_scan, scan_dispatch, (size_t n, const double *x), (n, x),
                      scan_body(n, x, 0.0, 0.0, NULL, 0))
DRPO__KERNEL_DISPATCH(drpo_loss_scan, scan_window_dispatch,
                      (size_t n, const double *x, double x0, double x1, double *kept),
                      (n, x, x0, x1, kept), scan_body(n, x, x0, x1, kept, 1))

drpo_loss_scan drpo__scan_losses(size_t n, const double *loss) { return scan_dispatch(n, loss); }

drpo_loss_scan drpo__scan_window(size_t n, const double *loss, double x0, double x1, double *kept)
{
    return scan_window_dispatch(n, loss, x0, x1, kept);
}

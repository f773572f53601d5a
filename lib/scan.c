/* scan.c - the pass every solve with a uniform base begins with: the losses
 * checked finite, their range, the ties at the maximum and their sum, in
 * one vectorised read (finiteness through the sum: no test per element). */
#include "internal.h"
#include "vec.h"

#include <math.h>

/* Running max (with its ties) and min over one vector's lanes. */
typedef struct scan_chain {
    drpo_v4d mx, mn, cnt;
} scan_chain;

DRPO__INLINE void scan_step(scan_chain *c, drpo_v4d v)
{
    drpo_v4i gt = v > c->mx;
    c->cnt = drpo__v4_select(gt, drpo__v4_set1(1.0), c->cnt + drpo__v4_ones(v == c->mx));
    c->mx = drpo__v4_select(gt, v, c->mx);
    c->mn = drpo__v4_select(v < c->mn, v, c->mn);
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
    /* two independent chains (even and odd groups of four): one compare-and-
     * select chain is latency-bound at about half the read bandwidth */
    scan_chain a = {origin, origin, zero}, b = a;
    drpo_v4d ks = zero, kc = zero;
    const drpo_v4d lo = drpo__v4_set1(x0), hi = drpo__v4_set1(x1);
    drpo_v4i over = {0, 0, 0, 0}; /* a true lane is -1 */
    size_t i = 0, k = 0;
    while (i + 8 <= n) { /* blocks of up to 256 plain sums, compensated across blocks */
        size_t end = i + 256 <= n ? i + 256 : n - n % 8;
        drpo_v4d block_a = zero, block_b = zero;
        for (; i < end; i += 8) {
            drpo_v4d v = drpo__v4_load(x + i), w = drpo__v4_load(x + i + 4);
            scan_step(&a, v);
            scan_step(&b, w);
            block_a += v - origin;
            block_b += w - origin;
            if (window) { /* counted from x1 up, kept in (x0, x1) */
                drpo_v4i av = v >= hi, aw = w >= hi;
                over += av + aw;
                unsigned bv = drpo__v4_bits(~av & (v > lo)), bw = drpo__v4_bits(~aw & (w > lo));
                drpo__v4_store(kept + k, drpo__v4_compress(v, bv));
                k += (size_t)__builtin_popcount(bv);
                drpo__v4_store(kept + k, drpo__v4_compress(w, bw));
                k += (size_t)__builtin_popcount(bw);
            }
        }
        drpo__v4_ksum_add(&ks, &kc, block_a + block_b);
    }
    /* the chains to one: the larger max keeps its ties, equal maxima add them */
    drpo_v4i b_gt = b.mx > a.mx, eq = b.mx == a.mx;
    a.cnt = drpo__v4_select(b_gt, b.cnt, a.cnt + drpo__v4_select(eq, b.cnt, zero));
    a.mx = drpo__v4_select(b_gt, b.mx, a.mx);
    a.mn = drpo__v4_select(b.mn < a.mn, b.mn, a.mn);
    drpo_v4d mx = a.mx, mn = a.mn, cnt = a.cnt;
    double lmx[4], lmn[4], lcnt[4];
    drpo__v4_store(lmx, mx);
    drpo__v4_store(lmn, mn);
    drpo__v4_store(lcnt, cnt);
    int finite = 1;
    drpo_ksum sum = {drpo__v4_ksum_total(ks, kc), 0.0};
    for (; i < n; i++) { /* the last n mod 8, in lane 0 */
        double v = x[i];
        finite &= v - v == 0.0;
        lcnt[0] = v > lmx[0] ? 1.0 : lcnt[0] + (v == lmx[0]);
        lmx[0] = v > lmx[0] ? v : lmx[0];
        lmn[0] = v < lmn[0] ? v : lmn[0];
        drpo__ksum_add(&sum, v - first);
        if (window) {
            over[0] -= v >= x1;
            if (v > x0 && v < x1)
                kept[k++] = v;
        }
    }
    drpo_loss_scan r;
    r.max = lmx[0];
    r.min = lmn[0];
    for (int k = 1; k < 4; k++) {
        r.max = lmx[k] > r.max ? lmx[k] : r.max;
        r.min = lmn[k] < r.min ? lmn[k] : r.min;
    }
    r.at_max = 0.0;
    for (int k = 0; k < 4; k++)
        r.at_max += lmx[k] == r.max ? lcnt[k] : 0.0;
    r.shifted_sum = drpo__ksum_value(&sum);
    r.over = -(double)(over[0] + over[1] + over[2] + over[3]);
    r.kept = k;
    /* a NaN or an infinity anywhere makes the sum of l - l_0 NaN or infinite,
     * so the elements are only checked one by one when it is (finite losses
     * near DBL_MAX can overflow it too) */
    if (!isfinite(r.shifted_sum))
        for (size_t k = 0; k < n && finite; k++)
            finite = x[k] - x[k] == 0.0;
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

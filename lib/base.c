/* base.c - the passes every solve over a caller's base (not uniform) begins
 * with: the losses and the base checked, the range of the losses on the
 * support and the base's sum; then the support in gap space.  The trainer
 * hands its solves such a base whenever its prompts have different numbers
 * of pairs, so these are no rarer than the uniform scan (scan.c).  Written
 * one element at a time, with the support's branch, one running sum and a
 * division each, they took about half of such a solve at 10^5 units, which
 * then ran 3 to 14 times as long as over the uniform base. */
#include "internal.h"
#include "vec.h"

#include <float.h>
#include <math.h>

/* ---- the check and the range ------------------------------------------- */

/* One chain of the scan: four lanes each of the largest loss and |loss| on
 * the support, the base's block sum and the lanes still good (a true lane
 * is -1). */
typedef struct base_chain {
    drpo_v4d l_max, mag, block;
    drpo_v4i ok;
} base_chain;

DRPO__INLINE void base_group(const double *loss, const double *base, size_t i, base_chain *c)
{
    const drpo_v4d zero = drpo__v4_set1(0.0);
    drpo_v4d l = drpo__v4_load(loss + i), b = drpo__v4_load(base + i);
    /* x - x is 0 exactly when x is finite (NaN for NaN and infinities) */
    c->ok &= ((l - l) + (b - b) == zero) & (b >= zero);
    drpo_v4i on = b != zero;
    const drpo_v4u abs_mask = {~0ull >> 1, ~0ull >> 1, ~0ull >> 1, ~0ull >> 1};
    drpo_v4d a = (drpo_v4d)((drpo_v4u)l & abs_mask); /* |l| */
    c->l_max = drpo__v4_select(on & (l > c->l_max), l, c->l_max);
    c->mag = drpo__v4_select(on & (a > c->mag), a, c->mag);
    c->block += b;
}

DRPO__INLINE drpo_base_scan base_scan_body(size_t n, const double *loss, const double *base)
{
    const drpo_v4d zero = drpo__v4_set1(0.0);
    base_chain c0 = {drpo__v4_set1(-DBL_MAX), zero, zero, {-1, -1, -1, -1}}, c1 = c0;
    drpo_v4d ks = zero, kc = zero; /* the blocks' sums, compensated */
    size_t i = 0, vec_end = n - n % 8;
    while (i < vec_end) { /* blocks of 256, two chains of four */
        size_t end = i + 256 < vec_end ? i + 256 : vec_end;
        c0.block = c1.block = zero;
        for (; i < end; i += 8) {
            base_group(loss, base, i, &c0);
            base_group(loss, base, i + 4, &c1);
        }
        drpo__v4_ksum_add(&ks, &kc, c0.block + c1.block);
    }
    drpo_base_scan r = {-DBL_MAX, 0.0, 0.0, 1};
    drpo_ksum sum = {drpo__v4_ksum_total(ks, kc), 0.0};
    for (int l = 0; l < 4; l++) {
        r.l_max = fmax(r.l_max, fmax(c0.l_max[l], c1.l_max[l]));
        r.mag = fmax(r.mag, fmax(c0.mag[l], c1.mag[l]));
        r.ok &= c0.ok[l] && c1.ok[l];
    }
    for (; i < n; i++) { /* the last n mod 8 */
        double l = loss[i], b = base[i];
        r.ok &= isfinite(l) && isfinite(b) && b >= 0.0;
        drpo__ksum_add(&sum, b);
        if (b != 0.0) {
            r.l_max = l > r.l_max ? l : r.l_max;
            r.mag = fabs(l) > r.mag ? fabs(l) : r.mag;
        }
    }
    r.sum = drpo__ksum_value(&sum);
    return r;
}

DRPO__KERNEL_DISPATCH(drpo_base_scan, base_scan,
                      (size_t n, const double *loss, const double *base), (n, loss, base),
                      base_scan_body(n, loss, base))

drpo_base_scan drpo__scan_base(size_t n, const double *loss, const double *base)
{
    return base_scan(n, loss, base);
}

/* ---- the support in gap space ------------------------------------------ */

/* Four units' share: their gaps and masses on the support appended to
 * d[*m...], p[*m...] (compressed to the front of the vectors and stored
 * whole: the arrays have room for four past *m while i + 4 <= n). */
DRPO__INLINE void support_group(const double *loss, const double *base, size_t i, drpo_v4d top,
                                drpo_v4d down, drpo_v4d sum, int scaled, double *d, double *p,
                                size_t *m, drpo_v4d *d_max, drpo_v4d *p_top, drpo_v4i *tied,
                                drpo_v4d *mean_d)
{
    const drpo_v4d zero = drpo__v4_set1(0.0);
    drpo_v4d b = drpo__v4_load(base + i);
    drpo_v4d g = top - drpo__v4_load(loss + i) * down, pi = scaled ? b / sum : b;
    drpo_v4i on = b != zero, at_top = on & (g == zero);
    *d_max = drpo__v4_select(on & (g > *d_max), g, *d_max);
    *p_top += drpo__v4_select(at_top, pi, zero);
    *tied -= at_top;
    *mean_d += drpo__v4_select(on, pi * g, zero);
    unsigned bits = drpo__v4_bits(on);
    drpo__v4_store(d + *m, drpo__v4_compress(g, bits));
    drpo__v4_store(p + *m, drpo__v4_compress(pi, bits));
    *m += (size_t)__builtin_popcount(bits);
}

DRPO__INLINE drpo_support support_body(size_t n, const double *loss, const double *base,
                                       double sum, double top, double down, double *d, double *p,
                                       int scaled)
{
    const drpo_v4d zero = drpo__v4_set1(0.0), vt = drpo__v4_set1(top);
    const drpo_v4d vd = drpo__v4_set1(down), vs = drpo__v4_set1(sum);
    drpo_v4d d_max = zero, p_top = zero, mean_d = zero, d_max1 = zero, p_top1 = zero;
    drpo_v4d mean_d1 = zero;
    drpo_v4i tied = {0, 0, 0, 0}, tied1 = tied;
    size_t i = 0, m = 0;
    for (; i + 8 <= n; i += 8) { /* two chains of sums */
        support_group(loss, base, i, vt, vd, vs, scaled, d, p, &m, &d_max, &p_top, &tied,
                      &mean_d);
        support_group(loss, base, i + 4, vt, vd, vs, scaled, d, p, &m, &d_max1, &p_top1, &tied1,
                      &mean_d1);
    }
    for (; i + 4 <= n; i += 4)
        support_group(loss, base, i, vt, vd, vs, scaled, d, p, &m, &d_max, &p_top, &tied,
                      &mean_d);
    p_top += p_top1;
    mean_d += mean_d1;
    tied += tied1;
    d_max = drpo__v4_select(d_max1 > d_max, d_max1, d_max);
    drpo_support r = {0, 0, 0.0, drpo__v4_hsum(p_top), drpo__v4_hsum(mean_d)};
    for (int l = 0; l < 4; l++) {
        r.d_max = d_max[l] > r.d_max ? d_max[l] : r.d_max;
        r.tied += (size_t)tied[l];
    }
    for (; i < n; i++) { /* the last n mod 4 */
        if (base[i] == 0.0)
            continue;
        double pi = scaled ? base[i] / sum : base[i], g = top - loss[i] * down;
        d[m] = g;
        p[m++] = pi;
        r.d_max = g > r.d_max ? g : r.d_max;
        if (g == 0.0) {
            r.p_top += pi;
            r.tied++;
        }
        r.mean_d += pi * g;
    }
    r.m = m;
    return r;
}

DRPO__KERNEL_DISPATCH(drpo_support, support_scaled,
                      (size_t n, const double *loss, const double *base, double sum, double top,
                       double down, double *d, double *p),
                      (n, loss, base, sum, top, down, d, p),
                      support_body(n, loss, base, sum, top, down, d, p, 1))
DRPO__KERNEL_DISPATCH(drpo_support, support_as_is,
                      (size_t n, const double *loss, const double *base, double sum, double top,
                       double down, double *d, double *p),
                      (n, loss, base, sum, top, down, d, p),
                      support_body(n, loss, base, sum, top, down, d, p, 0))

drpo_support drpo__base_support(size_t n, const double *loss, const double *base, double sum,
                                double top, double down, double *d, double *p)
{
    /* a base summing to 1 within rounding is taken as it is (sum 1): q = p
     * then stays bitwise the base, and no division is needed */
    return sum == 1.0 ? support_as_is(n, loss, base, sum, top, down, d, p)
                      : support_scaled(n, loss, base, sum, top, down, d, p);
}

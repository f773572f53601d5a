/* base.c - the passes every solve over a caller's base (not uniform) begins
 * with: the losses and the base checked, the range of the losses on the
 * support, the mass at their largest and the base's sum; then, for a base
 * with zeros or one renormalised, the support in gap space.  The trainer
 * hands its solves such a base whenever its prompts have different numbers
 * of pairs (on every unit and summing to 1 up to rounding: solved in place,
 * the scan alone), so these are no rarer than the uniform scan (scan.c).
 * Written one element at a time, with the support's branch, one running sum
 * and a division each, they took about half of such a solve at 10^5 units,
 * which then ran 3 to 14 times as long as over the uniform base. */
#include "internal.h"
#include "vec.h"

#include <float.h>
#include <math.h>

/* ---- the check and the range ------------------------------------------- */

/* One chain of the scan, four lanes each: the largest loss with the mass
 * and count of the units at it, and the least loss. */
typedef struct base_chain {
    drpo_v4d l_max, at_max, l_min;
    drpo_v4i tied;
} base_chain;

/* The sums the chains share (the base's and its shifted first moment's,
 * over a block), and the lanes that met a unit off the support or, in a
 * masked scan, a negative base entry (a true lane is -1). */
typedef struct base_shared {
    drpo_v4d block, moment;
    drpo_v4i off, negative;
} base_shared;

/* Four units into chain c.  `masked` (a constant after inlining): the range
 * over the support alone; else over every unit, which is the support's
 * unless some entry is <= 0 (the scan then goes again, masked). */
DRPO__INLINE void base_range(drpo_v4d l, drpo_v4d b, int masked, base_chain *c,
                             base_shared *s)
{
    const drpo_v4d zero = drpo__v4_set1(0.0);
    drpo_v4i rise = l > c->l_max, meet = l >= c->l_max, below = l < c->l_min;
    s->off |= b <= zero;
    if (masked) {
        drpo_v4i on = b != zero;
        rise &= on;
        meet &= on;
        below &= on;
        s->negative |= b < zero;
    }
    c->l_max = drpo__v4_select(rise, l, c->l_max);
    c->at_max = drpo__v4_select(rise, zero, c->at_max) + drpo__v4_select(meet, b, zero);
    c->tied = (c->tied & ~rise) - meet;
    c->l_min = drpo__v4_select(below, l, c->l_min);
}

/* Eight units, four into each chain.  No test of finiteness per unit: the
 * sums are finite when every entry is (or overflowed: then the caller
 * looks and finds no culprit). */
DRPO__INLINE void base_eight(const double *loss, const double *base, size_t i, drpo_v4d origin,
                             int masked, base_chain *c, base_shared *s)
{
    drpo_v4d l0 = drpo__v4_load(loss + i), b0 = drpo__v4_load(base + i);
    drpo_v4d l1 = drpo__v4_load(loss + i + 4), b1 = drpo__v4_load(base + i + 4);
    base_range(l0, b0, masked, &c[0], s);
    base_range(l1, b1, masked, &c[1], s);
    s->block += b0 + b1;
    /* (0 off the support when l is finite) */
    s->moment += b0 * (l0 - origin) + b1 * (l1 - origin);
}

/* One unit into a scan's totals (the tail past the lanes). */
static void base_unit(double l, double b, double origin, drpo_base_scan *r, drpo_ksum *sum,
                      drpo_ksum *moment)
{
    r->ok &= isfinite(l) && isfinite(b) && b >= 0.0;
    drpo__ksum_add(sum, b);
    drpo__ksum_add(moment, b * (l - origin));
    if (b == 0.0) {
        r->off_support = 1;
        return;
    }
    if (l > r->l_max) {
        r->l_max = l;
        r->p_top = 0.0;
        r->tied = 0;
    }
    if (l == r->l_max) {
        r->p_top += b;
        r->tied++;
    }
    r->l_min = l < r->l_min ? l : r->l_min;
}

DRPO__INLINE drpo_base_scan base_scan_body(size_t n, const double *loss, const double *base,
                                           int masked)
{
    const drpo_v4d zero = drpo__v4_set1(0.0), origin = drpo__v4_set1(loss[0]);
    const drpo_v4i none = {0, 0, 0, 0};
    base_chain c[2];
    c[0] = (base_chain){drpo__v4_set1(-DBL_MAX), zero, drpo__v4_set1(DBL_MAX), none};
    c[1] = c[0];
    base_shared sh = {zero, zero, none, none};
    /* the blocks' sums, compensated: the base's and its moment's */
    drpo_v4d ks = zero, kc = zero, ms = zero, mc = zero;
    size_t i = 0, vec_end = n - n % 8;
    while (i < vec_end) { /* blocks of 256 */
        size_t end = i + 256 < vec_end ? i + 256 : vec_end;
        sh.block = sh.moment = zero;
        for (; i < end; i += 8)
            base_eight(loss, base, i, origin, masked, c, &sh);
        drpo__v4_ksum_add(&ks, &kc, sh.block);
        drpo__v4_ksum_add(&ms, &mc, sh.moment);
        if (!masked && drpo__v4_any(sh.off))
            break; /* the masked scan starts again: this one would be wasted */
    }
    drpo_base_scan r = {-DBL_MAX, DBL_MAX, 0.0, 0.0, 0.0, 0, 1, 0};
    if (!masked && drpo__v4_any(sh.off)) {
        r.off_support = 1;
        return r;
    }
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 4; l++) {
            r.l_max = fmax(r.l_max, c[h].l_max[l]);
            r.l_min = fmin(r.l_min, c[h].l_min[l]);
        }
    for (int l = 0; l < 4; l++) {
        r.ok &= sh.negative[l] == 0;
        r.off_support |= sh.off[l] != 0;
    }
    for (int h = 0; h < 2; h++) /* the mass at the largest loss, lane by lane */
        for (int l = 0; l < 4; l++)
            if (c[h].l_max[l] == r.l_max) {
                r.p_top += c[h].at_max[l];
                r.tied += (size_t)c[h].tied[l];
            }
    drpo_ksum sum = {drpo__v4_ksum_total(ks, kc), 0.0};
    drpo_ksum moment = {drpo__v4_ksum_total(ms, mc), 0.0};
    for (; i < n; i++) /* the last n mod 8 */
        base_unit(loss[i], base[i], loss[0], &r, &sum, &moment);
    r.sum = drpo__ksum_value(&sum);
    r.moment = drpo__ksum_value(&moment);
    r.ok &= isfinite(r.sum) && isfinite(r.moment);
    return r;
}

DRPO__KERNEL_DISPATCH(drpo_base_scan, base_scan,
                      (size_t n, const double *loss, const double *base), (n, loss, base),
                      base_scan_body(n, loss, base, 0))
DRPO__KERNEL_DISPATCH(drpo_base_scan, base_scan_masked,
                      (size_t n, const double *loss, const double *base), (n, loss, base),
                      base_scan_body(n, loss, base, 1))

drpo_base_scan drpo__scan_base(size_t n, const double *loss, const double *base)
{
    drpo_base_scan r = base_scan(n, loss, base);
    /* an entry <= 0 (rare: a caller's mask) may put units off the support,
     * which must not count in the range: from the start, each unit tested
     * (the unmasked scan stopped at the block that met it) */
    return r.off_support ? base_scan_masked(n, loss, base) : r;
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

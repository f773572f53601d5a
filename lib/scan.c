/* scan.c - the pass every solve with a uniform base begins with: the losses
 * checked finite, their range, the ties at the maximum and their sum, in
 * one vectorised read (finiteness through the sum: no test per element).
 *
 * Where the CPU has AVX-512 the pass runs on eight lanes: with a window to
 * keep (drpo__scan_window) the four-lane pass was bound by its instructions
 * (compares, the compress's table lookup and permute, twice per group of
 * eight), not by the memory it reads.  Every instance sums unit j into lane
 * j mod 8 of one of two chains and joins them in the same order, so all
 * three return the same bits (tests/test_scan.c compares them). */
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

/* The largest lane of two vectors (sign -1: the smallest). */
DRPO__INLINE double lanes_extreme2(drpo_v4d a, drpo_v4d b, double sign)
{
    drpo_v4i b_wins = sign > 0.0 ? b > a : b < a;
    return lanes_extreme(drpo__v4_select(b_wins, b, a), sign);
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

/* What the vector part of a scan leaves to its end (every instance's). */
typedef struct scan_state {
    drpo_v4d ks, kc; /* sum of l - l_0 over the blocks, compensated */
    double best;     /* the largest unit so far (of the blocks noted) */
    size_t cand[SCAN_CANDIDATES], n_cand;
    int spilled;
    size_t i, k;   /* units read; units kept */
    double over;   /* units >= x1 */
} scan_state;

/* The ties at the maximum, without a count per unit: a unit equal to the
 * final maximum is at or above its lane's running max when it is read, so
 * its block (from `start`) is noted, and no later block raises the maximum
 * past it; the blocks noted are counted again at the end.  m: the running
 * max of a block where some lane rose (or was met). */
DRPO__INLINE void note_block(scan_state *s, size_t start, double m)
{
    if (m > s->best) { /* the blocks before hold no unit at the new maximum */
        s->best = m;
        s->n_cand = 0;
        s->spilled = 0;
    }
    if (s->n_cand < SCAN_CANDIDATES)
        s->cand[s->n_cand++] = start;
    else
        s->spilled = 1;
}

/* The running extremes and sums of one chain of groups of eight. */
typedef struct scan_chain {
    drpo_v4d mx, mn;
    drpo_v4d block[2]; /* lanes 0-3 and 4-7 of the groups */
    drpo_v4i rise;     /* lanes whose max rose (or was met) in this block */
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
    c->block[0] += v - origin;
    c->block[1] += w - origin;
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

/* The end of every instance's scan: the last n mod 8 units, the ties at
 * the maximum counted in the blocks noted, finiteness.  max, min: of the
 * units read. */
DRPO__INLINE drpo_loss_scan scan_finish(size_t n, const double *x, double x0, double x1,
                                        double *kept, int window, scan_state *s, double max,
                                        double min)
{
    const double first = x[0];
    size_t i = s->i, k = s->k, vec_end = n - n % 8;
    drpo_loss_scan r;
    r.max = max;
    r.min = min;
    int finite = 1;
    drpo_ksum sum = {drpo__v4_ksum_total(s->ks, s->kc), 0.0};
    for (; i < n; i++) { /* the last n mod 8 */
        double v = x[i];
        finite &= v - v == 0.0;
        r.max = v > r.max ? v : r.max;
        r.min = v < r.min ? v : r.min;
        drpo__ksum_add(&sum, v - first);
        if (window) {
            s->over += v >= x1;
            if (v > x0 && v < x1)
                kept[k++] = v;
        }
    }
    if (s->spilled) {
        r.at_max = count_equal(x, 0, n, r.max);
    } else {
        r.at_max = count_equal(x, vec_end, n, r.max);
        for (size_t c = 0; c < s->n_cand; c++)
            r.at_max += count_equal(x, s->cand[c],
                                    s->cand[c] + 256 < vec_end ? s->cand[c] + 256 : vec_end,
                                    r.max);
    }
    r.shifted_sum = drpo__ksum_value(&sum);
    r.over = s->over;
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

/* A scan's state before its first unit (x[0] = first). */
static void scan_start(scan_state *s, double first)
{
    s->ks = s->kc = drpo__v4_set1(0.0);
    s->best = first;
    s->n_cand = 0;
    s->spilled = 0;
    s->i = s->k = 0;
    s->over = 0.0;
}

/* `window` (a constant after inlining): the losses in (x0, x1) are also
 * kept (copied in order to kept[0, r.kept)), those from x1 up counted
 * (r.over): the first pass of a threshold solve, taken in loss space
 * (drpo_loss_window). */
DRPO__INLINE drpo_loss_scan scan_body(size_t n, const double *x, double x0, double x1,
                                      double *kept, int window)
{
    const drpo_v4d zero = drpo__v4_set1(0.0), origin = drpo__v4_set1(x[0]);
    /* two chains of running max, min and sum, each meeting two groups of
     * four already compared with each other: a compare and a blend, or an
     * add, per group is the loop's longest dependency, and with one chain
     * the scan waited on it */
    scan_chain c[2];
    for (int h = 0; h < 2; h++)
        c[h] = (scan_chain){origin, origin, {zero, zero}, {0, 0, 0, 0}};
    scan_state s;
    scan_start(&s, x[0]);
    const drpo_v4d lo = drpo__v4_set1(x0), hi = drpo__v4_set1(x1);
    drpo_v4i over = {0, 0, 0, 0}; /* a true lane is -1 */
    size_t i = 0, k = 0, vec_end = n - n % 8;
    while (i + 8 <= n) { /* blocks of up to 256 plain sums, compensated across blocks */
        size_t start = i, end = i + 256 <= n ? i + 256 : vec_end;
        for (int h = 0; h < 2; h++) {
            c[h].block[0] = c[h].block[1] = zero;
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
        drpo__v4_ksum_add(&s.ks, &s.kc,
                          (c[0].block[0] + c[1].block[0]) + (c[0].block[1] + c[1].block[1]));
        if (drpo__v4_any(c[0].rise | c[1].rise))
            note_block(&s, start, lanes_extreme2(c[0].mx, c[1].mx, 1.0));
    }
    s.i = i;
    s.k = k;
    s.over = (double)-(over[0] + over[1] + over[2] + over[3]);
    return scan_finish(n, x, x0, x1, kept, window, &s, lanes_extreme2(c[0].mx, c[1].mx, 1.0),
                       lanes_extreme2(c[0].mn, c[1].mn, -1.0));
}

#ifdef DRPO__HAVE_AVX512_CLONE
/* scan_body on eight lanes: a group of eight is one vector, the two chains
 * the groups at i and i + 8 of each sixteen (their extremes taken together
 * first, as scan_group takes its two fours), the block sums of each chain
 * lane by lane.  Kept units are compressed in registers (a compress to
 * memory is microcoded on some CPUs) and stored eight at a time, so kept
 * needs room for eight past the last unit kept before the end: it has
 * (a unit is kept only once read, and eight more are read). */
DRPO__WIDE DRPO__INLINE drpo_loss_scan scan_body_wide(size_t n, const double *x, double x0,
                                                      double x1, double *kept, int window)
{
    const __m512d zero = _mm512_setzero_pd(), origin = _mm512_set1_pd(x[0]);
    const __m512d lo = _mm512_set1_pd(x0), hi = _mm512_set1_pd(x1);
    __m512d mx = origin, mn = origin;
    scan_state s;
    scan_start(&s, x[0]);
    size_t i = 0, k = 0, over = 0, vec_end = n - n % 8;
/* one group of eight: the window's part (into over and kept) */
#define SCAN_KEEP(v)                                                                          \
    if (window) {                                                                             \
        __mmask8 at_hi = _mm512_cmp_pd_mask(v, hi, _CMP_GE_OQ);                               \
        __mmask8 in = _mm512_mask_cmp_pd_mask((__mmask8)~at_hi, v, lo, _CMP_GT_OQ);          \
        over += (size_t)__builtin_popcount(at_hi);                                            \
        _mm512_storeu_pd(kept + k, _mm512_maskz_compress_pd(in, v));                          \
        k += (size_t)__builtin_popcount(in);                                                  \
    }
    while (i + 8 <= n) {
        size_t start = i, end = i + 256 <= n ? i + 256 : vec_end;
        __m512d block[2] = {zero, zero};
        __mmask8 rise = 0;
        for (; i + 16 <= end; i += 16) {
            __m512d v = _mm512_loadu_pd(x + i), w = _mm512_loadu_pd(x + i + 8);
            __mmask8 w_gt = _mm512_cmp_pd_mask(w, v, _CMP_GT_OQ);
            __m512d big = _mm512_mask_blend_pd(w_gt, v, w);
            __m512d small = _mm512_mask_blend_pd(w_gt, w, v);
            __mmask8 ge = _mm512_cmp_pd_mask(big, mx, _CMP_GE_OQ);
            mx = _mm512_mask_blend_pd(ge, mx, big);
            mn = _mm512_mask_blend_pd(_mm512_cmp_pd_mask(small, mn, _CMP_LT_OQ), mn, small);
            rise |= ge;
            block[0] = _mm512_add_pd(block[0], _mm512_sub_pd(v, origin));
            block[1] = _mm512_add_pd(block[1], _mm512_sub_pd(w, origin));
            SCAN_KEEP(v)
            SCAN_KEEP(w)
        }
        if (i < end) { /* one group of eight, into the first chain */
            __m512d v = _mm512_loadu_pd(x + i);
            __mmask8 ge = _mm512_cmp_pd_mask(v, mx, _CMP_GE_OQ);
            mx = _mm512_mask_blend_pd(ge, mx, v);
            mn = _mm512_mask_blend_pd(_mm512_cmp_pd_mask(v, mn, _CMP_LT_OQ), mn, v);
            rise |= ge;
            block[0] = _mm512_add_pd(block[0], _mm512_sub_pd(v, origin));
            SCAN_KEEP(v)
            i += 8;
        }
        /* as scan_body joins them: (chain 0 + chain 1) low lanes + high */
        drpo_v8d joined = (drpo_v8d)_mm512_add_pd(block[0], block[1]);
        drpo__v4_ksum_add(&s.ks, &s.kc, drpo__v8_lo(joined) + drpo__v8_hi(joined));
        if (rise)
            note_block(&s, start,
                       lanes_extreme2(drpo__v8_lo((drpo_v8d)mx), drpo__v8_hi((drpo_v8d)mx), 1.0));
    }
#undef SCAN_KEEP
    s.i = i;
    s.k = k;
    s.over = (double)over;
    return scan_finish(n, x, x0, x1, kept, window, &s,
                       lanes_extreme2(drpo__v8_lo((drpo_v8d)mx), drpo__v8_hi((drpo_v8d)mx), 1.0),
                       lanes_extreme2(drpo__v8_lo((drpo_v8d)mn), drpo__v8_hi((drpo_v8d)mn), -1.0));
}
#else
#define scan_body_wide scan_body
#endif

DRPO__KERNEL_DISPATCH_WIDE(drpo_loss_scan, scan_dispatch, (size_t n, const double *x), (n, x),
                           scan_body(n, x, 0.0, 0.0, NULL, 0),
                           scan_body_wide(n, x, 0.0, 0.0, NULL, 0))
DRPO__KERNEL_DISPATCH_WIDE(drpo_loss_scan, scan_window_dispatch,
                           (size_t n, const double *x, double x0, double x1, double *kept),
                           (n, x, x0, x1, kept), scan_body(n, x, x0, x1, kept, 1),
                           scan_body_wide(n, x, x0, x1, kept, 1))

drpo_loss_scan drpo__scan_losses(size_t n, const double *loss) { return scan_dispatch(n, loss); }

drpo_loss_scan drpo__scan_window(size_t n, const double *loss, double x0, double x1, double *kept)
{
    return scan_window_dispatch(n, loss, x0, x1, kept);
}

/* rank.c - the gap of a given rank, for problems of equal masses.
 *
 * Over a uniform base every unit weighs pu, so a rule of masses alone
 * (CVaR, TV radius) crosses its target at a rank: the first count c with
 * c pu >= target.  Up to a few thousand units the gaps are few enough to
 * select from whole (no window: window.c).  Quickselect on the gaps as
 * doubles, each round one three-way partition, out of place and four
 * lanes at a time: the gaps below the pivot compressed to the front of the
 * other buffer, those above to its back, the equal ones only counted (they
 * are the pivot).  Against the pairs' selection (sets/common.c), which
 * moves sixteen bytes a unit and sums masses, it reads and writes eight. */
#include "../internal.h"
#include "../vec.h"

#include <math.h>

/* A round's outcome: how many gaps went below the pivot (to the front), how
 * many above (to the back), how many equalled it. */
typedef struct split3 {
    size_t below, above, equal;
} split3;

/* The gaps top - x down of x[i, n) split around the pivot into dst, whose
 * first lo and last hi places hold the parts of x[0, i) (lo + hi <= i).
 * A group's stores fill whole vectors: the front one's spare lanes land in
 * the gap between the parts, and so do the back one's (its kept lanes moved
 * to the top), so the vectors stop while that gap is at least eight wide;
 * the last few go one by one. */
DRPO__INLINE split3 split3_from(const double *x, size_t n, double top, double down, double pivot,
                                double *dst, size_t i, size_t lo, size_t hi)
{
    const drpo_v4d vt = drpo__v4_set1(top), vd = drpo__v4_set1(down);
    const drpo_v4d vp = drpo__v4_set1(pivot);
    for (; i + 8 <= n; i += 4) { /* (the gap is n - lo - hi >= n - i) */
        drpo_v4d d = vt - drpo__v4_load(x + i) * vd;
        unsigned below = drpo__v4_bits(d < vp), above = drpo__v4_bits(d > vp);
        drpo__v4_store(dst + lo, drpo__v4_compress(d, below));
        lo += (size_t)__builtin_popcount(below);
        drpo__v4_store(dst + n - hi - 4, drpo__v4_compress_top(d, above));
        hi += (size_t)__builtin_popcount(above);
    }
    for (; i < n; i++) {
        double d = top - x[i] * down;
        if (d < pivot)
            dst[lo++] = d;
        else if (d > pivot)
            dst[n - ++hi] = d;
    }
    split3 s = {lo, hi, n - lo - hi};
    return s;
}

DRPO__INLINE split3 split3_body(const double *x, size_t n, double top, double down, double pivot,
                                double *dst)
{
    return split3_from(x, n, top, down, pivot, dst, 0, 0, 0);
}

#ifdef DRPO__HAVE_AVX512_CLONE
/* split3_body eight gaps at a time (then as it does), the parts in the same
 * order: below, the eight's gaps in order; above, its second four's before
 * its first four's (the four-lane pass stores the first four at the top,
 * then the second below them), so the halves are swapped, compressed, and
 * moved to the top of the vector.  The gap must be sixteen wide. */
DRPO__WIDE DRPO__INLINE split3 split3_body_wide(const double *x, size_t n, double top,
                                                double down, double pivot, double *dst)
{
    const __m512d vt = _mm512_set1_pd(top), vd = _mm512_set1_pd(down),
                  vp = _mm512_set1_pd(pivot);
    size_t lo = 0, hi = 0, i = 0;
    for (; i + 16 <= n; i += 8) {
        __m512d d = _mm512_sub_pd(vt, _mm512_mul_pd(_mm512_loadu_pd(x + i), vd));
        __mmask8 below = _mm512_cmp_pd_mask(d, vp, _CMP_LT_OQ);
        __mmask8 above = _mm512_cmp_pd_mask(d, vp, _CMP_GT_OQ);
        _mm512_storeu_pd(dst + lo, _mm512_maskz_compress_pd(below, d));
        lo += (size_t)__builtin_popcount(below);
        unsigned swapped = (unsigned)(above >> 4) | (unsigned)(above & 15u) << 4;
        __m512d back = _mm512_maskz_compress_pd((__mmask8)swapped,
                                                _mm512_shuffle_f64x2(d, d, 0x4e));
        unsigned count = (unsigned)__builtin_popcount(above);
        back = _mm512_maskz_expand_pd((__mmask8)(0xffu << (8 - count)), back);
        _mm512_storeu_pd(dst + n - hi - 8, back);
        hi += count;
    }
    return split3_from(x, n, top, down, pivot, dst, i, lo, hi);
}
#else
#define split3_body_wide split3_body
#endif

DRPO__KERNEL_DISPATCH_WIDE(split3, split3_pass,
                           (const double *x, size_t n, double top, double down, double pivot,
                            double *dst),
                           (x, n, top, down, pivot, dst), split3_body(x, n, top, down, pivot, dst),
                           split3_body_wide(x, n, top, down, pivot, dst))

/* The heap a[0, n) (largest at the root) restored below r. */
static void heap_down(double *a, size_t r, size_t n)
{
    for (size_t c; (c = 2 * r + 1) < n; r = c) {
        c += c + 1 < n && a[c + 1] > a[c];
        if (!(a[c] > a[r]))
            return;
        double t = a[r];
        a[r] = a[c];
        a[c] = t;
    }
}

/* a[0, n) sorted ascending (heapsort: after bad pivots). */
static void sort_doubles(double *a, size_t n)
{
    for (size_t r = n / 2; r-- > 0;)
        heap_down(a, r, n);
    for (size_t end = n; end > 1;) {
        double t = a[0];
        a[0] = a[--end];
        a[end] = t;
        heap_down(a, 0, end);
    }
}

/* The least count c >= 1 with (start + c) pu >= target (start a count;
 * the floating-point comparison itself, not the quotient's rounding),
 * SIZE_MAX if none is below 2^52. */
static size_t count_reaching(double start, double pu, double target)
{
    double c = ceil(target / pu - start);
    if (!(c >= 1.0))
        c = 1.0;
    if (!(c < 0x1p52)) /* (beyond every problem's size, or pu 0) */
        return SIZE_MAX;
    /* the quotient's rounding: a step or two either way */
    while (c > 1.0 && (start + c - 1.0) * pu >= target)
        c -= 1.0;
    while ((start + c) * pu < target)
        c += 1.0;
    return (size_t)c;
}

/* The k-th smallest (from 0) of the n gaps top - x_j down, with *below the
 * gaps smaller than it and *at those equal to it (k < n; buf0 and buf1 hold
 * n doubles each and are overwritten; expected O(n)). */
static double rank_select(const double *x, size_t n, double top, double down, size_t k,
                          double *buf0, double *buf1, size_t *below, size_t *at)
{
    /* the gaps go back and forth between the two buffers, each round
     * keeping the part that holds rank k: the first round reads x itself */
    double *buf[2] = {buf0, buf1};
    const double *src = x;
    size_t skipped = 0; /* gaps below the part, already left behind */
    int depth = 0, into = 0;
    for (size_t m = n; m > 1; m >>= 1)
        depth += 2;
    while (n > 32 && depth-- > 0) {
        /* the median of three gaps at scattered places */
        uint64_t h = (uint64_t)n * 0x9E3779B97F4A7C15ull;
        double g[3];
        for (int j = 0; j < 3; j++)
            g[j] = top - src[(h >> (20 + 10 * j)) % n] * down;
        double pivot = (g[0] < g[1]) == (g[1] < g[2])   ? g[1]
                       : (g[1] < g[0]) == (g[0] < g[2]) ? g[0]
                                                        : g[2];
        double *dst = buf[into];
        split3 s = split3_pass(src, n, top, down, pivot, dst);
        if (k < s.below) {
            src = dst;
            n = s.below;
        } else if (k < s.below + s.equal) {
            *below = skipped + s.below;
            *at = s.equal;
            return pivot;
        } else {
            src = dst + s.below + s.equal;
            n = s.above;
            k -= s.below + s.equal;
            skipped += s.below + s.equal;
        }
        top = 0.0; /* from now on gaps themselves: 0 - d (-1) is d exactly */
        down = -1.0;
        into ^= 1;
    }
    double *a = buf[into];
    for (size_t i = 0; i < n; i++)
        a[i] = top - src[i] * down;
    if (n <= 32) { /* the last few: each one's rank counted (a sort mispredicted its way) */
        for (size_t i = 0;; i++) {
            size_t less = 0, equal = 0;
            for (size_t j = 0; j < n; j++) {
                less += a[j] < a[i];
                equal += a[j] == a[i];
            }
            if (less <= k && k < less + equal) {
                *below = skipped + less;
                *at = equal;
                return a[i];
            }
        }
    }
    /* after bad pivots: sorted */
    sort_doubles(a, n);
    double v = a[k];
    size_t first = k, last = k;
    while (first > 0 && a[first - 1] == v)
        first--;
    while (last + 1 < n && a[last + 1] == v)
        last++;
    *below = skipped + first;
    *at = last - first + 1;
    return v;
}

drpo_crossing drpo__rank_crossing(const double *x, size_t n, double top, double down,
                                  double start, double pu, double target, int descending,
                                  double *buf0, double *buf1)
{
    size_t k = count_reaching(start, pu, target), below, at;
    drpo_crossing c = {0.0, start * pu, 0.0, k <= n};
    if (n == 0)
        return c;
    /* the k-th in scan order (never reached: the last) */
    size_t rank = c.reached ? (descending ? n - k : k - 1) : (descending ? 0 : n - 1);
    c.gap = rank_select(x, n, top, down, rank, buf0, buf1, &below, &at);
    c.before = (start + (double)(descending ? n - below - at : below)) * pu;
    c.at = (double)at * pu;
    return c;
}

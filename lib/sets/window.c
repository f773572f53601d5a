/* window.c - find where a monotone criterion over the sorted gaps crosses
 * its target without sorting anything.
 *
 * The threshold solvers (chi-square, CVaR, TV radius) scan the gaps in
 * ascending order with running sums until a criterion turns true.  Only the
 * part of the order near the crossing matters.  A deterministic sample of
 * the gaps predicts where the crossing lies (by selection: common.c); one
 * pass summarises every gap below that bracket (mass and moments) and above
 * it, and copies the gaps inside it.  The solver's check confirms from
 * those sums alone that the crossing is inside; if not, the bracket widens
 * (at worst to everything).  The copy is then narrowed the same way in
 * place, a sample of it at a time, until it is small; the solver finds its
 * crossing in it by selection.  Exact either way: the samples only decide
 * how much gets looked at.  A rule of masses alone over a uniform base
 * starts from the window the scan of the losses kept, and ranks its losses
 * where they lie (values_of_scan). */
#include "../internal.h"
#include "../vec.h"

#include <math.h>

/* Windows at most this large go to the solver without narrowing. */
#define NARROW_TO 4096

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

/* Summaries of nothing: the start of a window's sums. */
static void clear_sums(drpo_window *w)
{
    w->below_mass = w->below_s1 = w->below_s2 = 0.0;
    w->win_mass = w->win_s1 = w->win_s2 = 0.0;
    w->above_mass = 0.0;
    w->centre = 0.0;
    w->next = INFINITY;
    w->values = NULL;
}

/* The mean of a sample's gaps below hi (their masses' weights), or
 * `otherwise` if none is. */
static double mean_below(const drpo_window *sample, double hi, double otherwise)
{
    double mass = 0.0, sum = 0.0;
    for (size_t i = 0; i < sample->n; i++)
        if (sample->win[i].d < hi) {
            mass += sample->win[i].p;
            sum += sample->win[i].p * sample->win[i].d;
        }
    return mass > 0.0 ? sum / mass : otherwise;
}

/* A stratified sample of s gaps into out (from the problem's arrays
 * when pairs is NULL, else from pairs[0, n)), masses scaled to sum to mass. */
static void stratified(const drpo_problem *pb, const drpo_pair *pairs, size_t n, size_t s,
                       double mass, drpo_pair *out)
{
    /* one gap from each of s equal strata [i n / s, (i + 1) n / s), whose
     * ends are kept as quotient and remainder (no division per draw); the
     * positions are drawn first, each prefetched, so that the reads from
     * memory overlap instead of waiting one by one */
    size_t q = n / s, r = n % s, lo = 0, rem = 0;
    for (size_t i = 0; i < s; i++) {
        size_t carry = rem + r >= s, hi = lo + q + carry;
        size_t j = lo + (size_t)(((mix(i + 1) >> 32) * (uint64_t)(hi - lo)) >> 32);
        out[i].d = (double)j; /* (exact: j < 2^53) */
        if (pairs) {
            __builtin_prefetch(pairs + j);
        } else {
            __builtin_prefetch(pb->x + j);
            if (!pb->uniform)
                __builtin_prefetch(pb->p + j);
        }
        rem = carry ? rem + r - s : rem + r;
        lo = hi;
    }
    double total = 0.0;
    for (size_t i = 0; i < s; i++) {
        size_t j = (size_t)out[i].d;
        out[i] = pairs ? pairs[j] : (drpo_pair){drpo__gap(pb, j), drpo__mass(pb, j)};
        total += out[i].p;
    }
    for (size_t i = 0; i < s; i++)
        out[i].p *= mass / total;
}

void drpo__sample_gaps(const drpo_problem *pb, size_t s, drpo_pair *out)
{
    stratified(pb, NULL, pb->m, s, 1.0, out);
}

/* stratified(), as a window with the parent's sums below it. */
static void sample_of(const drpo_problem *pb, const drpo_pair *pairs, size_t n, size_t s,
                      double mass, const drpo_window *parent, drpo_pair *out, drpo_window *w)
{
    stratified(pb, pairs, n, s, mass, out);
    *w = *parent;
    w->win = out;
    w->values = NULL;
    w->n = s;
    w->win_mass = mass;
    w->next = INFINITY;
}

/* A predicted crossing (a rule's predict) is bracketed by +- 3 / sqrt(n)
 * of the sample's mass: the prediction's own error adds to the sampling's. */
static double predict_margin(const drpo_window *sample) { return 3.0 / sqrt((double)sample->n); }

/* The gaps at fractions level -+ delta of a sample's mass, by selection:
 * by rank where its masses are all equal (a uniform base's sample: its gaps
 * copied after its pairs, which must have room for 3 n doubles there, and
 * every sample has: at most an eighth of the units, in scratch of one double
 * a unit, or of the losses, in their pairs' two), else on the pairs
 * (reordered). */
static void bracket(const drpo_window *sample, double level, double delta, double *lo, double *hi)
{
    const double f[2] = {level - delta, level + delta};
    drpo_pair *pairs = (drpo_pair *)sample->win;
    size_t n = sample->n;
    double total = 0.0, *g = (double *)(pairs + n), *end[2] = {lo, hi};
    int equal = n > 0;
    for (size_t i = 0; i < n; i++) {
        total += pairs[i].p;
        equal &= pairs[i].p == pairs[0].p;
    }
    for (size_t i = 0; equal && i < n; i++)
        g[i] = pairs[i].d;
    for (int e = 0; e < 2; e++) {
        int reached = 0;
        if (f[e] > 0.0 && f[e] < 1.0) {
            if (equal) {
                drpo_crossing c = drpo__rank_crossing(g, n, 0.0, -1.0, 0.0, pairs[0].p,
                                                      f[e] * total, 0, g + n, g + 2 * n);
                reached = c.reached;
                *end[e] = c.gap;
            } else {
                reached = drpo__pairs_crossing(pairs, n, 0.0, f[e] * total, 0, end[e]);
            }
        }
        if (!reached)
            *end[e] = e == 0 ? -INFINITY : INFINITY;
    }
}

/* One chain of a pass's sums, four lanes each, over the gaps outside the
 * bracket (the window's own sums come from its copy): the units below (a
 * uniform base) or the block's masses below and above, and the moments
 * below.  (The least gap above the bracket is hi itself: see drpo_window.) */
typedef struct fill_chain {
    drpo_v4i below; /* a true lane is -1 */
    drpo_v4d blk[2];
    drpo_v4d s1, s2;
} fill_chain;

/* A pass's sums: its two chains (even and odd groups of four, so that no
 * running sum waits on the previous group's) added up, the masses
 * compensated across blocks. */
typedef struct fill_sums {
    fill_chain c;
    drpo_v4d mass_s[2], mass_c[2]; /* below, above */
    size_t k;                      /* pairs copied */
} fill_sums;

/* Four gaps' share of the sums.  w: their masses (unless the base is
 * uniform); real: the lanes that hold a gap (all but a padded tail).
 * Returns the lanes inside the bracket. */
DRPO__INLINE drpo_v4i fill_lanes(drpo_v4d d, drpo_v4d w, drpo_v4i real, double lo, double hi,
                                 drpo_v4d centre, int uniform, int moments, fill_chain *f,
                                 drpo_v4i *count)
{
    drpo_v4i below = real & (d < lo), above = real & (d >= hi);
    const drpo_v4d zero = drpo__v4_set1(0.0);
    /* moments about the centre (0 below moments 2: d itself) */
    drpo_v4d x = moments >= 2 ? d - centre : d;
    /* a uniform base counts, sums x itself and scales by the mass at the end */
    drpo_v4d bw = drpo__v4_select(below, uniform ? x : w, zero);
    if (uniform) {
        *count -= below; /* (one latency-1 chain for both) */
    } else {
        f->blk[0] += bw;
        f->blk[1] += drpo__v4_select(above, w, zero);
    }
    if (moments >= 1)
        f->s1 += uniform ? bw : bw * x;
    if (moments >= 2)
        f->s2 += (uniform ? bw : bw * x) * x;
    return real & (d >= lo) & (d < hi); /* (no constant for a negation) */
}

/* Append the gaps of `inside` (and their masses) to pairs[k...], in order:
 * compressed to the front of the vectors and stored as four whole pairs,
 * of which the count inside are kept (no branch: the bracket holds a few
 * per cent of the gaps, at random).  pairs has room for four past k.  With
 * a `uniform` base (every p the same) the gaps alone are kept, as doubles
 * from the front of pairs: half the stores and no interleaving. */
DRPO__INLINE void keep(drpo_v4d d, drpo_v4d p, drpo_v4i inside, int uniform, drpo_pair *pairs,
                       size_t *k)
{
    unsigned bits = drpo__v4_bits(inside);
    drpo_v4d dc = drpo__v4_compress(d, bits);
    if (uniform) { /* the gaps alone, as doubles: pairs_of_gaps makes the pairs */
        drpo__v4_store((double *)pairs + *k, dc);
    } else {
        drpo_v4d pc = drpo__v4_compress(p, bits);
        double *out = &pairs[*k].d;
        drpo__v4_store(out, __builtin_shufflevector(dc, pc, 0, 4, 1, 5));
        drpo__v4_store(out + 4, __builtin_shufflevector(dc, pc, 2, 6, 3, 7));
    }
    *k += (size_t)__builtin_popcount(bits);
}

/* The k values v a pass kept as doubles at the front of pairs, as pairs
 * (top - v down, p), in place (from the back: pair i covers doubles 2i and
 * 2i + 1, which hold values already moved).  Gaps themselves: top 0, down -1
 * (0 - (-d) is d exactly).  Returns how many of the new gaps are <= g1 (in
 * the same pass; adds those >= g0 and not <= g1 to *at_g0). */
static size_t pairs_of_values(drpo_pair *pairs, size_t k, double p, double top, double down,
                              double g1, double g0, size_t *at_g0)
{
    const double *v = (const double *)pairs;
    size_t low = 0, high = 0;
    for (size_t i = k; i-- > 0;) {
        double d = top - v[i] * down;
        pairs[i] = (drpo_pair){d, p};
        low += d <= g1;
        high += d >= g0 && d > g1; /* (g1 == g0 by rounding: counted once, below) */
    }
    *at_g0 += high;
    return low;
}

/* The padded tail's gaps inside, one by one (pairs may end at the last). */
DRPO__INLINE void keep_tail(drpo_v4d d, drpo_v4d p, drpo_v4i inside, int uniform,
                            drpo_pair *pairs, size_t *k)
{
    for (int l = 0; l < 4; l++)
        if (inside[l]) {
            if (uniform)
                ((double *)pairs)[*k] = d[l];
            else
                pairs[*k] = (drpo_pair){d[l], p[l]};
            ++*k;
        }
}

/* A pass's two chains to one (c1 counts nothing: one count chain serves
 * both), with its masses and the count kept. */
DRPO__INLINE fill_sums fill_join(const fill_chain *c0, const fill_chain *c1,
                                 const drpo_v4d mass_s[2], const drpo_v4d mass_c[2], size_t k)
{
    fill_sums f;
    f.c = *c0;
    f.c.s1 += c1->s1;
    f.c.s2 += c1->s2;
    for (int a = 0; a < 2; a++) {
        f.mass_s[a] = mass_s[a];
        f.mass_c[a] = mass_c[a];
    }
    f.k = k;
    return f;
}

/* `uniform` is a constant after inlining: masses are then counted, and the
 * moments are sums of d and d^2, scaled by the mass at the end. */
DRPO__INLINE fill_sums fill_body(const drpo_problem *pb, double lo, double hi, double centre,
                                 int uniform, int moments)
{
    const drpo_v4d vc = drpo__v4_set1(centre);
    const double *x = pb->x, *pp = pb->p;
    const drpo_v4d top = drpo__v4_set1(pb->top), down = drpo__v4_set1(pb->down);
    const drpo_v4d pu = drpo__v4_set1(pb->pu), zero = drpo__v4_set1(0.0);
    const drpo_v4i all = (drpo_v4i)(zero == zero);
    size_t m = pb->m, j = 0, k = 0;
    drpo_pair *pairs = pb->pairs;
    /* the sums live in locals, not in the returned struct: the copy's
     * stores could otherwise alias them and keep them in memory */
    fill_chain c0, c1;
    drpo_v4d mass_s[2] = {zero, zero}, mass_c[2] = {zero, zero};
    c0.s1 = c0.s2 = c0.blk[0] = c0.blk[1] = zero;
    c0.below = (drpo_v4i){0, 0, 0, 0};
    c1 = c0;
    while (j < m) { /* blocks of 256 */
        size_t end = j + 256 < m ? j + 256 : m;
        c0.blk[0] = c0.blk[1] = c1.blk[0] = c1.blk[1] = zero;
        for (; j + 8 <= end; j += 8) {
            drpo_v4d d0 = top - drpo__v4_load(x + j) * down;
            drpo_v4d d1 = top - drpo__v4_load(x + j + 4) * down;
            drpo_v4d p0 = uniform ? pu : drpo__v4_load(pp + j);
            drpo_v4d p1 = uniform ? pu : drpo__v4_load(pp + j + 4);
            drpo_v4i in0 = fill_lanes(d0, p0, all, lo, hi, vc, uniform, moments, &c0, &c0.below);
            drpo_v4i in1 = fill_lanes(d1, p1, all, lo, hi, vc, uniform, moments, &c1, &c0.below);
            keep(d0, p0, in0, uniform, pairs, &k);
            keep(d1, p1, in1, uniform, pairs, &k);
        }
        for (; j < end; j += 4) { /* the rest: a group of four, then a padded one */
            drpo_v4d d, p;
            drpo_v4i real = drpo__v4_units(pb, j, end, uniform, 0, &d, &p);
            drpo_v4i in = fill_lanes(d, p, real, lo, hi, vc, uniform, moments, &c0, &c0.below);
            keep_tail(d, p, in, uniform, pairs, &k);
        }
        for (int a = 0; a < 2; a++)
            drpo__v4_ksum_add(&mass_s[a], &mass_c[a], c0.blk[a] + c1.blk[a]);
    }
    return fill_join(&c0, &c1, mass_s, mass_c, k);
}

#ifdef DRPO__HAVE_AVX512_CLONE
/* fill_body over a uniform base on eight lanes: the same count, and the
 * moments in lanes j mod 8 as fill_body's two chains hold them (the first
 * the low four); the gaps inside compressed in registers and stored eight
 * at a time (pairs has room: a gap is kept only once read, and a pair is
 * two doubles). */
DRPO__WIDE DRPO__INLINE fill_sums fill_uniform_wide(const drpo_problem *pb, double lo, double hi,
                                                    double centre, int moments)
{
    const __m512d top = _mm512_set1_pd(pb->top), down = _mm512_set1_pd(pb->down),
                  vlo = _mm512_set1_pd(lo), vhi = _mm512_set1_pd(hi),
                  vc = _mm512_set1_pd(centre), zero = _mm512_setzero_pd();
    const double *x = pb->x;
    double *kept = (double *)pb->pairs;
    __m512d s1 = zero, s2 = zero;
    size_t m = pb->m, j = 0, k = 0, below = 0;
    for (; j + 8 <= m; j += 8) {
        __m512d d = _mm512_sub_pd(top, _mm512_mul_pd(_mm512_loadu_pd(x + j), down));
        __mmask8 lt = _mm512_cmp_pd_mask(d, vlo, _CMP_LT_OQ);
        __mmask8 in = _mm512_mask_cmp_pd_mask(_mm512_cmp_pd_mask(d, vlo, _CMP_GE_OQ), d, vhi,
                                              _CMP_LT_OQ);
        below += (size_t)__builtin_popcount(lt);
        __m512d xc = moments >= 2 ? _mm512_sub_pd(d, vc) : d, bw = _mm512_maskz_mov_pd(lt, xc);
        if (moments >= 1)
            s1 = _mm512_add_pd(s1, bw);
        if (moments >= 2)
            s2 = _mm512_add_pd(s2, _mm512_mul_pd(bw, xc));
        _mm512_storeu_pd(kept + k, _mm512_maskz_compress_pd(in, d));
        k += (size_t)__builtin_popcount(in);
    }
    const drpo_v4d z4 = drpo__v4_set1(0.0), vc4 = drpo__v4_set1(centre);
    fill_chain c[2];
    for (int h = 0; h < 2; h++) {
        c[h].below = (drpo_v4i){0, 0, 0, 0};
        c[h].blk[0] = c[h].blk[1] = z4;
    }
    c[0].below[0] = (int64_t)below;
    c[0].s1 = drpo__v8_lo((drpo_v8d)s1);
    c[1].s1 = drpo__v8_hi((drpo_v8d)s1);
    c[0].s2 = drpo__v8_lo((drpo_v8d)s2);
    c[1].s2 = drpo__v8_hi((drpo_v8d)s2);
    for (; j < m; j += 4) { /* as fill_body's last block ends */
        drpo_v4d d, p;
        drpo_v4i real = drpo__v4_units(pb, j, m, 1, 0, &d, &p);
        drpo_v4i inside = fill_lanes(d, p, real, lo, hi, vc4, 1, moments, &c[0], &c[0].below);
        keep_tail(d, p, inside, 1, pb->pairs, &k);
    }
    drpo_v4d mass[2] = {z4, z4}; /* (a uniform base's masses are counted) */
    return fill_join(&c[0], &c[1], mass, mass, k);
}
#endif

/* Instances by base (uniform or weighted) and moments (0: masses only, 1:
 * first moments too, 2: second moments about the centre too); over a
 * uniform base, eight lanes on AVX-512 (on four the pass was bound by its
 * instructions). */
#define FILL_PARAMS (const drpo_problem *pb, double lo, double hi, double centre)
#define FILL_KERNEL(moments)                                                                  \
    DRPO__KERNEL_DISPATCH_WIDE(fill_sums, fill_u##moments, FILL_PARAMS, (pb, lo, hi, centre), \
                               fill_body(pb, lo, hi, centre, 1, moments),                     \
                               FILL_WIDE(pb, lo, hi, centre, moments))                        \
    DRPO__KERNEL_DISPATCH(fill_sums, fill_w##moments, FILL_PARAMS, (pb, lo, hi, centre),      \
                          fill_body(pb, lo, hi, centre, 0, moments))
#ifdef DRPO__HAVE_AVX512_CLONE
#define FILL_WIDE fill_uniform_wide
#else
#define FILL_WIDE(pb, lo, hi, centre, moments) fill_body(pb, lo, hi, centre, 1, moments)
#endif
FILL_KERNEL(0)
FILL_KERNEL(1)
FILL_KERNEL(2)

static fill_sums fill_pass(const drpo_problem *pb, double lo, double hi, double centre,
                           int moments)
{
    static fill_sums (*const kernel[2][3])(const drpo_problem *, double, double, double) = {
        {fill_w0, fill_w1, fill_w2}, {fill_u0, fill_u1, fill_u2}};
    return kernel[pb->uniform != 0][moments](pb, lo, hi, centre);
}

/* Pairs split by [lo, hi) and summarised, four lanes each: every sum any
 * rule's check reads (the cheap ones cost less than choosing).  Narrowing
 * splits a window; the window pass sums its copy (everything inside). */
typedef struct split_acc {
    drpo_v4d mass_s[3], mass_c[3]; /* below, inside, above: compensated across blocks */
    drpo_v4d s1[2], s2[2];         /* below, inside: moments about the centre */
    drpo_v4d next;                 /* least gap above */
} split_acc;

DRPO__INLINE split_acc split_body(const drpo_pair *a, size_t n, double lo, double hi, double c)
{
    const drpo_v4d zero = drpo__v4_set1(0.0), vlo = drpo__v4_set1(lo), vhi = drpo__v4_set1(hi);
    const drpo_v4d centre = drpo__v4_set1(c);
    split_acc r;
    for (int k = 0; k < 3; k++)
        r.mass_s[k] = r.mass_c[k] = zero;
    r.s1[0] = r.s1[1] = r.s2[0] = r.s2[1] = zero;
    r.next = drpo__v4_set1(INFINITY);
    size_t j = 0;
    while (j < n) { /* blocks of 256 pairs */
        size_t end = j + 256 < n ? j + 256 : n;
        drpo_v4d blk[3] = {zero, zero, zero};
        for (; j < end; j += 4) {
            drpo_v4d d, p;
            drpo_v4i real = (drpo_v4i)(zero == zero);
            if (j + 4 <= end) { /* four pairs: gaps and masses apart */
                drpo_v4d u = drpo__v4_load(&a[j].d), v = drpo__v4_load(&a[j + 2].d);
                d = __builtin_shufflevector(u, v, 0, 2, 4, 6);
                p = __builtin_shufflevector(u, v, 1, 3, 5, 7);
            } else { /* the last ones; padded lanes: no mass, gap 0, in no part */
                d = p = zero;
                for (size_t l = 0; l < 4; l++) {
                    d[l] = j + l < end ? a[j + l].d : 0.0;
                    p[l] = j + l < end ? a[j + l].p : 0.0;
                    real[l] = j + l < end ? -1 : 0;
                }
            }
            drpo_v4i below = real & (d < vlo), above = real & (d >= vhi);
            drpo_v4i inside = real & ~(below | above);
            drpo_v4d x = d - centre, pd = p * x, pdd = pd * x;
            blk[0] += drpo__v4_select(below, p, zero);
            blk[1] += drpo__v4_select(inside, p, zero);
            blk[2] += drpo__v4_select(above, p, zero);
            r.s1[0] += drpo__v4_select(below, pd, zero);
            r.s2[0] += drpo__v4_select(below, pdd, zero);
            r.s1[1] += drpo__v4_select(inside, pd, zero);
            r.s2[1] += drpo__v4_select(inside, pdd, zero);
            drpo_v4d cand = drpo__v4_select(above, d, drpo__v4_set1(INFINITY));
            r.next = drpo__v4_select(cand < r.next, cand, r.next);
        }
        for (int k = 0; k < 3; k++)
            drpo__v4_ksum_add(&r.mass_s[k], &r.mass_c[k], blk[k]);
    }
    return r;
}

DRPO__KERNEL_DISPATCH(split_acc, split_pass,
                      (const drpo_pair *a, size_t n, double lo, double hi, double c),
                      (a, n, lo, hi, c), split_body(a, n, lo, hi, c))

/* One pass over the problem: gaps in [lo, hi) copied (unsorted) to pairs,
 * the rest summarised (moments about `centre`). */
static void fill(const drpo_problem *pb, double lo, double hi, double centre, int moments,
                 drpo_window *w)
{
    fill_sums f = fill_pass(pb, lo, hi, centre, moments);
    size_t none = 0;
    if (pb->uniform)
        pairs_of_values(pb->pairs, f.k, pb->pu, 0.0, -1.0, -INFINITY, INFINITY, &none);
    const fill_chain *c = &f.c;
    double scale = pb->uniform ? pb->pu : 1.0; /* counts and sums of d to masses */
    w->win = pb->pairs;
    w->values = NULL;
    w->n = f.k;
    /* the copy's own sums, where a check reads them (chi-square's moments)
     * or they are not counts */
    double win_mass = (double)f.k * pb->pu;
    w->win_s1 = w->win_s2 = 0.0;
    if (moments >= 2 || !pb->uniform) {
        split_acc r = split_pass(pb->pairs, f.k, -INFINITY, INFINITY, centre);
        win_mass = pb->uniform ? win_mass : drpo__v4_ksum_total(r.mass_s[1], r.mass_c[1]);
        w->win_s1 = drpo__v4_hsum(r.s1[1]);
        w->win_s2 = drpo__v4_hsum(r.s2[1]);
    }
    if (pb->uniform) { /* exact counts */
        double below = 0.0;
        for (int l = 0; l < 4; l++)
            below += (double)c->below[l];
        w->below_mass = below * scale;
        w->win_mass = win_mass;
        w->above_mass = ((double)pb->m - below - (double)f.k) * scale;
    } else {
        w->below_mass = drpo__v4_ksum_total(f.mass_s[0], f.mass_c[0]);
        w->win_mass = win_mass;
        w->above_mass = drpo__v4_ksum_total(f.mass_s[1], f.mass_c[1]);
    }
    w->below_s1 = drpo__v4_hsum(c->s1) * scale;
    w->below_s2 = drpo__v4_hsum(c->s2) * scale;
    w->centre = centre;
    w->next = hi; /* a gap (or infinite): see drpo_window */
    w->lo = lo;
    w->hi = hi;
}

/* a + b, rounded once more than the compensated sum would be: masses. */
static double add_mass(double a, double b)
{
    drpo_ksum k = {a, 0.0};
    drpo__ksum_add(&k, b);
    return drpo__ksum_value(&k);
}

/* The sums of a window narrowed to [lo, hi), its pairs left in place: the
 * parts outside folded into the sums below and above. */
static void narrow_sums(const drpo_window *w, double lo, double hi, drpo_window *out)
{
    split_acc r = split_pass(w->win, w->n, lo, hi, w->centre);
    double mass[3], next = w->next;
    for (int k = 0; k < 3; k++)
        mass[k] = drpo__v4_ksum_total(r.mass_s[k], r.mass_c[k]);
    for (int l = 0; l < 4; l++)
        next = r.next[l] < next ? r.next[l] : next;
    *out = *w;
    out->below_mass = add_mass(w->below_mass, mass[0]);
    out->below_s1 += drpo__v4_hsum(r.s1[0]);
    out->below_s2 += drpo__v4_hsum(r.s2[0]);
    out->above_mass = add_mass(w->above_mass, mass[2]);
    out->win_mass = mass[1];
    out->win_s1 = drpo__v4_hsum(r.s1[1]);
    out->win_s2 = drpo__v4_hsum(r.s2[1]);
    out->next = next;
    out->lo = lo;
    out->hi = hi;
}

/* Keep the window's pairs in [lo, hi), in order, at its front (no branch:
 * every pair is written, the count advances when it is kept). */
static void narrow_pairs(drpo_window *w, double lo, double hi)
{
    drpo_pair *a = (drpo_pair *)w->win;
    size_t k = 0;
    for (size_t j = 0; j < w->n; j++) {
        drpo_pair x = a[j];
        a[k] = x;
        k += (size_t)((x.d >= lo) & (x.d < hi));
    }
    w->n = k;
}

/* The size of the sample that predicts a first bracket from m gaps.  A
 * larger sample narrows the bracket, but its draws are reads from all over
 * the data and its selection costs more than the narrowing it saves: at
 * 10^7, 65536 took 2.8 ms against 1.9 for 16384.  Below 2^17 gaps the
 * data sits in cache and a wider window narrows cheaply: CVaR, TV radius
 * and chi-square at 10^4 took 33-50 us with a sample of 2500, 19-23 with
 * 512, and at 5 * 10^4 78-111 us with 4096, 60-98 with 1024 (bench-solve);
 * 512 beats 1024 below about 1.5 * 10^4 gaps. */
static size_t first_sample(size_t m)
{
    size_t s = m >= ((size_t)1 << 18)   ? 16384
               : m >= ((size_t)1 << 17) ? 4096
               : m >= ((size_t)1 << 14) ? 1024
                                        : 512;
    return s > m / 8 ? m / 8 : s; /* (room for bracket: see there) */
}

/* A window of everything, to sample from. */
static void whole_window(drpo_window *w)
{
    clear_sums(w);
    w->win_mass = 1.0;
    w->lo = -INFINITY;
    w->hi = INFINITY;
}

int drpo__loss_bracket(size_t n, const double *loss, double level, drpo_pair *scratch, double *x0,
                       double *x1)
{
    if (n <= NARROW_TO || !(level > 0.0 && level <= 1.0))
        return 0;
    /* the losses as gaps of top 0 and scale 1: -l, ascending as l descends */
    drpo_problem neg = {.m = n, .x = loss, .top = 0.0, .down = 1.0, .uniform = 1,
                        .pu = 1.0 / (double)n};
    drpo_window whole, sample;
    whole_window(&whole);
    size_t s = first_sample(n);
    sample_of(&neg, NULL, n, s, 1.0, &whole, scratch, &sample);
    for (size_t i = 0; i < s; i++)
        if (!isfinite(scratch[i].d))
            return 0;
    double lo, hi;
    /* the level is exact, so the sample's error is the sampling's alone:
     * four binomial standard errors (the stratified sample's are smaller;
     * a miss costs the search a pass) */
    bracket(&sample, level, 4.0 * sqrt(level * (1.0 - level) / (double)s) + 1.0 / (double)s, &lo,
            &hi);
    *x1 = -lo;
    *x0 = -hi;
    return 1;
}

/* The gap of a bracket end of the scan's window, a loss (an infinite one:
 * the infinite gap of the other sign). */
static double loss_gap(const drpo_problem *pb, double x)
{
    return isinf(x) ? -x : pb->top - x * pb->down;
}

/* Whether some gap top - x_j down of x[0, n) is <= g1 or >= g0. */
DRPO__INLINE int outside_body(const double *x, size_t n, double top, double down, double g1,
                              double g0)
{
    const drpo_v4d vt = drpo__v4_set1(top), vd = drpo__v4_set1(down);
    const drpo_v4d v1 = drpo__v4_set1(g1), v0 = drpo__v4_set1(g0);
    drpo_v4i out = {0, 0, 0, 0};
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        drpo_v4d d = vt - drpo__v4_load(x + i) * vd;
        out |= (d <= v1) | (d >= v0);
    }
    int any = drpo__v4_any(out);
    for (; i < n; i++) {
        double d = top - x[i] * down;
        any |= (d <= g1) | (d >= g0);
    }
    return any;
}

DRPO__KERNEL_DISPATCH(int, any_outside,
                      (const double *x, size_t n, double top, double down, double g1, double g0),
                      (x, n, top, down, g1, g0), outside_body(x, n, top, down, g1, g0))

/* The first window from the scan's (drpo_loss_window) as it is, a window of
 * values (see drpo_window): its crossing is a rank among them, with no pairs
 * made and no narrowing (at 10^5 units those took half of CVaR's solve).
 * The gaps of the kept losses lie in [g1, g0] (see window_of_scan); where
 * rounding put one on an end (rare), 0: window_of_scan then. */
static int values_of_scan(const drpo_problem *pb, drpo_window *w)
{
    const drpo_loss_window *f = pb->first;
    double g1 = loss_gap(pb, f->x1), g0 = loss_gap(pb, f->x0);
    double *x = (double *)pb->pairs;
    if (any_outside(x, f->kept, pb->top, pb->down, g1, g0))
        return 0;
    clear_sums(w);
    w->values = x;
    w->top = pb->top;
    w->down = pb->down;
    w->n = f->kept;
    w->below_mass = f->over * pb->pu;
    w->win_mass = (double)f->kept * pb->pu;
    w->above_mass = ((double)pb->m - f->over - (double)f->kept) * pb->pu;
    w->lo = isinf(g1) ? g1 : nextafter(g1, INFINITY);
    w->hi = w->next = g0;
    return 1;
}

/* The first window from the scan's (drpo_loss_window): its losses made gaps,
 * in place.  The gap of every loss >= x1 is <= g1 = g(x1), that of every one
 * kept in [g1, g0] (g0 = g(x0), the gap of the units at x0: a gap itself),
 * that of every other >= g0.  With the kept gaps equal to g1 counted below
 * and those equal to g0 above (rounding can make a few), that is exactly the
 * bracket [lo, hi) with lo the double just above g1 and hi = g0. */
static void window_of_scan(const drpo_problem *pb, drpo_window *w)
{
    const drpo_loss_window *f = pb->first;
    double g1 = loss_gap(pb, f->x1), g0 = loss_gap(pb, f->x0);
    drpo_pair *pairs = pb->pairs;
    size_t at_g0 = 0, at_g1 = pairs_of_values(pairs, f->kept, pb->pu, pb->top, pb->down, g1, g0,
                                                &at_g0);
    double below = f->over + (double)at_g1;
    size_t k = f->kept - at_g1 - at_g0;
    clear_sums(w);
    w->win = pairs;
    w->n = f->kept;
    w->below_mass = below * pb->pu;
    w->win_mass = (double)k * pb->pu;
    w->above_mass = ((double)pb->m - below - (double)k) * pb->pu;
    w->lo = isinf(g1) ? g1 : nextafter(g1, INFINITY);
    w->hi = w->next = g0;
    if (k < f->kept) /* the ends' ties (rare): out of the window */
        narrow_pairs(w, w->lo, w->hi);
}

/* After a first pass whose bracket missed (where: < 0 below it, > 0 above),
 * the bracket for the second, inside the part the crossing lies in, where
 * the sample's gaps in that part, with the pass's exact sums, predict it
 * (0 where too few sampled gaps lie there).
 * The whole part, copied and then narrowed, took as long as the rest of
 * the solve: on heavy tails the sample, short of the largest losses whose
 * small gaps weigh most in the moments, missed chi-square's crossing in a
 * quarter to a half of the solves (Pareto losses, radius 3 or penalty
 * 0.5), and the part was a sixth of the data above or four fifths below.
 * The sample is overwritten. */
static int predict_again(const drpo_window *w, int where, const drpo_window_rule *rule,
                         drpo_window *sample, double *lo, double *hi)
{
    drpo_window part = *w; /* the part, as a window of its own */
    if (where > 0) {
        part.below_mass = add_mass(w->below_mass, w->win_mass);
        part.below_s1 = w->below_s1 + w->win_s1;
        part.below_s2 = w->below_s2 + w->win_s2;
        part.win_mass = w->above_mass;
        part.above_mass = 0.0;
        part.lo = w->hi;
        part.hi = INFINITY;
    } else {
        part.below_mass = part.below_s1 = part.below_s2 = 0.0;
        part.win_mass = w->below_mass;
        part.above_mass = add_mass(w->win_mass, w->above_mass);
        part.lo = -INFINITY;
        part.hi = w->lo;
    }
    /* the sample's gaps in the part, their masses scaled to the part's */
    drpo_window in = *sample;
    narrow_pairs(&in, part.lo, part.hi);
    split_acc r = split_pass(in.win, in.n, -INFINITY, INFINITY, w->centre);
    double mass = drpo__v4_ksum_total(r.mass_s[1], r.mass_c[1]);
    if (in.n < 32 || !(mass > 0.0) || !(part.win_mass > 0.0))
        return 0;
    double scale = part.win_mass / mass;
    drpo_pair *pairs = (drpo_pair *)in.win;
    for (size_t i = 0; i < in.n; i++)
        pairs[i].p *= scale;
    if (where < 0) {
        /* anchored at the part's top: the pass's exact sums over the part
         * less the sample's, so that the sample's running sums reach the
         * exact ones at lo.  The largest losses (smallest gaps), which the
         * sample misses and which bias its moments, then count exactly,
         * while the sampled gaps near lo, where the first bracket put the
         * crossing, stand for themselves.  (From the bottom, the second
         * bracket missed again in a quarter of such solves.)  The sums
         * below may then be negative: the prediction takes differences.
         * (The masses need no anchor: the sample's are scaled to the
         * pass's below lo.) */
        part.below_s1 = w->below_s1 - scale * drpo__v4_hsum(r.s1[1]);
        part.below_s2 = w->below_s2 - scale * drpo__v4_hsum(r.s2[1]);
    }
    const drpo_pair *kept = in.win;
    size_t k = in.n;
    in = part;
    in.win = kept;
    in.n = k;
    in.next = INFINITY;
    double a, b;
    bracket(&in, rule->predict(&part, &in, rule->ctx), predict_margin(&in), &a, &b);
    *lo = a > part.lo ? a : part.lo;
    *hi = b < part.hi ? b : part.hi;
    return *lo < *hi;
}

drpo_crossing drpo__window_crossing(const drpo_window *w, double target, int descending, double pu,
                                    double *scratch)
{
    drpo_pair *win = (drpo_pair *)w->win;
    double start = descending ? w->above_mass : w->below_mass;
    drpo_crossing c = {w->next, start, 0.0, 0};
    if (w->n == 0)
        return c;
    if (pu > 0.0 && w->values) /* (the doubles after them are free) */
        return drpo__rank_crossing(w->values, w->n, w->top, w->down, nearbyint(start / pu), pu,
                                   target, descending, scratch, w->values + w->n);
    if (pu > 0.0) {
        /* the window's masses beyond it are counts times pu to a few ulps
         * (counted, or summed compensated): their ratio to pu rounds to the
         * count.  Its pairs, once their gaps are copied, are the buffers. */
        for (size_t i = 0; i < w->n; i++)
            scratch[i] = win[i].d;
        return drpo__rank_crossing(scratch, w->n, 0.0, -1.0, nearbyint(start / pu), pu, target,
                                   descending, (double *)win, (double *)win + w->n);
    }
    c.reached = drpo__pairs_crossing(win, w->n, start, target, descending, &c.gap);
    if (!c.reached) /* its last gap in scan order */
        for (size_t i = 0; i < w->n; i++)
            if (i == 0 || (descending ? win[i].d < c.gap : win[i].d > c.gap))
                c.gap = win[i].d;
    drpo_ksum before_k = {start, 0.0}, at_k = {0.0, 0.0};
    for (size_t i = 0; i < w->n; i++) {
        if (descending ? win[i].d > c.gap : win[i].d < c.gap)
            drpo__ksum_add(&before_k, win[i].p);
        else if (win[i].d == c.gap)
            drpo__ksum_add(&at_k, win[i].p);
    }
    c.before = drpo__ksum_value(&before_k);
    c.at = drpo__ksum_value(&at_k);
    return c;
}

size_t drpo__gaps_below(const drpo_problem *pb, double tau, double *mass)
{
    drpo_window w;
    fill(pb, -INFINITY, tau, 0.0, 0, &w);
    *mass = w.win_mass;
    return w.n;
}

int drpo__window_find(const drpo_problem *pb, const drpo_window_rule *rule, drpo_window *w)
{
    size_t m = pb->m;
    double lo = -INFINITY, hi = INFINITY;
    /* second moments are summed about a point near the active set's mean:
     * the mean of the sampled gaps below the bracket (else 0: raw moments,
     * whose first loses nothing over gaps >= 0).  Below its lower end: those
     * gaps are inside the active set; below its upper end they could reach
     * into a spread-out part far above a tight active set, and about such a
     * centre the squared sums kept none of its digits */
    double centre = 0.0;
    /* a rule of masses alone may start from the window the scan took */
    int scanned = pb->first && pb->uniform && rule->moments == 0, sampled = 0;
    drpo_window sample; /* (in the scratch, where the passes leave it) */
    if (scanned) {
        if (!values_of_scan(pb, w))
            window_of_scan(pb, w);
        lo = w->lo;
        hi = w->hi;
    } else if (m > NARROW_TO) { /* predict the crossing from a sample of everything */
        drpo_window whole;
        whole_window(&whole);
        sample_of(pb, NULL, m, first_sample(m), 1.0, &whole, (drpo_pair *)pb->scratch, &sample);
        sampled = 1;
        bracket(&sample, rule->predict(&whole, &sample, rule->ctx), predict_margin(&sample), &lo,
                &hi);
        if (rule->moments >= 2)
            centre = mean_below(&sample, lo, centre);
    }
    int passes = 0;
    double known_lo = -INFINITY, known_hi = INFINITY; /* where the checks put the crossing */
    for (;;) { /* over the data until the bracket holds the crossing */
        if (!scanned || passes > 0)
            fill(pb, lo, hi, centre, rule->moments, w);
        passes++;
        int where = rule->check(w, rule->ctx);
        if (where == 0 || (isinf(lo) && isinf(hi)))
            break;
        if (where > 0)
            known_lo = hi;
        else
            known_hi = lo;
        if (!(known_lo < known_hi) || passes > 2) {
            /* a check that sends the search back where it came from (the
             * same criterion at a bracket end, from sums rounded another way:
             * it went round for ever): everything */
            lo = -INFINITY;
            hi = INFINITY;
        } else if (passes > 1 || !sampled || !predict_again(w, where, rule, &sample, &lo, &hi)) {
            /* (after a second bracket that missed too: the rest) */
            lo = known_lo;
            hi = known_hi;
        }
    }
    /* narrow the copy in place; its samples go to q, free until the end
     * (values are ranked whole: see values_of_scan) */
    while (!w->values && w->n > NARROW_TO) {
        size_t s = w->n / 8 < 4096 ? w->n / 8 : 4096;
        drpo_window sample, narrower;
        sample_of(pb, w->win, w->n, s, w->win_mass, w, (drpo_pair *)pb->scratch, &sample);
        double a, b;
        bracket(&sample, rule->predict(w, &sample, rule->ctx), predict_margin(&sample), &a, &b);
        a = a > w->lo ? a : w->lo;
        b = b < w->hi ? b : w->hi;
        if (isinf(a) && isinf(b))
            break;
        narrow_sums(w, a, b, &narrower);
        if (rule->check(&narrower, rule->ctx) != 0)
            break; /* the sample missed: keep what there is */
        size_t before = w->n;
        narrow_pairs(w, a, b);
        narrower.n = w->n;
        *w = narrower;
        if (w->n >= before)
            break; /* (nothing left out: no progress) */
    }
    return passes;
}

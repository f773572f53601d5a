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
 * how much gets looked at. */
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
    w->next = INFINITY;
}

/* A stratified sample of s gaps into out (from the problem's arrays
 * when pairs is NULL, else from pairs[0, n)), masses scaled to sum to mass,
 * as a window with the parent's sums below it. */
static void sample_of(const drpo_problem *pb, const drpo_pair *pairs, size_t n, size_t s,
                      double mass, const drpo_window *parent, drpo_pair *out, drpo_window *w)
{
    double total = 0.0;
    for (size_t i = 0; i < s; i++) { /* one gap from each of s equal strata */
        size_t lo = i * n / s, hi = (i + 1) * n / s;
        size_t j = lo + (size_t)(((mix(i + 1) >> 32) * (uint64_t)(hi - lo)) >> 32);
        out[i] = pairs ? pairs[j] : (drpo_pair){drpo__gap(pb, j), drpo__mass(pb, j)};
        total += out[i].p;
    }
    for (size_t i = 0; i < s; i++)
        out[i].p *= mass / total;
    *w = *parent;
    w->win = out;
    w->n = s;
    w->win_mass = mass;
    w->next = INFINITY;
}

/* The gaps at a fraction of a sample's mass, +- 3 standard errors, by
 * selection (the sample is reordered). */
static void bracket(const drpo_window *sample, double level, double *lo, double *hi)
{
    double delta = 3.0 / sqrt((double)sample->n), a = level - delta, b = level + delta;
    double total = 0.0;
    for (size_t i = 0; i < sample->n; i++)
        total += sample->win[i].p;
    drpo_pair *pairs = (drpo_pair *)sample->win;
    if (!(a > 0.0) || !drpo__pairs_crossing(pairs, sample->n, 0.0, a * total, 0, lo))
        *lo = -INFINITY;
    if (!(b < 1.0) || !drpo__pairs_crossing(pairs, sample->n, 0.0, b * total, 0, hi))
        *hi = INFINITY;
}

static void add_below(drpo_window *w, const drpo_ksum *mass, double s1, double s2)
{
    drpo_ksum k = {w->below_mass, 0.0};
    drpo__ksum_add(&k, mass->s);
    drpo__ksum_add(&k, mass->c);
    w->below_mass = drpo__ksum_value(&k);
    w->below_s1 += s1;
    w->below_s2 += s2;
}

/* Sums of one pass, four lanes each: masses in plain blocks compensated
 * across blocks (or counts, with a uniform base), moments plain. */
typedef struct fill_sums {
    drpo_v4d mass_s[3], mass_c[3]; /* below, inside, above: compensated */
    drpo_v4i count[2];             /* a uniform base: units below and inside */
    drpo_v4d s1[2], s2[2];         /* below, inside */
    drpo_v4d next;
    size_t k; /* pairs copied */
} fill_sums;

/* Four gaps' share of the pass.  w: their masses (unless the base is
 * uniform); real: the lanes that hold a gap (all but a padded tail). */
DRPO__INLINE drpo_v4i fill_lanes(drpo_v4d d, drpo_v4d w, drpo_v4i real, double lo, double hi,
                                 int uniform, int moments, drpo_v4d blk[3], fill_sums *f)
{
    drpo_v4i below = real & (d < lo), above = real & (d >= hi);
    drpo_v4i inside = real & ~(below | above);
    drpo_v4d zero = drpo__v4_set1(0.0);
    /* a uniform base counts (a true lane is -1) and sums d itself; the units
     * above follow from the total */
    drpo_v4d bw = uniform ? drpo__v4_select(below, d, zero) : drpo__v4_select(below, w, zero);
    drpo_v4d iw = uniform ? drpo__v4_select(inside, d, zero) : drpo__v4_select(inside, w, zero);
    if (uniform) {
        f->count[0] -= below;
        f->count[1] -= inside;
    } else {
        blk[0] += bw;
        blk[1] += iw;
        blk[2] += drpo__v4_select(above, w, zero);
    }
    if (moments >= 1) {
        f->s1[0] += uniform ? bw : bw * d;
        f->s1[1] += uniform ? iw : iw * d;
    }
    if (moments >= 2) {
        f->s2[0] += (uniform ? bw : bw * d) * d;
        f->s2[1] += (uniform ? iw : iw * d) * d;
    }
    f->next = drpo__v4_select(above & (d < f->next), d, f->next);
    return inside;
}

/* Copy the gaps of `inside` among the first `lanes` to pairs (branch-free:
 * each lane written, kept if inside). */
DRPO__INLINE void keep(drpo_v4d d, drpo_v4d p, drpo_v4i inside, int lanes, fill_sums *f,
                       drpo_pair *pairs)
{
    for (int l = 0; l < lanes; l++) { /* (never past the last unit: pairs holds m) */
        pairs[f->k].d = d[l];
        pairs[f->k].p = p[l];
        f->k += (size_t)(inside[l] & 1);
    }
}

/* `uniform` is a constant after inlining: masses are then counted, and the
 * moments are sums of d and d^2, scaled by the mass at the end. */
DRPO__INLINE fill_sums fill_body(const drpo_problem *pb, double lo, double hi, int uniform,
                                 int moments)
{
    const double *x = pb->x, *pp = pb->p;
    const drpo_v4d top = drpo__v4_set1(pb->top), down = drpo__v4_set1(pb->down);
    const drpo_v4d pu = drpo__v4_set1(pb->pu), zero = drpo__v4_set1(0.0);
    const drpo_v4i all = (drpo_v4i)(zero == zero);
    size_t m = pb->m, j = 0;
    fill_sums f;
    for (int a = 0; a < 3; a++)
        f.mass_s[a] = f.mass_c[a] = zero;
    f.s1[0] = f.s1[1] = f.s2[0] = f.s2[1] = zero;
    f.count[0] = f.count[1] = (drpo_v4i){0, 0, 0, 0};
    f.next = drpo__v4_set1(INFINITY);
    f.k = 0;
    while (j < m) { /* blocks of 256 */
        drpo_v4d blk[3] = {zero, zero, zero};
        size_t end = j + 256 < m ? j + 256 : m;
        for (; j + 8 <= end; j += 8) { /* eight at a time: one test for the rare copy */
            drpo_v4d d0 = top - drpo__v4_load(x + j) * down;
            drpo_v4d d1 = top - drpo__v4_load(x + j + 4) * down;
            drpo_v4d p0 = uniform ? pu : drpo__v4_load(pp + j);
            drpo_v4d p1 = uniform ? pu : drpo__v4_load(pp + j + 4);
            drpo_v4i in0 = fill_lanes(d0, p0, all, lo, hi, uniform, moments, blk, &f);
            drpo_v4i in1 = fill_lanes(d1, p1, all, lo, hi, uniform, moments, blk, &f);
            if (drpo__v4_any(in0 | in1)) { /* the bracket holds a few per cent of the gaps */
                keep(d0, p0, in0, 4, &f, pb->pairs);
                keep(d1, p1, in1, 4, &f, pb->pairs);
            }
        }
        for (; j < end; j += 4) { /* the rest: a group of four, then a padded one */
            drpo_v4d d, p;
            drpo_v4i real = all;
            if (j + 4 <= end) {
                d = top - drpo__v4_load(x + j) * down;
                p = uniform ? pu : drpo__v4_load(pp + j);
            } else {
                real = drpo__v4_tail(pb, j, end, &d, &p);
            }
            drpo_v4i in = fill_lanes(d, p, real, lo, hi, uniform, moments, blk, &f);
            keep(d, p, in, end - j < 4 ? (int)(end - j) : 4, &f, pb->pairs);
        }
        for (int a = 0; a < 3; a++)
            drpo__v4_ksum_add(&f.mass_s[a], &f.mass_c[a], blk[a]);
    }
    return f;
}

/* Instances by base (uniform or weighted) and moments (0: masses only, 1:
 * first moments too, 2: second moments too). */
#define FILL_KERNEL(name, uniform, moments)                                                   \
    DRPO__KERNEL_DISPATCH(fill_sums, name, (const drpo_problem *pb, double lo, double hi),    \
                          (pb, lo, hi), fill_body(pb, lo, hi, uniform, moments))
FILL_KERNEL(fill_u0, 1, 0)
FILL_KERNEL(fill_u1, 1, 1)
FILL_KERNEL(fill_u2, 1, 2)
FILL_KERNEL(fill_w0, 0, 0)
FILL_KERNEL(fill_w1, 0, 1)
FILL_KERNEL(fill_w2, 0, 2)

static fill_sums fill_pass(const drpo_problem *pb, double lo, double hi, int moments)
{
    static fill_sums (*const kernel[2][3])(const drpo_problem *, double, double) = {
        {fill_w0, fill_w1, fill_w2}, {fill_u0, fill_u1, fill_u2}};
    return kernel[pb->uniform != 0][moments](pb, lo, hi);
}

/* One pass over the problem: gaps in [lo, hi) copied (unsorted) to pairs,
 * the rest summarised. */
static void fill(const drpo_problem *pb, double lo, double hi, int moments, drpo_window *w)
{
    fill_sums f = fill_pass(pb, lo, hi, moments);
    double scale = pb->uniform ? pb->pu : 1.0; /* counts and sums of d to masses */
    double next = INFINITY;
    for (int l = 0; l < 4; l++)
        next = f.next[l] < next ? f.next[l] : next;
    w->win = pb->pairs;
    w->n = f.k;
    if (pb->uniform) { /* exact counts */
        double below = 0.0, inside = 0.0;
        for (int l = 0; l < 4; l++) {
            below += (double)f.count[0][l];
            inside += (double)f.count[1][l];
        }
        w->below_mass = below * scale;
        w->win_mass = inside * scale;
        w->above_mass = ((double)pb->m - below - inside) * scale;
    } else {
        w->below_mass = drpo__v4_ksum_total(f.mass_s[0], f.mass_c[0]);
        w->win_mass = drpo__v4_ksum_total(f.mass_s[1], f.mass_c[1]);
        w->above_mass = drpo__v4_ksum_total(f.mass_s[2], f.mass_c[2]);
    }
    w->below_s1 = drpo__v4_hsum(f.s1[0]) * scale;
    w->below_s2 = drpo__v4_hsum(f.s2[0]) * scale;
    w->win_s1 = drpo__v4_hsum(f.s1[1]) * scale;
    w->win_s2 = drpo__v4_hsum(f.s2[1]) * scale;
    w->next = next;
    w->lo = lo;
    w->hi = hi;
}

static void swap(drpo_pair *a, drpo_pair *b)
{
    drpo_pair t = *a;
    *a = *b;
    *b = t;
}

/* Narrow a window in place to [lo, hi): three-way partition of its pairs,
 * the parts outside folded into the sums. */
static void narrow(const drpo_window *w, double lo, double hi, drpo_window *out)
{
    drpo_pair *a = (drpo_pair *)w->win;
    size_t i = 0, first = 0, last = w->n; /* [0, first) below, [last, n) above */
    while (i < last) {
        if (a[i].d < lo)
            swap(&a[i++], &a[first++]);
        else if (a[i].d >= hi)
            swap(&a[i], &a[--last]);
        else
            i++;
    }
    drpo_ksum bm = {0.0, 0.0}, mm = {0.0, 0.0}, am = {0.0, 0.0};
    double b1 = 0.0, b2 = 0.0, m1 = 0.0, m2 = 0.0, next = w->next;
    for (size_t j = 0; j < first; j++) {
        drpo__ksum_add(&bm, a[j].p);
        b1 += a[j].p * a[j].d;
        b2 += a[j].p * a[j].d * a[j].d;
    }
    for (size_t j = first; j < last; j++) {
        drpo__ksum_add(&mm, a[j].p);
        m1 += a[j].p * a[j].d;
        m2 += a[j].p * a[j].d * a[j].d;
    }
    for (size_t j = last; j < w->n; j++) {
        drpo__ksum_add(&am, a[j].p);
        next = a[j].d < next ? a[j].d : next;
    }
    *out = *w;
    add_below(out, &bm, b1, b2);
    drpo_ksum ab = {w->above_mass, 0.0};
    drpo__ksum_add(&ab, am.s);
    drpo__ksum_add(&ab, am.c);
    out->above_mass = drpo__ksum_value(&ab);
    out->win = a + first;
    out->n = last - first;
    out->win_mass = drpo__ksum_value(&mm);
    out->win_s1 = m1;
    out->win_s2 = m2;
    out->next = next;
    out->lo = lo;
    out->hi = hi;
}

int drpo__window_find(const drpo_problem *pb, const drpo_window_rule *rule, drpo_window *w)
{
    size_t m = pb->m;
    double lo = -INFINITY, hi = INFINITY;
    if (m > NARROW_TO) { /* predict the crossing from a sample of everything */
        drpo_window whole, sample;
        clear_sums(&whole);
        whole.win_mass = 1.0;
        whole.lo = -INFINITY;
        whole.hi = INFINITY;
        size_t s = m >= ((size_t)1 << 22) ? (size_t)1 << 16 : m >= ((size_t)1 << 18) ? 16384 : 4096;
        if (s > m / 4)
            s = m / 4;
        sample_of(pb, NULL, m, s, 1.0, &whole, pb->pairs, &sample);
        bracket(&sample, rule->predict(&whole, &sample, rule->ctx), &lo, &hi);
    }
    int passes = 0;
    for (;;) { /* over the data until the bracket holds the crossing */
        fill(pb, lo, hi, rule->moments, w);
        passes++;
        int where = rule->check(w, rule->ctx);
        if (where == 0 || (isinf(lo) && isinf(hi)))
            break;
        if (where < 0) {
            hi = lo;
            lo = -INFINITY;
        } else {
            lo = hi;
            hi = INFINITY;
        }
    }
    /* narrow the copy in place; its samples go to q, free until the end */
    while (w->n > NARROW_TO) {
        size_t s = w->n / 8 < 4096 ? w->n / 8 : 4096;
        drpo_window sample, narrower;
        sample_of(pb, w->win, w->n, s, w->win_mass, w, (drpo_pair *)pb->scratch, &sample);
        double a, b;
        bracket(&sample, rule->predict(w, &sample, rule->ctx), &a, &b);
        a = a > w->lo ? a : w->lo;
        b = b < w->hi ? b : w->hi;
        if (isinf(a) && isinf(b))
            break;
        narrow(w, a, b, &narrower);
        if (rule->check(&narrower, rule->ctx) != 0 || narrower.n >= w->n)
            break; /* the sample missed: keep what there is */
        *w = narrower;
    }
    return passes;
}

/* weights.c - the last pass of every solve: the worst-case weights written
 * from the rule a solver found, with the statistics the diagnostics need.
 *
 * q_j = (p_j c(d_j)) * scale, where c is a step function of the gap
 * (CVaR, TV, the base and the argmax set), a ramp (chi-square) or an
 * exponential (KL; or p_j c(d_j) as its last pass stored it), and scale
 * normalises.  One vectorised read of the
 * losses (or gaps) and one write of q, so a solve never stores q twice. */
#include "../internal.h"
#include "../vec.h"

#include <math.h>

/* The running statistics of the pass, four lanes each; where a step over
 * a weighted base measures (see drpo_qrule.value_excess), the excess, the
 * mass beyond t (compensated across blocks) and the argmax units' count. */
typedef struct q_acc {
    drpo_v4d sum_s, sum_c, sum2, max, support, cmax, div;
    drpo_v4d excess, moved_s, moved_c;
    size_t tops;
} q_acc;

/* What a step pass sums beyond the weights' statistics (a constant after
 * inlining: the passes are bound by their arithmetic, so each instance does
 * only what its rules read): the excess and the argmax units' indices (TV:
 * a deferred weight), or the deficit (CVaR over a uniform base). */
enum { STEP_PLAIN, STEP_EXCESS, STEP_DEFICIT };

/* The argmax units (gap 0) of x[start, end) appended to tops (pb->pairs:
 * m indices fit, a pair is 16 bytes): a block that had one is looked at
 * again rather than every group tested, as they are rare. */
static size_t keep_tops(const drpo_problem *pb, size_t start, size_t end, size_t k)
{
    size_t *tops = (size_t *)pb->pairs;
    for (size_t i = start; i < end; i++)
        if (drpo__gap(pb, i) == 0.0)
            tops[k++] = i;
    return k;
}

/* Four weights' share of the statistics. */
typedef struct q_part {
    drpo_v4d q, sq, support, ratio, div;
} q_part;

/* A rule's numbers as vectors, made once per pass (built inside the loop,
 * GCC re-splats them from scalars at every step). */
typedef struct q_shape {
    drpo_v4d t, neg_t, lambda, c_top, c_below, c_at, c_above, scale;
    const double *w;
} q_shape;

DRPO__INLINE q_shape shape_of(const drpo_qrule *r)
{
    q_shape v = {drpo__v4_set1(r->t),       drpo__v4_set1(-r->t),      drpo__v4_set1(r->lambda),
                 drpo__v4_set1(r->c_top),   drpo__v4_set1(r->c_below), drpo__v4_set1(r->c_at),
                 drpo__v4_set1(r->c_above), drpo__v4_set1(r->scale),   r->w};
    return v;
}

/* The unnormalised coefficient c(d) of four gaps. */
DRPO__INLINE drpo_v4d coefficient(drpo_v4d d, const q_shape *r, int kind)
{
    const drpo_v4d zero = drpo__v4_set1(0.0), t = r->t;
    if (kind == DRPO__Q_STEP) {
        drpo_v4d c = drpo__v4_select(d == t, r->c_at, r->c_above);
        c = drpo__v4_select(d < t, r->c_below, c);
        return drpo__v4_select(d == zero, r->c_top, c);
    }
    if (kind == DRPO__Q_RAMP) {
        drpo_v4d x = t - d;
        return drpo__v4_select(x > zero, x, zero);
    }
    if (kind == DRPO__Q_RAMP_DIV) { /* 1 + (t - d) / lambda: no overflow at any lambda */
        drpo_v4d x = drpo__v4_set1(1.0) + (t - d) / r->lambda;
        return drpo__v4_select(x > zero, x, zero);
    }
    if (kind == DRPO__Q_EXP_PRECISE) /* as kl.c sums Z near u = 0 */
        return 1.0 + drpo__v4_expm1_small(r->neg_t * d);
    return drpo__v4_exp_nonpos(r->neg_t * d);
}

/* Four weights: written (the lanes in `real`), and their share of the
 * statistics. */
DRPO__INLINE q_part q_lanes(drpo_v4d d, drpo_v4d p, drpo_v4i real, const q_shape *r, int kind,
                            int divergence, size_t j, double *out, int stream)
{
    const drpo_v4d zero = drpo__v4_set1(0.0), scale = r->scale;
    drpo_v4d c = kind == DRPO__Q_STORED ? zero : coefficient(d, r, kind), q;
    if (kind != DRPO__Q_STORED) {
        q = (p * c) * scale;
    } else if (real[3]) {
        q = drpo__v4_load(r->w + j) * scale;
    } else { /* the tail: lanes past the end are zero */
        drpo_v4d w = zero;
        for (int l = 0; l < 4 && real[l]; l++)
            w[l] = r->w[j + l];
        q = w * scale;
    }
    out += j;
    if (real[3])
        drpo__v4_store_out(out, q, stream);
    else
        for (int l = 0; l < 4 && real[l]; l++)
            out[l] = q[l];
    q_part x = {q, q * q, drpo__v4_ones(q > zero), zero, zero};
    drpo_v4d cn = c * scale; /* q / p */
    switch (divergence) {
    case DRPO__DIV_MAX_RATIO: x.ratio = drpo__v4_select(q > zero, cn, zero); break;
    case DRPO__DIV_ABS: x.div = (drpo_v4d)(~(drpo_v4i)drpo__v4_set1(-0.0) & (drpo_v4i)(q - p)); break;
    case DRPO__DIV_CHI2: { /* (p e) e: p e^2 may overflow where the product does not;
                              padded lanes (p = 0) must not make 0 * inf */
        drpo_v4d e = cn - drpo__v4_set1(1.0);
        x.div = drpo__v4_select(real, (p * e) * e, zero);
        break;
    }
    default: break;
    }
    return x;
}

DRPO__INLINE drpo_v4d vmax(drpo_v4d a, drpo_v4d b) { return drpo__v4_select(b > a, b, a); }

/* Two groups' shares into the running statistics: combined first, so each
 * running value waits on one operation per eight weights. */
DRPO__INLINE void acc_add(q_acc *a, drpo_v4d *block, q_part x, q_part y)
{
    *block += x.q + y.q;
    a->sum2 += x.sq + y.sq;
    a->max = vmax(a->max, vmax(x.q, y.q));
    a->support += x.support + y.support;
    a->cmax = vmax(a->cmax, vmax(x.ratio, y.ratio));
    a->div += x.div + y.div;
}

/* Where a pass measures the excess: four units' share (masses p). */
DRPO__INLINE void excess_lanes(drpo_v4d d, drpo_v4d p, const q_shape *r, drpo_v4d *excess,
                               drpo_v4d *moved, drpo_v4i *tops)
{
    const drpo_v4d zero = drpo__v4_set1(0.0);
    drpo_v4d pa = drpo__v4_select(d > r->t, p, zero);
    *moved += pa;
    *excess += pa * (d - r->t);
    *tops |= d == zero;
}

/* The pass itself; `stream` a constant after inlining, so that the choice
 * of store is made once, not at every group (a branch there made GCC keep
 * the running values in memory).  `measure`: STEP_PLAIN or, over a weighted
 * base, STEP_EXCESS (the argmax units' indices kept only where the rule
 * defers their weight). */
DRPO__INLINE q_acc q_pass(const drpo_problem *pb, const q_shape *r, double *out, int kind,
                          int divergence, int uniform, int stream, int measure, int keep)
{
    const double *x = pb->x, *pp = pb->p;
    const drpo_v4d top = drpo__v4_set1(pb->top), down = drpo__v4_set1(pb->down);
    const drpo_v4d pu = drpo__v4_set1(pb->pu), zero = drpo__v4_set1(0.0);
    const drpo_v4i all = zero == zero, no = {0, 0, 0, 0};
    const q_part none = {zero, zero, zero, zero, zero};
    size_t m = pb->m, j = 0;
    q_acc a = {zero, zero, zero, zero, zero, zero, zero, zero, zero, zero, 0};
    while (j < m) { /* blocks of 256, the sums compensated across blocks */
        drpo_v4d block = zero, moved = zero;
        drpo_v4i tops = no;
        size_t start = j, end = j + 256 < m ? j + 256 : m;
        for (; j + 8 <= end; j += 8) {
            drpo_v4d d0 = top - drpo__v4_load(x + j) * down;
            drpo_v4d d1 = top - drpo__v4_load(x + j + 4) * down;
            drpo_v4d p0 = uniform ? pu : drpo__v4_load(pp + j);
            drpo_v4d p1 = uniform ? pu : drpo__v4_load(pp + j + 4);
            q_part x0 = q_lanes(d0, p0, all, r, kind, divergence, j, out, stream);
            q_part x1 = q_lanes(d1, p1, all, r, kind, divergence, j + 4, out, stream);
            acc_add(&a, &block, x0, x1);
            if (measure == STEP_EXCESS) {
                excess_lanes(d0, p0, r, &a.excess, &moved, &tops);
                excess_lanes(d1, p1, r, &a.excess, &moved, &tops);
            }
        }
        for (; j < end; j += 4) { /* a group of four, then a padded one (no mass, gap 0) */
            drpo_v4d d, p;
            drpo_v4i real = drpo__v4_units(pb, j, end, uniform, 0, &d, &p);
            acc_add(&a, &block, q_lanes(d, p, real, r, kind, divergence, j, out, stream), none);
            if (measure == STEP_EXCESS)
                excess_lanes(d, p, r, &a.excess, &moved, &tops);
        }
        drpo__v4_ksum_add(&a.sum_s, &a.sum_c, block);
        if (measure == STEP_EXCESS) {
            drpo__v4_ksum_add(&a.moved_s, &a.moved_c, moved);
            if (keep && drpo__v4_any(tops))
                a.tops = keep_tops(pb, start, end, a.tops);
        }
    }
    drpo__v4_stream_end(stream);
    return a;
}

/* The argmax units' weight, deferred by the rule until the mass beyond t
 * was known: written over the pass's, whose share of the statistics (the
 * absolute divergence's: TV's rules alone defer) is replaced by theirs. */
static void deferred_tops(const drpo_problem *pb, const drpo_qrule *rule, double moved,
                          size_t count, double *out, drpo_qstats *s)
{
    const size_t *tops = (const size_t *)pb->pairs;
    double c = rule->c_top + rule->top_per_moved * moved;
    drpo_ksum sum = {s->sum, 0.0};
    for (size_t i = 0; i < count; i++) {
        double p = pb->p[tops[i]], was = out[tops[i]], q = (p * c) * rule->scale;
        out[tops[i]] = q;
        drpo__ksum_add(&sum, q - was);
        s->sum2 += q * q - was * was;
        s->max = q > s->max ? q : s->max;
        s->div += fabs(q - p) - fabs(was - p);
    }
    s->sum = drpo__ksum_value(&sum);
}

DRPO__INLINE drpo_qstats q_body(const drpo_problem *pb, const drpo_qrule *rule, double *out,
                                int kind, int divergence, int uniform, int measure)
{
    const q_shape r = shape_of(rule);
    int keep = measure == STEP_EXCESS && rule->top_per_moved != 0.0;
    q_acc a = drpo__stream_output(out, pb->m)
                  ? q_pass(pb, &r, out, kind, divergence, uniform, 1, measure, keep)
                  : q_pass(pb, &r, out, kind, divergence, uniform, 0, measure, keep);
    drpo_qstats s;
    s.excess = drpo__v4_hsum(a.excess);
    s.deficit = 0.0;
    s.sum = drpo__v4_ksum_total(a.sum_s, a.sum_c);
    s.sum2 = drpo__v4_hsum(a.sum2);
    s.support = drpo__v4_hsum(a.support);
    s.div = drpo__v4_hsum(a.div);
    s.max = s.max_ratio = 0.0;
    for (int l = 0; l < 4; l++) {
        s.max = a.max[l] > s.max ? a.max[l] : s.max;
        s.max_ratio = a.cmax[l] > s.max_ratio ? a.cmax[l] : s.max_ratio;
    }
    if (keep)
        deferred_tops(pb, rule, drpo__v4_ksum_total(a.moved_s, a.moved_c), a.tops, out, &s);
    return s;
}

/* A ramp over a uniform base (chi-square's weights, q = (pu c) scale with
 * c = (t - d)_+): the pass is bound by its arithmetic, so it sums only what
 * does not follow from the rule: q (compensated across blocks), the units
 * with c > 0 (exactly: counted) and E = sum (c scale - 1)^2.  Then
 *   div  = sum pu (c scale - 1)^2 = pu E,
 *   sum2 = sum q^2 = pu (div + 2 sum q - 1)   (pu m = 1; no cancellation:
 *          each term is >= 0 or about 1),
 *   max  = the argmax units' weight (gap exactly 0): (pu t_+) scale. */
typedef struct ramp_sums {
    drpo_v4d sum_s, sum_c, e2;
    drpo_v4i support; /* a true lane is -1 */
} ramp_sums;

/* The last m mod 8 units, one by one in lane 0, and the block's sums
 * (lanes j mod 8: block[0] the low four, block[1] the high) joined low +
 * high, as every instance ends. */
DRPO__INLINE ramp_sums ramp_finish(const drpo_problem *pb, const drpo_qrule *r, double *out,
                                   int stream, size_t j, ramp_sums s, drpo_v4d block[2])
{
    for (; j < pb->m; j++) {
        double xj = r->t - drpo__gap(pb, j), c = xj > 0.0 ? xj : 0.0;
        double q = (pb->pu * c) * r->scale, e = c * r->scale - 1.0;
        out[j] = q;
        block[0][0] += q;
        s.e2[0] += e * e;
        s.support[0] -= xj > 0.0;
    }
    drpo__v4_ksum_add(&s.sum_s, &s.sum_c, block[0] + block[1]);
    drpo__v4_stream_end(stream);
    return s;
}

/* Units j .. j+3 into one half's sums. */
DRPO__INLINE void ramp_group(const drpo_v4d *x, const drpo_v4d *vals, size_t j, double *out,
                             int stream, drpo_v4d *block, drpo_v4d *e2, drpo_v4i *support)
{
    const drpo_v4d top = vals[0], down = vals[1], t = vals[2], scale = vals[3], pu = vals[4];
    const drpo_v4d zero = drpo__v4_set1(0.0), one = drpo__v4_set1(1.0);
    drpo_v4d xt = t - (top - *x * down);
    drpo_v4i on = xt > zero;
    drpo_v4d c = drpo__v4_select(on, xt, zero), q = (pu * c) * scale, e = c * scale - one;
    drpo__v4_store_out(out + j, q, stream);
    *block += q;
    *e2 += e * e;
    *support += on;
}

DRPO__INLINE ramp_sums ramp_body(const drpo_problem *pb, const drpo_qrule *r, double *out,
                                 int stream)
{
    const drpo_v4d vals[5] = {drpo__v4_set1(pb->top), drpo__v4_set1(pb->down),
                              drpo__v4_set1(r->t), drpo__v4_set1(r->scale),
                              drpo__v4_set1(pb->pu)};
    const drpo_v4d zero = drpo__v4_set1(0.0);
    const double *x = pb->x;
    ramp_sums s = {zero, zero, zero, {0, 0, 0, 0}};
    drpo_v4d block[2] = {zero, zero}, e2[2] = {zero, zero};
    size_t m = pb->m, j = 0;
    while (j + 8 <= m) { /* blocks of 256 */
        size_t end = j + 256 < m ? j + 256 : m;
        block[0] = block[1] = zero;
        for (; j + 8 <= end; j += 8) {
            drpo_v4d x0 = drpo__v4_load(x + j), x1 = drpo__v4_load(x + j + 4);
            ramp_group(&x0, vals, j, out, stream, &block[0], &e2[0], &s.support);
            ramp_group(&x1, vals, j + 4, out, stream, &block[1], &e2[1], &s.support);
        }
        if (j + 8 <= m)
            drpo__v4_ksum_add(&s.sum_s, &s.sum_c, block[0] + block[1]);
    }
    s.e2 = e2[0] + e2[1];
    return ramp_finish(pb, r, out, stream, j, s, block);
}

#ifdef DRPO__HAVE_AVX512_CLONE
/* ramp_body on eight lanes. */
DRPO__WIDE DRPO__INLINE ramp_sums ramp_body_wide(const drpo_problem *pb, const drpo_qrule *r,
                                                 double *out, int stream)
{
    const __m512d top = _mm512_set1_pd(pb->top), down = _mm512_set1_pd(pb->down),
                  t = _mm512_set1_pd(r->t), scale = _mm512_set1_pd(r->scale),
                  pu = _mm512_set1_pd(pb->pu), zero = _mm512_setzero_pd(),
                  one = _mm512_set1_pd(1.0);
    const double *x = pb->x;
    const drpo_v4d z4 = drpo__v4_set1(0.0);
    ramp_sums s = {z4, z4, z4, {0, 0, 0, 0}};
    __m512d block = zero, e2 = zero;
    size_t m = pb->m, j = 0, support = 0;
    while (j + 8 <= m) { /* blocks of 256 */
        size_t end = j + 256 < m ? j + 256 : m;
        block = zero;
        for (; j + 8 <= end; j += 8) {
            __m512d xt = _mm512_sub_pd(t, _mm512_sub_pd(top, _mm512_mul_pd(_mm512_loadu_pd(x + j),
                                                                           down)));
            __mmask8 on = _mm512_cmp_pd_mask(xt, zero, _CMP_GT_OQ);
            __m512d c = _mm512_maskz_mov_pd(on, xt);
            __m512d q = _mm512_mul_pd(_mm512_mul_pd(pu, c), scale);
            __m512d e = _mm512_sub_pd(_mm512_mul_pd(c, scale), one);
            drpo__v8_store_out(out + j, (drpo_v8d)q, stream);
            block = _mm512_add_pd(block, q);
            e2 = _mm512_add_pd(e2, _mm512_mul_pd(e, e));
            support += (size_t)__builtin_popcount(on);
        }
        if (j + 8 <= m)
            drpo__v4_ksum_add(&s.sum_s, &s.sum_c,
                              drpo__v8_lo((drpo_v8d)block) + drpo__v8_hi((drpo_v8d)block));
    }
    s.support[0] = -(int64_t)support;
    s.e2 = drpo__v8_lo((drpo_v8d)e2) + drpo__v8_hi((drpo_v8d)e2);
    drpo_v4d halves[2] = {drpo__v8_lo((drpo_v8d)block), drpo__v8_hi((drpo_v8d)block)};
    return ramp_finish(pb, r, out, stream, j, s, halves);
}
#else
#define ramp_body_wide ramp_body
#endif

DRPO__KERNEL_DISPATCH_WIDE(ramp_sums, ramp_uniform_stream,
                           (const drpo_problem *pb, const drpo_qrule *r, double *out),
                           (pb, r, out), ramp_body(pb, r, out, 1), ramp_body_wide(pb, r, out, 1))
DRPO__KERNEL_DISPATCH_WIDE(ramp_sums, ramp_uniform_cached,
                           (const drpo_problem *pb, const drpo_qrule *r, double *out),
                           (pb, r, out), ramp_body(pb, r, out, 0), ramp_body_wide(pb, r, out, 0))

static drpo_qstats q_ramp_u(const drpo_problem *pb, const drpo_qrule *r, double *out)
{
    ramp_sums a = drpo__stream_output(out, pb->m) ? ramp_uniform_stream(pb, r, out)
                                                  : ramp_uniform_cached(pb, r, out);
    drpo_qstats s = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
    s.sum = drpo__v4_ksum_total(a.sum_s, a.sum_c);
    s.div = pb->pu * drpo__v4_hsum(a.e2);
    s.sum2 = pb->pu * (s.div + (2.0 * s.sum - 1.0));
    s.support = -(double)(a.support[0] + a.support[1] + a.support[2] + a.support[3]);
    s.max = (pb->pu * (r->t > 0.0 ? r->t : 0.0)) * r->scale;
    return s;
}

/* A step rule over a uniform base: q takes at most four values, so the
 * pass writes them and counts the units of each region; the statistics then
 * follow exactly from the counts.  Bound by its instructions on four lanes
 * (three compares, three selects, the counts, a store in two halves per
 * four units), so it has an AVX-512 instance on eight; the sums put unit j
 * in lane j mod 8 in every instance (the four-lane ones in two vectors),
 * and all three give the same bits (tests/test_weights.c). */
typedef struct step_counts {
    drpo_v4i zero, below, at; /* d == 0; d < t; d == t (the first two overlap when t > 0) */
    drpo_v4d excess, deficit; /* sum (d - t) over d > t, sum (t - d) over d < t */
    size_t tops;              /* the argmax units' indices, kept in pb->pairs */
} step_counts;

/* The rule's four weights, their threshold and the problem's gap map as
 * four-lane vectors. */
typedef struct step_shape {
    drpo_v4d top, down, t, q_top, q_below, q_at, q_above;
} step_shape;

DRPO__INLINE step_shape step_shape_of(const drpo_problem *pb, const drpo_qrule *r)
{
    const double pu = pb->pu, scale = r->scale;
    step_shape v = {drpo__v4_set1(pb->top),
                    drpo__v4_set1(pb->down),
                    drpo__v4_set1(r->t),
                    drpo__v4_set1((pu * r->c_top) * scale),
                    drpo__v4_set1((pu * r->c_below) * scale),
                    drpo__v4_set1((pu * r->c_at) * scale),
                    drpo__v4_set1((pu * r->c_above) * scale)};
    return v;
}

/* Units j .. j+3: written, counted, and measured into *excess or *deficit. */
DRPO__INLINE void step_group(const double *x, const step_shape *v, size_t j, double *out,
                             int stream, int measure, step_counts *c, drpo_v4d *excess,
                             drpo_v4d *deficit)
{
    const drpo_v4d zero = drpo__v4_set1(0.0);
    drpo_v4d d = v->top - drpo__v4_load(x + j) * v->down;
    drpo_v4i z = d == zero, lt = d < v->t, eq = d == v->t;
    drpo_v4d q = drpo__v4_select(
        z, v->q_top, drpo__v4_select(lt, v->q_below, drpo__v4_select(eq, v->q_at, v->q_above)));
    drpo__v4_store_out(out + j, q, stream);
    c->zero -= z; /* a true lane is -1 */
    c->below -= lt;
    c->at -= eq;
    if (measure == STEP_EXCESS)
        *excess += drpo__v4_select(d > v->t, d - v->t, zero);
    if (measure == STEP_DEFICIT)
        *deficit += drpo__v4_select(lt, v->t - d, zero);
}

/* The end of every instance's pass: units j.. (fewer than eight), the
 * lanes' sums joined (low four + high four), the stores ordered. */
DRPO__INLINE step_counts step_finish(const drpo_problem *pb, const drpo_qrule *r,
                                     const step_shape *v, size_t j, double *out, int stream,
                                     int measure, step_counts c, drpo_v4d excess[2],
                                     drpo_v4d deficit[2])
{
    size_t m = pb->m, *tops = (size_t *)pb->pairs;
    if (j + 4 <= m) {
        drpo_v4i zero_before = c.zero;
        step_group(pb->x, v, j, out, stream, measure, &c, &excess[0], &deficit[0]);
        if (measure == STEP_EXCESS && drpo__v4_any(c.zero != zero_before))
            c.tops = keep_tops(pb, j, j + 4, c.tops);
        j += 4;
    }
    for (; j < m; j++) {
        double d = drpo__gap(pb, j);
        out[j] = d == 0.0    ? v->q_top[0]
                 : d < r->t  ? v->q_below[0]
                 : d == r->t ? v->q_at[0]
                             : v->q_above[0];
        c.zero[0] += d == 0.0;
        c.below[0] += d < r->t;
        c.at[0] += d == r->t;
        if (measure == STEP_EXCESS) {
            excess[0][0] += d > r->t ? d - r->t : 0.0;
            if (d == 0.0)
                tops[c.tops++] = j;
        }
        if (measure == STEP_DEFICIT)
            deficit[0][0] += d < r->t ? r->t - d : 0.0;
    }
    drpo__v4_stream_end(stream);
    c.excess = excess[0] + excess[1];
    c.deficit = deficit[0] + deficit[1];
    return c;
}

DRPO__INLINE step_counts step_body(const drpo_problem *pb, const drpo_qrule *r, double *out,
                                   int measure)
{
    const step_shape v = step_shape_of(pb, r);
    const drpo_v4d zero = drpo__v4_set1(0.0);
    step_counts c = {{0, 0, 0, 0}, {0, 0, 0, 0}, {0, 0, 0, 0}, zero, zero, 0};
    drpo_v4d excess[2] = {zero, zero}, deficit[2] = {zero, zero};
    const double *x = pb->x; /* (a local: out might alias *pb) */
    size_t full = pb->m - pb->m % 8, j = 0;
    const int stream = drpo__stream_output(out, pb->m);
    while (j < full) { /* blocks of 256 */
        size_t start = j, end = j + 256 < full ? j + 256 : full;
        drpo_v4i zero_before = c.zero;
        /* four at a time, the sums' two halves taking turns (swapped, not
         * unrolled: two groups in flight spilled AVX2's sixteen registers) */
        for (; j < end; j += 4) {
            step_group(x, &v, j, out, stream, measure, &c, &excess[0], &deficit[0]);
            drpo_v4d e = excess[0], f = deficit[0];
            excess[0] = excess[1];
            excess[1] = e;
            deficit[0] = deficit[1];
            deficit[1] = f;
        }
        if (measure == STEP_EXCESS && drpo__v4_any(c.zero != zero_before))
            c.tops = keep_tops(pb, start, j, c.tops);
    }
    return step_finish(pb, r, &v, j, out, stream, measure, c, excess, deficit);
}

#ifdef DRPO__HAVE_AVX512_CLONE
/* step_body on eight lanes; `stream` is a constant. */
DRPO__WIDE DRPO__INLINE step_counts step_pass_wide(const drpo_problem *pb, const drpo_qrule *r,
                                                   double *out, int measure, int stream)
{
    const step_shape v = step_shape_of(pb, r);
    const __m512d zero = _mm512_setzero_pd(), top = _mm512_set1_pd(pb->top),
                  down = _mm512_set1_pd(pb->down), t = _mm512_set1_pd(r->t),
                  q_top = _mm512_set1_pd(v.q_top[0]), q_below = _mm512_set1_pd(v.q_below[0]),
                  q_at = _mm512_set1_pd(v.q_at[0]), q_above = _mm512_set1_pd(v.q_above[0]);
    const double *x = pb->x;
    size_t full = pb->m - pb->m % 8, j = 0, n_zero = 0, n_below = 0, n_at = 0;
    __m512d excess = zero, deficit = zero;
    const drpo_v4d z4 = drpo__v4_set1(0.0); /* (the sums are joined by step_finish) */
    step_counts c = {{0, 0, 0, 0}, {0, 0, 0, 0}, {0, 0, 0, 0}, z4, z4, 0};
    while (j < full) { /* blocks of 256 */
        size_t start = j, end = j + 256 < full ? j + 256 : full, zero_before = n_zero;
        for (; j < end; j += 8) {
            __m512d d = _mm512_sub_pd(top, _mm512_mul_pd(_mm512_loadu_pd(x + j), down));
            __mmask8 z = _mm512_cmp_pd_mask(d, zero, _CMP_EQ_OQ);
            __mmask8 lt = _mm512_cmp_pd_mask(d, t, _CMP_LT_OQ);
            __mmask8 eq = _mm512_cmp_pd_mask(d, t, _CMP_EQ_OQ);
            __m512d q = _mm512_mask_blend_pd(eq, q_above, q_at);
            q = _mm512_mask_blend_pd(z, _mm512_mask_blend_pd(lt, q, q_below), q_top);
            drpo__v8_store_out(out + j, (drpo_v8d)q, stream);
            n_zero += (size_t)__builtin_popcount(z);
            n_below += (size_t)__builtin_popcount(lt);
            n_at += (size_t)__builtin_popcount(eq);
            if (measure == STEP_EXCESS)
                excess = _mm512_add_pd(
                    excess, _mm512_maskz_sub_pd(_mm512_cmp_pd_mask(d, t, _CMP_GT_OQ), d, t));
            if (measure == STEP_DEFICIT)
                deficit = _mm512_add_pd(deficit, _mm512_maskz_sub_pd(lt, t, d));
        }
        if (measure == STEP_EXCESS && n_zero != zero_before)
            c.tops = keep_tops(pb, start, j, c.tops);
    }
    c.zero[0] = (int64_t)n_zero;
    c.below[0] = (int64_t)n_below;
    c.at[0] = (int64_t)n_at;
    drpo_v4d e[2] = {drpo__v8_lo((drpo_v8d)excess), drpo__v8_hi((drpo_v8d)excess)};
    drpo_v4d f[2] = {drpo__v8_lo((drpo_v8d)deficit), drpo__v8_hi((drpo_v8d)deficit)};
    return step_finish(pb, r, &v, j, out, stream, measure, c, e, f);
}

DRPO__WIDE DRPO__INLINE step_counts step_body_wide(const drpo_problem *pb, const drpo_qrule *r,
                                                   double *out, int measure)
{
    return drpo__stream_output(out, pb->m) ? step_pass_wide(pb, r, out, measure, 1)
                                           : step_pass_wide(pb, r, out, measure, 0);
}
#else
#define step_body_wide step_body
#endif

#define STEP_KERNEL(name, measure)                                                            \
    DRPO__KERNEL_DISPATCH_WIDE(step_counts, name,                                             \
                               (const drpo_problem *pb, const drpo_qrule *r, double *out),    \
                               (pb, r, out), step_body(pb, r, out, measure),                  \
                               step_body_wide(pb, r, out, measure))
STEP_KERNEL(step_uniform, STEP_PLAIN)
STEP_KERNEL(step_uniform_excess, STEP_EXCESS)
STEP_KERNEL(step_uniform_deficit, STEP_DEFICIT)

static double count_of(drpo_v4i v) { return (double)(v[0] + v[1] + v[2] + v[3]); }

static drpo_qstats step_uniform_stats(const drpo_problem *pb, const drpo_qrule *r, double *out)
{
    step_counts c = r->value_excess != 0.0    ? step_uniform_excess(pb, r, out)
                    : r->value_deficit != 0.0 ? step_uniform_deficit(pb, r, out)
                                              : step_uniform(pb, r, out);
    double n_top = count_of(c.zero), n_below = count_of(c.below), n_at = count_of(c.at);
    /* regions apart from the argmax units */
    if (r->t > 0.0)
        n_below -= n_top;
    else
        n_at -= n_top;
    double count[4] = {n_top, n_below, n_at, (double)pb->m - n_top - n_below - n_at};
    double coef[4] = {r->c_top, r->c_below, r->c_at, r->c_above};
    drpo_qstats s = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
    if (r->top_per_moved != 0.0) { /* the argmax units' weight, now the mass beyond t is known */
        coef[0] += r->top_per_moved * (count[3] * pb->pu);
        double q_top = (pb->pu * coef[0]) * r->scale;
        const size_t *tops = (const size_t *)pb->pairs;
        for (size_t i = 0; i < c.tops; i++)
            out[tops[i]] = q_top;
    }
    s.excess = drpo__v4_hsum(c.excess) * pb->pu; /* (0 unless measured) */
    s.deficit = drpo__v4_hsum(c.deficit) * pb->pu;
    drpo_ksum sum = {0.0, 0.0};
    for (int k = 0; k < 4; k++) {
        if (count[k] == 0.0)
            continue;
        double q = (pb->pu * coef[k]) * r->scale, cn = coef[k] * r->scale;
        drpo__ksum_add(&sum, count[k] * q);
        s.sum2 += count[k] * q * q;
        s.max = q > s.max ? q : s.max;
        s.support += q > 0.0 ? count[k] : 0.0;
        s.max_ratio = q > 0.0 && cn > s.max_ratio ? cn : s.max_ratio;
        if (r->divergence == DRPO__DIV_ABS)
            s.div += count[k] * fabs(q - pb->pu);
        else if (r->divergence == DRPO__DIV_CHI2)
            s.div += count[k] * ((pb->pu * (cn - 1.0)) * (cn - 1.0));
    }
    s.sum = drpo__ksum_value(&sum);
    return s;
}

/* Instances by shape, divergence and base (uniform or weighted).  A ramp
 * always measures the chi-square divergence and the KL shapes none (the
 * solver does); a step (over a weighted base: a uniform one is counted
 * above) any of the four, and with the absolute one (TV's) may measure the
 * excess. */
#define Q_KERNEL(name, kind, divergence, uniform, measure)                                    \
    DRPO__KERNEL_DISPATCH(drpo_qstats, name,                                                  \
                          (const drpo_problem *pb, const drpo_qrule *r, double *out),         \
                          (pb, r, out), q_body(pb, r, out, kind, divergence, uniform, measure))
Q_KERNEL(q_step_w_none, DRPO__Q_STEP, DRPO__DIV_NONE, 0, STEP_PLAIN)
Q_KERNEL(q_step_w_ratio, DRPO__Q_STEP, DRPO__DIV_MAX_RATIO, 0, STEP_PLAIN)
Q_KERNEL(q_step_w_abs, DRPO__Q_STEP, DRPO__DIV_ABS, 0, STEP_PLAIN)
Q_KERNEL(q_step_w_abs_excess, DRPO__Q_STEP, DRPO__DIV_ABS, 0, STEP_EXCESS)
Q_KERNEL(q_step_w_chi2, DRPO__Q_STEP, DRPO__DIV_CHI2, 0, STEP_PLAIN)
Q_KERNEL(q_ramp_w, DRPO__Q_RAMP, DRPO__DIV_CHI2, 0, STEP_PLAIN)
Q_KERNEL(q_ramp_div_u, DRPO__Q_RAMP_DIV, DRPO__DIV_CHI2, 1, STEP_PLAIN)
Q_KERNEL(q_ramp_div_w, DRPO__Q_RAMP_DIV, DRPO__DIV_CHI2, 0, STEP_PLAIN)
Q_KERNEL(q_exp_u, DRPO__Q_EXP, DRPO__DIV_NONE, 1, STEP_PLAIN)
Q_KERNEL(q_exp_w, DRPO__Q_EXP, DRPO__DIV_NONE, 0, STEP_PLAIN)
Q_KERNEL(q_exp_precise_u, DRPO__Q_EXP_PRECISE, DRPO__DIV_NONE, 1, STEP_PLAIN)
Q_KERNEL(q_exp_precise_w, DRPO__Q_EXP_PRECISE, DRPO__DIV_NONE, 0, STEP_PLAIN)
Q_KERNEL(q_stored, DRPO__Q_STORED, DRPO__DIV_NONE, 1, STEP_PLAIN)

/* A step over a weighted base.  Only TV's rules measure the excess (and
 * its divergence is the absolute one). */
static drpo_qstats q_step_w(const drpo_problem *pb, const drpo_qrule *r, double *out)
{
    if (r->value_excess != 0.0 && r->divergence == DRPO__DIV_ABS)
        return q_step_w_abs_excess(pb, r, out);
    switch (r->divergence) {
    case DRPO__DIV_MAX_RATIO: return q_step_w_ratio(pb, r, out);
    case DRPO__DIV_ABS: return q_step_w_abs(pb, r, out);
    case DRPO__DIV_CHI2: return q_step_w_chi2(pb, r, out);
    default: return q_step_w_none(pb, r, out);
    }
}

drpo_qstats drpo__q_write(const drpo_problem *pb, const drpo_qrule *r, double *out)
{
    int u = pb->uniform;
    switch (r->kind) {
    case DRPO__Q_STEP: return u ? step_uniform_stats(pb, r, out) : q_step_w(pb, r, out);
    case DRPO__Q_RAMP: return u ? q_ramp_u(pb, r, out) : q_ramp_w(pb, r, out);
    case DRPO__Q_RAMP_DIV: return u ? q_ramp_div_u(pb, r, out) : q_ramp_div_w(pb, r, out);
    case DRPO__Q_STORED: return q_stored(pb, r, out); /* (reads neither gaps nor p) */
    case DRPO__Q_EXP_PRECISE: return u ? q_exp_precise_u(pb, r, out) : q_exp_precise_w(pb, r, out);
    default: return u ? q_exp_u(pb, r, out) : q_exp_w(pb, r, out);
    }
}

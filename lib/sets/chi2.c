/* chi2.c - chi-square ball and penalty, D(q||p) = 1/2 sum p (q/p - 1)^2.
 *
 * Gap space.  The worst case is q ∝ p (t - d)_+ for a threshold t
 * (t = l_max - eta in gaps), so it puts weight on the smallest gaps.  A scan
 * of the gaps in ascending order (only near the crossing: see window.c)
 * finds the active set; the threshold then has a closed form in its mean m
 * and variance V (moments about a centre near m; a pass centred on m itself
 * where that would lose digits, so nearly tied losses lose none):
 *   penalty lambda: sum p (t - d)_+ = lambda      ->  t = m + lambda / P
 *   radius rho:     A2 / A1^2 = 1 + 2 rho         ->  t = m + sqrt(V / ((1+2rho) P - 1))
 * with P the active mass, A1 = sum p (t-d)_+, A2 = sum p (t-d)_+^2. */
#include "../internal.h"
#include "../vec.h"

#include <math.h>

/* The criterion the scan looks for, on the moments (mass, sum p x,
 * sum p x^2, x = d - c) of the active set {d < t}, at x = t - c; monotone
 * in t. */
typedef struct chi2_form {
    int penalty;
    double lambda, c2;
} chi2_form;

static int crossed(const chi2_form *f, double mass, double s1, double s2, double t)
{
    double a1 = mass * t - s1; /* sum p (t - d) */
    if (f->penalty)
        return a1 >= f->lambda;
    double a2 = mass * t * t - 2.0 * t * s1 + s2; /* sum p (t - d)^2 */
    return a1 > 0.0 && a2 <= f->c2 * a1 * a1;
}

static int stops(const drpo_scan_sums *before, double gap, const drpo_scan_sums *group,
                 const void *ctx)
{
    (void)group;
    return crossed(ctx, drpo__ksum_value(&before->mass), before->s1, before->s2,
                   gap - before->centre);
}

/* The first breakpoint of a window (by selection) where the criterion holds,
 * or `next` if none does; *sums: the sums of the gaps below it. */
static double scan(const drpo_window *w, const chi2_form *f, drpo_scan_sums *sums)
{
    drpo_scan_sums s = {{w->below_mass, 0.0}, w->below_s1, w->below_s2, w->centre};
    double gap = w->next;
    drpo__pairs_scan((drpo_pair *)w->win, w->n, &s, 0, stops, f, &gap);
    *sums = s;
    return gap;
}

static int check(const drpo_window *w, const void *ctx)
{
    const chi2_form *f = ctx;
    if (!isinf(w->lo) &&
        crossed(f, w->below_mass, w->below_s1, w->below_s2, w->lo - w->centre))
        return -1;
    return isinf(w->next) || crossed(f, w->below_mass + w->win_mass, w->below_s1 + w->win_s1,
                                     w->below_s2 + w->win_s2, w->next - w->centre)
               ? 0
               : 1;
}

static double predict(const drpo_window *w, const drpo_window *sample, const void *ctx)
{
    drpo_scan_sums sums;
    scan(sample, ctx, &sums);
    return (drpo__ksum_value(&sums.mass) - sample->below_mass) / w->win_mass;
}

/* The active set at the crossing: gaps below `limit` (everything if infinite). */
typedef struct chi2_active {
    double limit; /* the breakpoint that ends the piece */
    double top;   /* largest active gap */
    double mass;  /* P (exactly 1 when everything is active) */
    double mean;  /* mean gap of the active set */
    double var;   /* variance of the active gaps, centred */
} chi2_active;

typedef struct centred_sums {
    drpo_v4d mass_s, mass_c, c1, c2, top, next;
    drpo_v4i count; /* active units, negated (a true lane is -1) */
} centred_sums;

/* Four gaps' share: active mass, p (d - c), p (d - c)^2, the gaps
 * themselves where active (else 0: the active gaps are >= 0) and where not
 * (else +inf), and the active units. */
typedef struct centred_part {
    drpo_v4d pa, c1, c2, top, next;
    drpo_v4i active;
} centred_part;

DRPO__INLINE centred_part centred_lanes(const drpo_problem *pb, size_t j, size_t end, int uniform,
                                        drpo_v4d vl, drpo_v4d vc)
{
    const drpo_v4d zero = drpo__v4_set1(0.0), inf = drpo__v4_set1(INFINITY);
    drpo_v4d d, p;
    drpo_v4i real = drpo__v4_units(pb, j, end, uniform, uniform, &d, &p);
    drpo_v4i active = d < vl;
    drpo_v4d pa = drpo__v4_select(active, p, zero), x = d - vc;
    centred_part r = {pa, pa * x, pa * x * x, drpo__v4_select(active, d, zero),
                      drpo__v4_select(active | ~real, inf, d), active & real};
    return r;
}

DRPO__INLINE drpo_v4d vmin(drpo_v4d a, drpo_v4d b) { return drpo__v4_select(b < a, b, a); }
DRPO__INLINE drpo_v4d vmax(drpo_v4d a, drpo_v4d b) { return drpo__v4_select(b > a, b, a); }

/* Over the active gaps (d < limit): mass (counted with a uniform base),
 * sum p (d - c), sum p (d - c)^2, the largest gap and how many; and the
 * smallest inactive gap.  Two groups of four at a time, combined before
 * they meet the running values. */
DRPO__INLINE centred_sums centred_body(const drpo_problem *pb, double limit, double c,
                                       int uniform)
{
    const drpo_v4d zero = drpo__v4_set1(0.0), inf = drpo__v4_set1(INFINITY);
    const drpo_v4d vl = drpo__v4_set1(limit), vc = drpo__v4_set1(c);
    const drpo_v4i none = {0, 0, 0, 0};
    centred_sums s = {zero, zero, zero, zero, zero, inf, none};
    size_t m = pb->m, j = 0;
    while (j < m) { /* blocks of 256, the mass compensated across blocks */
        drpo_v4d block = zero;
        size_t end = j + 256 < m ? j + 256 : m;
        for (; j < end; j += 8) {
            centred_part a = centred_lanes(pb, j, end, uniform, vl, vc);
            centred_part b = {zero, zero, zero, zero, inf, none};
            if (j + 4 < end)
                b = centred_lanes(pb, j + 4, end, uniform, vl, vc);
            block += a.pa + b.pa;
            s.c1 += a.c1 + b.c1;
            s.c2 += a.c2 + b.c2;
            s.top = vmax(s.top, vmax(a.top, b.top));
            s.next = vmin(s.next, vmin(a.next, b.next));
            s.count += a.active + b.active;
        }
        drpo__v4_ksum_add(&s.mass_s, &s.mass_c, block);
    }
    return s;
}

DRPO__KERNEL_DISPATCH(centred_sums, centred_uniform,
                      (const drpo_problem *pb, double limit, double c), (pb, limit, c),
                      centred_body(pb, limit, c, 1))
DRPO__KERNEL_DISPATCH(centred_sums, centred_weighted,
                      (const drpo_problem *pb, double limit, double c), (pb, limit, c),
                      centred_body(pb, limit, c, 0))

/* Whether moments taken about `centre` keep their digits: the variance
 * loses about (mean - centre)^2 / var ulps, the mean about |centre| /
 * |mean| (the penalty's threshold needs it to the scale of lambda / P);
 * within 1000 of them they stand (see find_active). */
static int centred_enough(const chi2_active *s, double centre)
{
    double shift = s->mean - centre;
    return s->var > 0.0 && shift * shift <= 1e3 * s->var && fabs(centre) <= 1e3 * fabs(s->mean);
}

/* The moments of the active gaps (below limit) from one pass centred on c
 * (s.limit is left as limit); *count: how many units they are, *next: the
 * smallest gap not among them (+inf if none). */
static chi2_active active_moments(const drpo_problem *pb, double limit, double c, double *count,
                                  double *next)
{
    centred_sums cs = pb->uniform ? centred_uniform(pb, limit, c) : centred_weighted(pb, limit, c);
    double scale = pb->uniform ? pb->pu : 1.0; /* counts to masses */
    double c1 = drpo__v4_hsum(cs.c1) * scale, c2 = drpo__v4_hsum(cs.c2) * scale;
    chi2_active s = {limit, 0.0, drpo__v4_ksum_total(cs.mass_s, cs.mass_c) * scale, 0.0, 0.0};
    *next = INFINITY;
    for (int l = 0; l < 4; l++) {
        s.top = cs.top[l] > s.top ? cs.top[l] : s.top;
        *next = cs.next[l] < *next ? cs.next[l] : *next;
    }
    *count = (double)-(cs.count[0] + cs.count[1] + cs.count[2] + cs.count[3]);
    double shift = c1 / s.mass;
    s.mean = c + shift;
    s.var = c2 / s.mass - shift * shift;
    if (s.var < 0.0)
        s.var = 0.0;
    return s;
}

/* Problems of at most ITERATE_UP_TO units: the active set by fixed-point
 * iteration, as Michelot's algorithm projects onto the simplex.  All units
 * active first; then the threshold t of the closed form over the active
 * set, and the units below t the next active set.  t falls at every step
 * (the set only loses units) until the set stops changing, where t is the
 * solution.  A pass a step, over units in cache, against the window
 * search's copy and selection, which cost more at these sizes (the extremes
 * suite's test_chi2_minibatch_accuracy: 240 problems of up to 4096 units,
 * both forms, at most 9 passes, within 1e-13 of a sort).  Returns 0, for
 * the window search, where a step does not shrink the set or the closed
 * form has no root (ties at the top), or after ITERATE_MAX passes. */
#define ITERATE_UP_TO 4096
#define ITERATE_MAX 16

static int iterate_active(const drpo_problem *pb, const chi2_form *f, chi2_active *out,
                          int *passes)
{
    double limit = INFINITY, c = 0.0, before = (double)pb->m + 1.0;
    for (int k = 1; k <= ITERATE_MAX; k++) {
        double count, next;
        chi2_active s = active_moments(pb, limit, c, &count, &next);
        if (!(count > 0.0 && s.var > 0.0))
            return 0;
        if (count == before) { /* the same set as the pass before, whose t this is */
            if (!centred_enough(&s, c))
                s = active_moments(pb, limit, s.mean, &count, &next);
            s.limit = count == (double)pb->m ? INFINITY : next;
            if (isinf(s.limit))
                s.mass = 1.0;
            *out = s;
            *passes = k;
            return 1;
        }
        double denom = f->c2 * s.mass - 1.0;
        double t = f->penalty ? s.mean + f->lambda / s.mass
                   : denom > 0.0 ? s.mean + sqrt(s.var / denom) : NAN;
        if (!(t < limit))
            return 0;
        before = count;
        limit = t;
        c = s.mean;
    }
    return 0;
}

static chi2_active find_active(const drpo_problem *pb, const chi2_form *f, int *passes)
{
    chi2_active s;
    if (pb->m <= ITERATE_UP_TO && iterate_active(pb, f, &s, passes))
        return s;
    drpo_window w;
    drpo_window_rule rule = {check, predict, f, 2};
    *passes = drpo__window_find(pb, &rule, &w);
    drpo_scan_sums below;
    s.limit = scan(&w, f, &below);
    /* the active set's moments about the window's centre (near its mean) */
    double mass = drpo__ksum_value(&below.mass), shift = below.s1 / mass;
    s.mass = isinf(s.limit) ? 1.0 : mass;
    s.mean = w.centre + shift;
    s.var = below.s2 / mass - shift * shift;
    /* the variance loses about shift^2 / var ulps to the centre's distance
     * from the mean, and the mean about |centre| / |mean| (the penalty's
     * threshold needs it to the scale of lambda / P): within 1000 of them
     * they stand; else (or no spread at all: ties, when it must be exactly
     * 0) sums centred on the raw mean (about 0: sum p d of d >= 0 loses
     * nothing; one more pass for it unless the centre was 0), so nearly
     * tied gaps lose no digits */
    /* the largest active gap: in the window, which lies above every gap
     * summarised below it; if none of its gaps is active while some below
     * it are, the centred pass finds it */
    double top = -INFINITY;
    for (size_t i = 0; i < w.n; i++)
        top = w.win[i].d < s.limit && w.win[i].d > top ? w.win[i].d : top;
    int top_known = top > -INFINITY || !(w.below_mass > 0.0);
    if (centred_enough(&s, w.centre) && top_known) {
        s.top = top > 0.0 ? top : 0.0;
        return s;
    }
    centred_sums (*const centred)(const drpo_problem *, double, double) =
        pb->uniform ? centred_uniform : centred_weighted;
    double c = s.mean;
    if (w.centre != 0.0) {
        centred_sums raw = centred(pb, s.limit, 0.0);
        c = drpo__v4_hsum(raw.c1) / drpo__v4_ksum_total(raw.mass_s, raw.mass_c);
    }
    double count, next;
    s = active_moments(pb, s.limit, c, &count, &next);
    if (isinf(s.limit))
        s.mass = 1.0;
    return s;
}

/* Keep the threshold inside the piece the scan chose: rounding in the
 * running sums may put a closed-form root a hair outside it. */
static double clamp_to_piece(double t, const chi2_active *s)
{
    if (t < s->top)
        t = s->top;
    if (t > s->limit)
        t = s->limit;
    return t;
}

/* q = p (t - d)_+ / (P (t - mean)): the sum of p (t - d) over the active set */
static void ramp_rule(drpo_solution *sol, double t, const chi2_active *s)
{
    double norm = s->mass * (t - s->mean), scale = 1.0 / norm;
    /* (a degenerate piece: the objective normalises what was written) */
    drpo_qrule r = {.kind = DRPO__Q_RAMP,
                    .divergence = DRPO__DIV_CHI2,
                    .t = t,
                    .scale = norm > 0.0 && isfinite(scale) ? scale : 1.0,
                    .unnormalised = !(norm > 0.0 && isfinite(scale))};
    sol->rule = r;
}

static drpo_status chi2_penalty(const drpo_problem *pb, drpo_solution *sol)
{
    double lambda = pb->param;
    sol->has_eta = sol->has_lambda = 1;
    sol->lambda = lambda;
    sol->iterations = 1;
    if (lambda == 0.0 || pb->p_top >= 1.0) {
        drpo__q_on_top(pb, sol, DRPO__DIV_CHI2);
        sol->eta = 0.0;
        return DRPO_OK;
    }
    chi2_form f = {1, lambda, 0.0};
    chi2_active s = find_active(pb, &f, &sol->iterations);
    if (isinf(s.limit)) { /* everything active: value = mean + Var / (2 lambda), no overflow */
        /* q ∝ p (1 + (mean - d) / lambda): p (t - d) / lambda, which, unlike
         * p (t - d), cannot overflow when lambda is huge (a penalty clamped
         * to DBL_MAX in gap space, e.g. penalty 0.3 with denormal losses) */
        drpo_qrule r = {.kind = DRPO__Q_RAMP_DIV,
                        .divergence = DRPO__DIV_CHI2,
                        .t = s.mean,
                        .lambda = lambda,
                        .scale = 1.0};
        sol->rule = r;
        sol->eta = s.mean; /* eta = mean - lambda, the lambda part kept apart */
        sol->eta_lambda = 1.0;
        sol->value = -s.mean + s.var / (2.0 * lambda);
    } else { /* lambda < 2 here, so nothing below can overflow */
        double t = clamp_to_piece(s.mean + lambda / s.mass, &s);
        ramp_rule(sol, t, &s);
        sol->eta = t;
        /* the dual value at t, with sum p (t - d)^2 over the active set
         * from its centred moments: P (V + (t - mean)^2) */
        double r = t - s.mean;
        sol->value = -t + 0.5 * lambda + s.mass * (s.var + r * r) / (2.0 * lambda);
    }
    if (sol->value > 0.0)
        sol->value = 0.0;
    return DRPO_OK;
}

static drpo_status chi2_radius(const drpo_problem *pb, drpo_solution *sol)
{
    double rho = pb->param, c2 = 1.0 + 2.0 * rho;
    sol->iterations = 1;
    sol->has_eta = sol->has_lambda = 1;
    if (rho == 0.0) {
        drpo__q_base(pb, sol);
        sol->has_eta = 0;
        sol->lambda = INFINITY;
        return DRPO_OK;
    }
    if (pb->p_top >= 1.0 || c2 * pb->p_top >= 1.0) {
        drpo__q_on_top(pb, sol, DRPO__DIV_CHI2);
        sol->eta = 0.0;
        sol->lambda = 0.0;
        sol->tight = pb->p_top < 1.0 && c2 * pb->p_top == 1.0;
        return DRPO_OK;
    }
    chi2_form f = {0, 0.0, c2};
    chi2_active s = find_active(pb, &f, &sol->iterations);
    if (s.var == 0.0) {
        /* the scan stopped on the tied maxima: the radius admits the maximum
         * loss up to rounding in the two orders p_top was summed in */
        drpo__q_on_top(pb, sol, DRPO__DIV_CHI2);
        sol->eta = 0.0;
        sol->lambda = 0.0;
        return DRPO_OK;
    }
    double denom = c2 * s.mass - 1.0;
    double delta = denom > 0.0 && s.var > 0.0 ? sqrt(s.var / denom) : 0.0;
    double t = clamp_to_piece(s.mean + delta, &s);
    ramp_rule(sol, t, &s);
    sol->eta = t;
    sol->lambda = s.mass * (t - s.mean); /* q = p (t - d)_+ / lambda sums to one */
    sol->value = -s.mean + (denom > 0.0 ? sqrt(s.var * denom) : 0.0);
    if (sol->value > 0.0)
        sol->value = 0.0;
    sol->tight = 1;
    return DRPO_OK;
}

static drpo_status chi2_solve(const drpo_problem *pb, drpo_solution *sol)
{
    return pb->form == DRPO__FORM_PENALTY ? chi2_penalty(pb, sol) : chi2_radius(pb, sol);
}

static double chi2_divergence(size_t m, const double *q, const double *p)
{
    double s = 0.0;
    for (size_t j = 0; j < m; j++) {
        double r = q[j] - p[j];
        s += r * r / p[j];
    }
    return 0.5 * s;
}

const drpo_set_ops drpo__set_chi2 = {"chi2",
                                     (1u << DRPO__FORM_RADIUS) | (1u << DRPO__FORM_PENALTY),
                                     chi2_solve, chi2_divergence, NULL};

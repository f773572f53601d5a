/* tv.c - total variation, D(q||p) = 1/2 sum |q - p|, q on the support of p.
 *
 * Gap space.  Moving mass from unit j to the argmax set gains d_j per unit of
 * mass and costs one unit of D.
 *   radius rho: move rho of mass away from the largest gaps (lowest losses);
 *               with b the gap where that mass runs out,
 *               value = -E_p[d] + rho b + sum p (d - b)_+;
 *               rho >= 1 - p_top moves everything: the maximum loss.
 *   penalty lambda: move all of every unit with d_j > lambda;
 *               value = -E_p[d] + sum p (d - lambda)_+. */
#include "../internal.h"
#include "../vec.h"

#include <math.h>

typedef struct tail_sums {
    drpo_v4d above_s, above_c, at_s, at_c, excess;
} tail_sums;

/* Sum p over d > t, sum p (d - t) over d > t and sum p over d == t; the
 * masses compensated across blocks of 256 (counted with a uniform base, and
 * scaled by pu afterwards), so q keeps summing to 1 within a few ulps. */
DRPO__INLINE tail_sums tail_body(const drpo_problem *pb, double t, int uniform)
{
    const drpo_v4d vt = drpo__v4_set1(t), zero = drpo__v4_set1(0.0);
    tail_sums s = {zero, zero, zero, zero, zero};
    size_t m = pb->m, j = 0;
    while (j < m) {
        drpo_v4d above = zero, at = zero;
        size_t end = j + 256 < m ? j + 256 : m;
        for (; j < end; j += 4) {
            drpo_v4d d, p;
            drpo__v4_units(pb, j, end, uniform, uniform, &d, &p);
            drpo_v4d pa = drpo__v4_select(d > vt, p, zero);
            above += pa;
            s.excess += pa * (d - vt);
            at += drpo__v4_select(d == vt, p, zero);
        }
        drpo__v4_ksum_add(&s.above_s, &s.above_c, above);
        drpo__v4_ksum_add(&s.at_s, &s.at_c, at);
    }
    return s;
}

DRPO__KERNEL_DISPATCH(tail_sums, tail_uniform, (const drpo_problem *pb, double t), (pb, t),
                      tail_body(pb, t, 1))
DRPO__KERNEL_DISPATCH(tail_sums, tail_weighted, (const drpo_problem *pb, double t), (pb, t),
                      tail_body(pb, t, 0))

static void tail(const drpo_problem *pb, double t, double *above, double *excess, double *at)
{
    tail_sums s = pb->uniform ? tail_uniform(pb, t) : tail_weighted(pb, t);
    double scale = pb->uniform ? pb->pu : 1.0;
    *above = drpo__v4_ksum_total(s.above_s, s.above_c) * scale;
    *at = drpo__v4_ksum_total(s.at_s, s.at_c) * scale;
    *excess = drpo__v4_hsum(s.excess) * scale;
}

/* q = p, moved off the units with d > t (and `take` of the mass at d == t)
 * onto the argmax set: a step rule. */
static void moved_rule(const drpo_problem *pb, drpo_solution *sol, double t, double c_at,
                       double moved)
{
    drpo_qrule r = {.kind = DRPO__Q_STEP,
                    .divergence = DRPO__DIV_ABS,
                    .t = t,
                    .c_top = 1.0 + moved / pb->p_top,
                    .c_below = 1.0,
                    .c_at = c_at,
                    .scale = 1.0};
    sol->rule = r;
}

/* The crossing, scanning down from the largest gap: the gap at which the
 * mass from the top reaches rho. */
static int check(const drpo_window *w, const void *ctx)
{
    double rho = *(const double *)ctx;
    if (w->above_mass >= rho)
        return 1;
    return w->above_mass + w->win_mass >= rho || isinf(w->lo) ? 0 : -1;
}

static double predict(const drpo_window *w, const drpo_window *sample, const void *ctx)
{
    (void)sample;
    return 1.0 - (*(const double *)ctx - w->above_mass) / w->win_mass;
}

/* Where the mass from the largest gap reaches rho (b), the masses above it
 * and at it: over a uniform base (masses are counts) of up to
 * DRPO__RANK_UP_TO units a rank among all the gaps; else in a window, which
 * holds every gap equal to b (the weights pass then measures the excess:
 * *excess NAN), or, without one, one pass that also sums the excess. */
static drpo_crossing find_crossing(const drpo_problem *pb, double rho, int *passes,
                                   double *excess)
{
    *excess = NAN;
    if (pb->uniform && pb->m <= DRPO__RANK_UP_TO) /* (never reached: the smallest gap) */
        return drpo__rank_crossing(pb->x, pb->m, pb->top, pb->down, 0.0, pb->pu, rho, 1,
                                   pb->scratch, (double *)pb->pairs);
    drpo_window w;
    drpo_window_rule rule = {check, predict, &rho, 0};
    *passes = drpo__window_find(pb, &rule, &w);
    if (w.n > 0)
        return drpo__window_crossing(&w, rho, 1, pb->uniform ? pb->pu : 0.0, pb->scratch);
    drpo_crossing c = {0.0, 0.0, 0.0, 0};
    tail(pb, c.gap, &c.before, excess, &c.at);
    return c;
}

static drpo_status tv_radius(const drpo_problem *pb, drpo_solution *sol)
{
    double rho = pb->param;
    sol->has_eta = sol->has_lambda = 1;
    sol->iterations = 1;
    if (rho == 0.0) {
        drpo__q_base(pb, sol);
        sol->has_eta = 0;
        sol->lambda = INFINITY;
        return DRPO_OK;
    }
    if (pb->p_top >= 1.0 || rho >= 1.0 - pb->p_top) {
        drpo__q_on_top(pb, sol, DRPO__DIV_ABS);
        sol->eta = 0.0;
        sol->lambda = 0.0;
        sol->tight = rho == 1.0 - pb->p_top && pb->p_top < 1.0;
        return DRPO_OK;
    }
    double excess;
    drpo_crossing c = find_crossing(pb, rho, &sol->iterations, &excess);
    double b = c.gap, above = c.before, at = c.at;
    double take = rho - above; /* taken from the tie group at b */
    if (take < 0.0)
        take = 0.0;
    if (take > at)
        take = at;
    moved_rule(pb, sol, b, at > 0.0 ? 1.0 - take / at : 1.0, above + take);
    sol->rule.value_excess = isnan(excess) ? 1.0 : 0.0; /* (top_per_moved 0) */
    sol->eta = b;
    sol->lambda = b; /* d value / d rho = l_max - eta */
    sol->value = -pb->mean_d + rho * b + (isnan(excess) ? 0.0 : excess); /* (<= 0: clamped) */
    sol->tight = 1;
    return DRPO_OK;
}

static drpo_status tv_penalty(const drpo_problem *pb, drpo_solution *sol)
{
    double lambda = pb->param;
    sol->has_eta = sol->has_lambda = 1;
    sol->lambda = lambda;
    sol->eta = 0.0; /* eta = l_max - lambda */
    sol->eta_lambda = 1.0;
    sol->iterations = 1;
    /* the mass moved and its gain measured by the weights pass */
    moved_rule(pb, sol, lambda, 1.0, 0.0);
    sol->rule.value_excess = 1.0;
    sol->rule.top_per_moved = 1.0 / pb->p_top;
    sol->value = -pb->mean_d; /* + sum p (d - lambda)_+, added after the pass */
    return DRPO_OK;
}

static drpo_status tv_solve(const drpo_problem *pb, drpo_solution *sol)
{
    return pb->form == DRPO__FORM_PENALTY ? tv_penalty(pb, sol) : tv_radius(pb, sol);
}

static double tv_divergence(size_t m, const double *q, const double *p)
{
    double s = 0.0;
    for (size_t j = 0; j < m; j++)
        s += fabs(q[j] - p[j]);
    return 0.5 * s;
}

/* The radius's crossing lies at mass rho from the largest gap (the penalty
 * has none). */
static double tv_level(int form, double rho)
{
    return form == DRPO__FORM_RADIUS ? 1.0 - rho : NAN;
}

const drpo_set_ops drpo__set_tv = {"tv", (1u << DRPO__FORM_RADIUS) | (1u << DRPO__FORM_PENALTY),
                                   tv_solve, tv_divergence, tv_level};

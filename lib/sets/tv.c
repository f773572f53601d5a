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

#include <math.h>

/* Add `mass` to the argmax set in proportion to p. */
static void add_to_top(const drpo_problem *pb, double mass)
{
    for (size_t j = 0; j < pb->m; j++)
        if (drpo__gap(pb, j) == 0.0)
            pb->q[j] += mass * pb->p[j] / pb->p_top;
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

static drpo_status tv_radius(const drpo_problem *pb, drpo_solution *sol)
{
    double rho = pb->param;
    size_t m = pb->m;
    sol->has_eta = sol->has_lambda = 1;
    sol->iterations = 1;
    if (rho == 0.0) {
        drpo__q_base(pb, sol);
        sol->has_eta = 0;
        sol->lambda = INFINITY;
        return DRPO_OK;
    }
    if (pb->p_top >= 1.0 || rho >= 1.0 - pb->p_top) {
        drpo__q_on_top(pb, sol);
        sol->eta = 0.0;
        sol->lambda = 0.0;
        sol->tight = rho == 1.0 - pb->p_top && pb->p_top < 1.0;
        return DRPO_OK;
    }
    drpo_window w;
    drpo_window_rule rule = {check, predict, &rho};
    sol->iterations = drpo__window_find(pb, &rule, &w);
    double b = w.n ? w.win[0].d : 0.0, cum = w.above_mass;
    for (size_t i = w.n; i-- > 0;) {
        cum += w.win[i].p;
        if (cum >= rho) {
            b = w.win[i].d;
            break;
        }
    }
    /* mass with d > b and d == b, sum p (d - b)_+: from the window and one
     * pass for the gaps above it */
    double above = 0.0, at = 0.0, excess = 0.0;
    for (size_t j = 0; j < m; j++) {
        double d = drpo__gap(pb, j);
        if (d > b) {
            above += pb->p[j];
            excess += pb->p[j] * (d - b);
        } else if (d == b) {
            at += pb->p[j];
        }
    }
    double take = rho - above; /* taken from the tie group at b */
    if (take < 0.0)
        take = 0.0;
    if (take > at)
        take = at;
    double add = (above + take) / pb->p_top; /* added to the argmax set, per unit of p */
    for (size_t j = 0; j < m; j++) {
        double d = drpo__gap(pb, j), p = pb->p[j];
        pb->q[j] = d > b ? 0.0 : d == b ? p * (1.0 - take / at) : d == 0.0 ? p + add * p : p;
    }
    sol->eta = b;
    sol->lambda = b; /* d value / d rho = l_max - eta */
    sol->value = -pb->mean_d + rho * b + excess;
    if (sol->value > 0.0)
        sol->value = 0.0;
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
    double moved = 0.0, gain = 0.0;
    for (size_t j = 0; j < pb->m; j++) {
        double d = drpo__gap(pb, j);
        if (d > lambda) {
            moved += pb->p[j];
            gain += pb->p[j] * (d - lambda);
            pb->q[j] = 0.0;
        } else {
            pb->q[j] = pb->p[j];
        }
    }
    add_to_top(pb, moved);
    sol->value = -pb->mean_d + gain;
    if (sol->value > 0.0)
        sol->value = 0.0;
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

const drpo_set_ops drpo__set_tv = {"tv", (1u << DRPO__FORM_RADIUS) | (1u << DRPO__FORM_PENALTY),
                                   tv_solve, tv_divergence};

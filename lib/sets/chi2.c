/* chi2.c - chi-square ball and penalty, D(q||p) = 1/2 sum p (q/p - 1)^2.
 *
 * Gap space, pairs sorted by gap.  The worst case is q ∝ p (t - d)_+ for a
 * threshold t (t = l_max - eta in gaps), so it puts weight on the k smallest
 * gaps.  Scanning the sorted gaps finds k; the threshold then has a closed
 * form in the active set's mean m and variance V (computed centred, in a
 * second pass, so nearly tied losses lose no digits):
 *   penalty lambda: sum p (t - d)_+ = lambda      ->  t = m + lambda / P
 *   radius rho:     A2 / A1^2 = 1 + 2 rho         ->  t = m + sqrt(V / ((1+2rho) P - 1))
 * with P the active mass, A1 = sum p (t-d)_+, A2 = sum p (t-d)_+^2. */
#include "../internal.h"

#include <math.h>

typedef struct chi2_active {
    size_t k;    /* active = sorted pairs [0, k) */
    double mass; /* P (exactly 1 when everything is active) */
    double mean; /* mean gap of the active set */
    double var;  /* variance of the active gaps */
} chi2_active;

static chi2_active active_stats(const drpo_pair *a, size_t k, size_t m)
{
    chi2_active s = {k, 0.0, 0.0, 0.0};
    double s1 = 0.0;
    for (size_t j = 0; j < k; j++) {
        s.mass += a[j].p;
        s1 += a[j].p * a[j].d;
    }
    s.mean = s1 / s.mass;
    double s2 = 0.0;
    for (size_t j = 0; j < k; j++) {
        double c = a[j].d - s.mean;
        s2 += a[j].p * c * c;
    }
    s.var = s2 / s.mass;
    if (k == m)
        s.mass = 1.0;
    return s;
}

/* Keep the threshold inside the piece the scan chose: rounding in the
 * running sums may put a closed-form root a hair outside it. */
static double clamp_to_piece(double t, const drpo_pair *a, size_t k, size_t m)
{
    if (t < a[k - 1].d)
        t = a[k - 1].d;
    if (k < m && t > a[k].d)
        t = a[k].d;
    return t;
}

static void chi2_weights(const drpo_problem *pb, double t)
{
    for (size_t j = 0; j < pb->m; j++) {
        double r = t - pb->d[j];
        pb->q[j] = r > 0.0 ? pb->p[j] * r : 0.0;
    }
}

static drpo_status chi2_penalty(const drpo_problem *pb, drpo_solution *sol)
{
    double lambda = pb->param;
    size_t m = pb->m;
    sol->has_eta = sol->has_lambda = 1;
    sol->lambda = lambda;
    sol->iterations = 1;
    if (lambda == 0.0 || pb->p_top >= 1.0) {
        drpo__q_on_top(pb, sol);
        sol->eta = 0.0;
        return DRPO_OK;
    }
    drpo__sort_pairs(pb);
    const drpo_pair *a = pb->pairs;
    size_t k = m;
    double mass = 0.0, s1 = 0.0;
    for (size_t j = 1; j < m; j++) { /* g(t) = sum p (t - d)_+ at t = d_j */
        mass += a[j - 1].p;
        s1 += a[j - 1].p * a[j - 1].d;
        if (mass * a[j].d - s1 >= lambda) {
            k = j;
            break;
        }
    }
    chi2_active s = active_stats(a, k, m);
    double t = clamp_to_piece(s.mean + lambda / s.mass, a, k, m);
    chi2_weights(pb, t);
    sol->eta = t;
    if (k == m) { /* everything active: value = mean + Var / (2 lambda), no overflow */
        /* q ∝ p (1 + (mean - d) / lambda): p (t - d) / lambda, which, unlike
         * p (t - d), cannot overflow when lambda is huge (a penalty clamped
         * to DBL_MAX in gap space, e.g. penalty 0.3 with denormal losses) */
        for (size_t j = 0; j < m; j++) {
            double r = 1.0 + (s.mean - pb->d[j]) / lambda;
            pb->q[j] = r > 0.0 ? pb->p[j] * r : 0.0;
        }
        sol->eta = s.mean; /* eta = mean - lambda, the lambda part kept apart */
        sol->eta_lambda = 1.0;
        sol->value = -s.mean + s.var / (2.0 * lambda);
    } else { /* dual value at t; lambda < 2 here, so the squares cannot overflow */
        double a2 = 0.0;
        for (size_t j = 0; j < k; j++) {
            double r = t - a[j].d;
            a2 += a[j].p * r * r;
        }
        sol->value = -t + 0.5 * lambda + a2 / (2.0 * lambda);
    }
    if (sol->value > 0.0)
        sol->value = 0.0;
    return DRPO_OK;
}

static drpo_status chi2_radius(const drpo_problem *pb, drpo_solution *sol)
{
    double rho = pb->param, c2 = 1.0 + 2.0 * rho;
    size_t m = pb->m;
    sol->iterations = 1;
    sol->has_eta = sol->has_lambda = 1;
    if (rho == 0.0) {
        drpo__q_base(pb, sol);
        sol->has_eta = 0;
        sol->lambda = INFINITY;
        return DRPO_OK;
    }
    if (pb->p_top >= 1.0 || c2 * pb->p_top >= 1.0) {
        drpo__q_on_top(pb, sol);
        sol->eta = 0.0;
        sol->lambda = 0.0;
        sol->tight = pb->p_top < 1.0 && c2 * pb->p_top == 1.0;
        return DRPO_OK;
    }
    drpo__sort_pairs(pb);
    const drpo_pair *a = pb->pairs;
    size_t k = m;
    double mass = 0.0, s1 = 0.0, s2 = 0.0;
    for (size_t j = 1; j < m; j++) { /* h(t) = A2 / A1^2 at t = d_j, decreasing in t */
        mass += a[j - 1].p;
        s1 += a[j - 1].p * a[j - 1].d;
        s2 += a[j - 1].p * a[j - 1].d * a[j - 1].d;
        double t = a[j].d;
        double a1 = mass * t - s1;
        double a2 = mass * t * t - 2.0 * t * s1 + s2;
        if (a1 > 0.0 && a2 <= c2 * a1 * a1) {
            k = j;
            break;
        }
    }
    chi2_active s = active_stats(a, k, m);
    if (s.var == 0.0) {
        /* the scan stopped on the tied maxima: the radius admits the maximum
         * loss up to rounding in the two orders p_top was summed in */
        drpo__q_on_top(pb, sol);
        sol->eta = 0.0;
        sol->lambda = 0.0;
        return DRPO_OK;
    }
    double denom = c2 * s.mass - 1.0;
    double delta = denom > 0.0 && s.var > 0.0 ? sqrt(s.var / denom) : 0.0;
    double t = clamp_to_piece(s.mean + delta, a, k, m);
    chi2_weights(pb, t);
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
                                     chi2_solve, chi2_divergence};

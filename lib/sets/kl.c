/* kl.c - Kullback-Leibler ball and penalty: q ∝ p exp(-u d), u = 1/lambda.
 *
 * Gap space (d >= 0, d = 0 on the argmax set).  With w_j = p_j exp(-u d_j),
 * Z = sum w, E = E_q[d]:
 *   KL(q_u || p) = -u E - log Z, increasing in u from 0 to -log p_top;
 *   penalty form: value = lambda log Z = lambda log1p(sum p expm1(-d/lambda));
 *   radius form:  u solves KL(q_u) = rho by safeguarded Newton
 *                 (d KL / du = u Var_q(d)), value = -E_q[d].
 * No exponent is ever positive, so nothing overflows. */
#include "../internal.h"

#include <float.h>
#include <math.h>

typedef struct kl_eval {
    double log_z; /* log sum p exp(-u d) */
    double mean;  /* E_q[d] */
    double var;   /* Var_q(d) */
} kl_eval;

static kl_eval kl_evaluate(const drpo_problem *pb, double u)
{
    double em1 = 0.0, z = 0.0, s1 = 0.0;
    for (size_t j = 0; j < pb->m; j++) {
        double x = -u * pb->d[j];
        double w = pb->p[j] * exp(x);
        em1 += pb->p[j] * expm1(x);
        z += w;
        s1 += w * pb->d[j];
    }
    kl_eval e;
    /* log1p keeps full relative accuracy when Z is close to 1 (small u) */
    e.log_z = z < 0.5 ? log(z) : log1p(em1);
    e.mean = s1 / z;
    double s2 = 0.0;
    for (size_t j = 0; j < pb->m; j++) {
        double c = pb->d[j] - e.mean;
        s2 += pb->p[j] * exp(-u * pb->d[j]) * c * c;
    }
    e.var = s2 / z;
    return e;
}

static double kl_of(double u, const kl_eval *e) { return -u * e->mean - e->log_z; }

static void kl_weights(const drpo_problem *pb, double u)
{
    for (size_t j = 0; j < pb->m; j++)
        pb->q[j] = pb->p[j] * exp(-u * pb->d[j]);
}

static drpo_status kl_penalty(const drpo_problem *pb, drpo_solution *sol)
{
    double lambda = pb->param;
    sol->has_lambda = 1;
    sol->has_eta = 1;
    sol->lambda = lambda;
    sol->iterations = 1;
    if (lambda == 0.0 || pb->p_top >= 1.0) {
        drpo__q_on_top(pb, sol);
        sol->eta = 0.0;
        return DRPO_OK;
    }
    double u = 1.0 / lambda; /* lambda >= DBL_MIN * 2^-2 after scaling: u may be inf */
    if (isinf(u)) {
        drpo__q_on_top(pb, sol);
        sol->eta = 0.0;
        return DRPO_OK;
    }
    kl_eval e = kl_evaluate(pb, u);
    kl_weights(pb, u);
    sol->value = lambda * e.log_z;
    sol->eta = -sol->value; /* mu = lambda log E_p exp(l / lambda), in gaps */
    return DRPO_OK;
}

static drpo_status kl_radius(const drpo_problem *pb, drpo_solution *sol)
{
    double rho = pb->param;
    sol->has_lambda = 1;
    sol->has_eta = 1;
    sol->iterations = 0;
    if (rho == 0.0) {
        drpo__q_base(pb, sol);
        sol->lambda = INFINITY;
        sol->eta = pb->mean_d;
        return DRPO_OK;
    }
    if (pb->p_top >= 1.0 || rho >= -log(pb->p_top)) {
        drpo__q_on_top(pb, sol);
        sol->lambda = 0.0;
        sol->eta = 0.0;
        sol->tight = pb->p_top < 1.0 && rho == -log(pb->p_top);
        return DRPO_OK;
    }
    /* Start from the small-radius expansion KL ~ u^2 Var_p(d) / 2. */
    double var_p = 0.0;
    for (size_t j = 0; j < pb->m; j++) {
        double c = pb->d[j] - pb->mean_d;
        var_p += pb->p[j] * c * c;
    }
    double u = var_p > 0.0 ? sqrt(2.0 * rho / var_p) : 1.0;
    if (!(u > 0.0) || isinf(u))
        u = 1.0;
    double lo = 0.0, hi = INFINITY; /* KL(lo) < rho < KL(hi) */
    double d_min = INFINITY; /* smallest positive gap */
    for (size_t j = 0; j < pb->m; j++)
        if (pb->d[j] > 0.0 && pb->d[j] < d_min)
            d_min = pb->d[j];
    int it;
    for (it = 1; it <= 400; it++) {
        kl_eval e = kl_evaluate(pb, u);
        double f = kl_of(u, &e) - rho;
        if (fabs(f) <= 1e-14 * rho)
            break;
        if (f < 0)
            lo = u;
        else
            hi = u;
        double next = u - f / (u * e.var);
        if (isinf(hi) && u * d_min > 1500.0) {
            /* every weight off the argmax set is below 1e-650: no finite u
             * reaches rho (it sits within rounding of -log p_top), and the
             * argmax set is the answer */
            drpo__q_on_top(pb, sol);
            sol->lambda = 0.0;
            sol->eta = 0.0;
            sol->iterations = it;
            return DRPO_OK;
        }
        if (!(next > lo && next < hi) || !isfinite(next)) {
            if (isinf(hi))
                next = u * 64.0;
            else if (lo == 0.0 || hi > 4.0 * lo)
                next = lo == 0.0 ? hi / 4.0 : sqrt(lo * hi);
            else
                next = 0.5 * (lo + hi);
        }
        if (!isinf(hi) && hi - lo <= 4.0 * DBL_EPSILON * hi)
            break;
        u = next;
    }
    if (it > 400)
        return DRPO_ERR_NUMERICAL;
    kl_eval e = kl_evaluate(pb, u);
    kl_weights(pb, u);
    sol->value = -e.mean;
    sol->lambda = 1.0 / u;
    sol->eta = -e.log_z / u; /* mu = lambda log E_p exp(l / lambda), in gaps */
    sol->iterations = it;
    sol->tight = 1;
    return DRPO_OK;
}

static drpo_status kl_solve(const drpo_problem *pb, drpo_solution *sol)
{
    return pb->form == DRPO__FORM_PENALTY ? kl_penalty(pb, sol) : kl_radius(pb, sol);
}

static double kl_divergence(size_t m, const double *q, const double *p)
{
    double s = 0.0;
    for (size_t j = 0; j < m; j++)
        if (q[j] > 0.0)
            s += q[j] * log(q[j] / p[j]);
    return s > 0.0 ? s : 0.0;
}

const drpo_set_ops drpo__set_kl = {"kl", (1u << DRPO__FORM_RADIUS) | (1u << DRPO__FORM_PENALTY),
                                   kl_solve, kl_divergence};

/* duals.c - the stochastic dual mode (joint objectives whose per-unit
 * gradients are unbiased for the full-data robust objective) and the group
 * weights of group DRO. */
#include "duals.h"

#include <math.h>

/* Bounds that keep a positive dual away from 0 and infinity. */
#define DUAL_MIN 1e-8
#define DUAL_MAX 1e8
/* KL weights exp(z) are kept at most exp(Z_CAP) ~ 1e13 times the base: the
 * normaliser (eta, mu) is raised to meet the batch's largest loss when it
 * lags further behind than that. */
#define Z_CAP 30.0

static double clamp(double x, double lo, double hi) { return x < lo ? lo : x > hi ? hi : x; }

static double largest(size_t n, const double *x)
{
    double m = -INFINITY;
    for (size_t i = 0; i < n; i++)
        m = x[i] > m ? x[i] : m;
    return m;
}

/* A positive dual takes the plain SGD step, x - lr g, but never leaves
 * [x / e, x e] in one step: an unbounded step can take x from the loss
 * scale to its floor at once (all losses tied at the start, a large
 * gradient while x is small), after which the weights exp(z / x) or r / x
 * overflow and training cannot recover. */
static double positive_step(double x, double lr, double g)
{
    const double e = 2.718281828459045;
    return clamp(clamp(x - lr * g, x / e, x * e), DUAL_MIN, DUAL_MAX);
}

void drpo__duals_init(drpo_duals *d, const drpo_objective_config *cfg, const drpo_objective *obj,
                      double scale)
{
    double eta = 0.0, lambda = 0.0;
    /* A first batch whose losses (nearly) tie has an optimal multiplier near
     * 0, from which SGD on the duals explodes: start no lower than a tenth of
     * the batch's loss scale. */
    double floor = 0.1 * (scale > 0.0 ? scale : 1.0);
    drpo_objective_diag(obj, DRPO_DIAG_ETA, &eta);
    drpo_objective_diag(obj, DRPO_DIAG_LAMBDA, &lambda);
    d->init = 1;
    d->eta = eta;
    d->aux = 0.0;
    if (cfg->set == DRPO_SET_KL && cfg->form == DRPO__FORM_PENALTY) {
        d->eta = eta / cfg->param; /* mu / lambda */
    } else if (cfg->set == DRPO_SET_KL && cfg->form == DRPO__FORM_RADIUS) {
        d->aux = clamp(fmax(lambda, floor), DUAL_MIN, DUAL_MAX);
    } else if (cfg->set == DRPO_SET_CHI2 && cfg->form == DRPO__FORM_RADIUS) {
        d->aux = clamp(fmax(sqrt(1.0 + 2.0 * cfg->param) * lambda, floor), DUAL_MIN, DUAL_MAX);
    }
}

void drpo__duals_report(const drpo_duals *d, const drpo_objective_config *cfg, double *eta,
                        double *lambda, int *has_lambda)
{
    *eta = d->eta;
    *lambda = 0.0;
    *has_lambda = 0;
    if (cfg->set == DRPO_SET_KL && cfg->form == DRPO__FORM_PENALTY) {
        *eta = d->eta * cfg->param;
        *lambda = cfg->param;
        *has_lambda = 1;
    } else if (cfg->set == DRPO_SET_KL && cfg->form == DRPO__FORM_RADIUS) {
        *lambda = d->aux;
        *has_lambda = 1;
    } else if (cfg->set == DRPO_SET_CHI2) {
        *has_lambda = 1;
        *lambda = cfg->form == DRPO__FORM_RADIUS ? d->aux / sqrt(1.0 + 2.0 * cfg->param)
                                                 : cfg->param;
    }
}

double drpo__duals_weights(const drpo_duals *d, const drpo_objective_config *cfg, size_t n,
                           const double *loss, const double *base, double *a, drpo_duals *next,
                           double *dual_grad)
{
    double eta = d->eta, aux = d->aux, p = cfg->param, lr = cfg->dual_lr;
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, value;
    *next = *d;
    switch (cfg->set) {
    case DRPO_SET_CVAR: /* eta + E (l - eta)_+ / alpha */
        for (size_t u = 0; u < n; u++) {
            double r = loss[u] - eta;
            a[u] = r > 0.0 ? 1.0 / p : 0.0;
            s0 += base[u] * (r > 0.0);
            s1 += base[u] * (r > 0.0 ? r : 0.0);
        }
        value = eta + s1 / p;
        *dual_grad = 1.0 - s0 / p;
        next->eta = eta - lr * *dual_grad;
        break;
    case DRPO_SET_CHI2: {
        double c = sqrt(1.0 + 2.0 * p); /* radius form only */
        for (size_t u = 0; u < n; u++) {
            double r = loss[u] - eta;
            r = r > 0.0 ? r : 0.0;
            s1 += base[u] * r;
            s2 += base[u] * r * r;
            a[u] = r;
        }
        if (cfg->form == DRPO__FORM_PENALTY) { /* eta + lambda/2 + E r^2 / (2 lambda) */
            for (size_t u = 0; u < n; u++)
                a[u] /= p;
            value = eta + 0.5 * p + s2 / (2.0 * p);
            *dual_grad = 1.0 - s1 / p;
            next->eta = eta - lr * *dual_grad;
        } else { /* eta + (c/2)(t + E r^2 / t) */
            for (size_t u = 0; u < n; u++)
                a[u] *= c / aux;
            value = eta + 0.5 * c * (aux + s2 / aux);
            double g_eta = 1.0 - c * s1 / aux, g_t = 0.5 * c * (1.0 - s2 / (aux * aux));
            *dual_grad = sqrt(g_eta * g_eta + g_t * g_t);
            next->eta = eta - lr * g_eta;
            next->aux = positive_step(aux, lr, g_t);
        }
        break;
    }
    case DRPO_SET_KL:
        if (cfg->form == DRPO__FORM_PENALTY) { /* lambda (eta + E exp(l/lambda - eta) - 1) */
            eta = fmax(eta, largest(n, loss) / p - Z_CAP);
            for (size_t u = 0; u < n; u++) {
                a[u] = exp(loss[u] / p - eta);
                s0 += base[u] * a[u];
            }
            value = p * (eta + s0 - 1.0);
            *dual_grad = fabs(p * (1.0 - s0));
            next->eta = eta - lr * p * (1.0 - s0);
        } else { /* lambda rho + mu + lambda E exp((l - mu)/lambda) - lambda */
            /* E a - 1 summed as E expm1(z): at a large lambda (radius near 0)
             * the weights are all near 1 and s0 - 1 would lose the digits */
            eta = fmax(eta, largest(n, loss) - Z_CAP * aux);
            for (size_t u = 0; u < n; u++) {
                double z = (loss[u] - eta) / aux, e1 = expm1(z);
                a[u] = 1.0 + e1;
                s0 += base[u] * e1;
                s1 += base[u] * a[u] * z;
            }
            value = aux * p + eta + aux * s0;
            double g_mu = -s0, g_l = p + s0 - s1;
            *dual_grad = sqrt(g_mu * g_mu + g_l * g_l);
            next->eta = eta - lr * g_mu;
            next->aux = positive_step(aux, lr, g_l);
        }
        break;
    default: /* none: the mean */
        for (size_t u = 0; u < n; u++) {
            a[u] = 1.0;
            s1 += base[u] * loss[u];
        }
        value = s1;
        *dual_grad = 0.0;
        break;
    }
    if (cfg->set == DRPO_SET_CVAR || cfg->set == DRPO_SET_CHI2)
        *dual_grad = fabs(*dual_grad);
    /* A threshold above the batch's largest loss gives every unit weight 0
     * and a dual gradient of 1: recovering from a large step past it takes
     * (overshoot / lr) idle steps.  Keep it at most there (KL penalty: in
     * units of 1/lambda), so the largest loss keeps its weight. */
    if (cfg->set != DRPO_SET_NONE) {
        double top = largest(n, loss);
        if (cfg->set == DRPO_SET_KL && cfg->form == DRPO__FORM_PENALTY)
            top /= p;
        next->eta = fmin(next->eta, top);
    }
    return value;
}

static double group_divergence(const drpo_objective_config *cfg, size_t G, const double *w,
                               const double *prior)
{
    const drpo_set_ops *ops = drpo__set_ops(cfg->set);
    return ops->divergence(G, w, prior);
}

void drpo__group_update(const drpo_objective_config *cfg, size_t G, const double *w,
                        const double *group_loss, const unsigned char *present, double *next,
                        double *scratch)
{
    double top = -INFINITY;
    for (size_t g = 0; g < G; g++)
        if (present[g] && group_loss[g] > top)
            top = group_loss[g];
    double sum = 0.0;
    for (size_t g = 0; g < G; g++) {
        /* shifting by the largest loss changes nothing after normalisation */
        next[g] = present[g] ? w[g] * exp(cfg->dual_lr * (group_loss[g] - top)) : w[g];
        sum += next[g];
    }
    for (size_t g = 0; g < G; g++)
        next[g] /= sum;
    if (cfg->set == DRPO_SET_NONE || cfg->form == DRPO__FORM_PENALTY)
        return;
    /* pull toward the uniform prior: D is convex along the segment and 0 at
     * the prior, so the feasible tau form an interval [0, tau*] */
    double prior_val = 1.0 / (double)G, limit = cfg->param;
    double *prior = scratch, *trial = scratch + G;
    for (size_t g = 0; g < G; g++)
        prior[g] = prior_val;
    if (cfg->set == DRPO_SET_CVAR)
        limit = 1.0 / cfg->param;
    if (group_divergence(cfg, G, next, prior) <= limit)
        return;
    double lo = 0.0, hi = 1.0;
    for (int it = 0; it < 60; it++) {
        double tau = 0.5 * (lo + hi);
        for (size_t g = 0; g < G; g++)
            trial[g] = prior_val + tau * (next[g] - prior_val);
        if (group_divergence(cfg, G, trial, prior) <= limit)
            lo = tau;
        else
            hi = tau;
    }
    for (size_t g = 0; g < G; g++)
        next[g] = prior_val + lo * (next[g] - prior_val);
}

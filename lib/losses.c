/* losses.c - per-pair preference losses and their derivatives in the margin,
 * in log-sigmoid form: softplus(x) = max(x, 0) + log1p(exp(-|x|)) never
 * overflows, and sigmoid is evaluated on the side where exp cannot. */
#include "internal.h"
#include "vec.h"

#include <math.h>

/* -log sigmoid(z) */
static double neg_log_sigmoid(double z) { return fmax(-z, 0.0) + log1p(exp(-fabs(z))); }

/* (1 - e) sigmoid(-z) - e sigmoid(z) = sigmoid(-z) - e, as
 * ((1 - 2e) - e expm1(z)) / (1 + exp(z)) for z <= 0 (two terms >= 0) and
 * ((1 - 2e) exp(-z) + e expm1(-z)) / (1 + exp(-z)) for z > 0.  Subtracting
 * the two sigmoids directly lost all relative accuracy where they nearly
 * cancel at small |z| (smoothing 0.5 near z = 0: relative error 3e-8 at
 * z = 1e-9); this form is exact there and cancels only around the root
 * z = log((1 - e) / e) > 0 of e < 0.5, where the slope is ill-conditioned. */
static double cdpo_slope(double z, double e)
{
    if (z <= 0.0)
        return ((1.0 - 2.0 * e) - e * expm1(z)) / (1.0 + exp(z));
    double t = exp(-z);
    return ((1.0 - 2.0 * e) * t + e * expm1(-z)) / (1.0 + t);
}

static drpo_status check_loss_params(int32_t kind, double beta, double smoothing)
{
    if (kind < DRPO_LOSS_BT || kind > DRPO_LOSS_CDPO)
        return DRPO_ERR_KEY;
    if (kind != DRPO_LOSS_BT && !(beta > 0.0 && isfinite(beta)))
        return DRPO_ERR_PARAM_RANGE;
    if (kind == DRPO_LOSS_CDPO && !(smoothing >= 0.0 && smoothing <= 0.5))
        return DRPO_ERR_PARAM_RANGE;
    return DRPO_OK;
}

/* -log sigmoid(z) and its slope -sigmoid(-z) for z = scale m on four lanes,
 * from one exp(-|z|): the loss max(-z, 0) + log1p(exp(-|z|)), the slope
 * -1 / (1 + exp(z)) for z <= 0 and -exp(-z) / (1 + exp(-z)) above, on the
 * side where exp cannot overflow; times scale (d z / d m).  The exp and
 * log1p are the library's own (lib/vec_exp.h): the C library's, one call
 * each per pair, took about as long as the linear model's two passes over
 * 64 features. */
DRPO__INLINE void log_sigmoid4(drpo_v4d m, double scale, drpo_v4d *l, drpo_v4d *dl)
{
    const drpo_v4d zero = drpo__v4_set1(0.0), one = drpo__v4_set1(1.0);
    drpo_v4d z = m * scale;
    drpo_v4d e = drpo__v4_exp_nonpos((drpo_v4d)((drpo_v4i)z | (drpo_v4i)drpo__v4_set1(-0.0)));
    *l = drpo__v4_select(-z > zero, -z, zero) + drpo__v4_log1p_unit(e);
    *dl = -(drpo__v4_select(z <= zero, one, e) / (one + e)) * scale;
}

DRPO__INLINE int log_sigmoid_body(size_t n, const double *m, double scale, double *l,
                                  double *dl)
{
    drpo_v4d a, b;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        log_sigmoid4(drpo__v4_load(m + i), scale, &a, &b);
        drpo__v4_store(l + i, a);
        drpo__v4_store(dl + i, b);
    }
    if (i < n) { /* the last n mod 4, padded: the same operations per lane */
        drpo_v4d t = drpo__v4_set1(0.0);
        for (size_t k = 0; i + k < n; k++)
            t[k] = m[i + k];
        log_sigmoid4(t, scale, &a, &b);
        for (size_t k = 0; i + k < n; k++) {
            l[i + k] = a[k];
            dl[i + k] = b[k];
        }
    }
    return 0;
}

DRPO__KERNEL_DISPATCH(int, log_sigmoid_pass,
                      (size_t n, const double *m, double scale, double *l, double *dl),
                      (n, m, scale, l, dl), log_sigmoid_body(n, m, scale, l, dl))

/* One loss and its slope in the margin m. */
static void loss_at(int32_t kind, double m, double beta, double eps, double *l, double *dl)
{
    double z = beta * m;
    switch (kind) {
    case DRPO_LOSS_IPO: {
        double r = m - 0.5 / beta;
        *l = r * r;
        *dl = 2.0 * r;
        break;
    }
    case DRPO_LOSS_HINGE:
        *l = z < 1.0 ? 1.0 - z : 0.0;
        *dl = z < 1.0 ? -beta : 0.0;
        break;
    default: /* DRPO_LOSS_CDPO */
        /* smoothing 0 is DPO: without the test, beta * m = +inf (a finite
         * margin times a finite beta) gave 0 * inf = NaN instead of 0 */
        *l = (1.0 - eps) * neg_log_sigmoid(z) + (eps > 0.0 ? eps * neg_log_sigmoid(-z) : 0.0);
        *dl = -beta * cdpo_slope(z, eps);
        break;
    }
}

void drpo__losses(int32_t kind, size_t n, const double *margin, double beta, double smoothing,
                  double *loss, double *dloss)
{
    if (kind == DRPO_LOSS_BT || kind == DRPO_LOSS_DPO) {
        double scale = kind == DRPO_LOSS_BT ? 1.0 : beta;
        if (loss && dloss) {
            log_sigmoid_pass(n, margin, scale, loss, dloss);
            return;
        }
        enum { BLOCK = 256 };
        double l[BLOCK], dl[BLOCK];
        for (size_t i = 0; i < n; i += BLOCK) {
            size_t k = n - i < BLOCK ? n - i : BLOCK;
            log_sigmoid_pass(k, margin + i, scale, loss ? loss + i : l, dloss ? dloss + i : dl);
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        double l, dl;
        loss_at(kind, margin[i], beta, smoothing, &l, &dl);
        if (loss)
            loss[i] = l;
        if (dloss)
            dloss[i] = dl;
    }
}

drpo_status drpo_loss_from_margins(int32_t kind, size_t n, const double *margin, double beta,
                                   double smoothing, double *loss, double *dloss)
{
    if (!margin && n)
        return DRPO_ERR_NULL;
    drpo_status st = check_loss_params(kind, beta, smoothing);
    if (st != DRPO_OK)
        return st;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(margin[i]))
            return DRPO_ERR_LOSS_NONFINITE;
    drpo__losses(kind, n, margin, beta, smoothing, loss, dloss);
    return DRPO_OK;
}

drpo_status drpo_loss_from_logps(int32_t kind, size_t n, const double *policy_chosen,
                                 const double *policy_rejected, const double *ref_chosen,
                                 const double *ref_rejected, double beta, double smoothing,
                                 double *loss, double *dloss)
{
    if (n && (!policy_chosen || !policy_rejected || !ref_chosen || !ref_rejected))
        return DRPO_ERR_NULL;
    drpo_status st = check_loss_params(kind, beta, smoothing);
    if (st != DRPO_OK)
        return st;
    for (size_t i = 0; i < n; i++) {
        double m = (policy_chosen[i] - ref_chosen[i]) - (policy_rejected[i] - ref_rejected[i]);
        if (!isfinite(m))
            return DRPO_ERR_LOSS_NONFINITE;
    }
    enum { BLOCK = 256 };
    double m[BLOCK];
    for (size_t i = 0; i < n; i += BLOCK) {
        size_t k = n - i < BLOCK ? n - i : BLOCK;
        for (size_t j = 0; j < k; j++)
            m[j] = (policy_chosen[i + j] - ref_chosen[i + j]) -
                   (policy_rejected[i + j] - ref_rejected[i + j]);
        drpo__losses(kind, k, m, beta, smoothing, loss ? loss + i : NULL, dloss ? dloss + i : NULL);
    }
    return DRPO_OK;
}

drpo_status drpo__loss_check(int32_t kind, double beta, double smoothing)
{
    return check_loss_params(kind, beta, smoothing);
}

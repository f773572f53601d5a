/* duals.h - dual-variable state of the stochastic and group modes (internal). */
#ifndef DRPO_DUALS_H
#define DRPO_DUALS_H

#include "internal.h"

/* Stochastic duals, per set and form (design notes §3):
 *   CVaR, chi2 penalty: eta;   chi2 radius: eta and t > 0;
 *   KL penalty: eta (log units);   KL radius: mu (as eta) and lambda > 0. */
typedef struct drpo_duals {
    int init; /* set by the first batch's exact solve */
    double eta;
    double aux; /* chi2 radius: t; KL radius: lambda */
} drpo_duals;

/* Initialise from the objective's last exact solve (its ETA / LAMBDA);
 * scale is the batch's mean |loss|, which bounds a positive dual from below. */
void drpo__duals_init(drpo_duals *d, const drpo_objective_config *cfg, const drpo_objective *obj,
                      double scale);

/* Per-unit gradient weights a_u (they multiply the unit loss in the joint
 * objective), the joint objective's value on the batch, and the duals after
 * one projected SGD step of size cfg->dual_lr; |dual gradient| in *dual_grad. */
double drpo__duals_weights(const drpo_duals *d, const drpo_objective_config *cfg, size_t n,
                           const double *loss, const double *base, double *a, drpo_duals *next,
                           double *dual_grad);

/* Report eta and lambda in the units of DRPO_DIAG_ETA / DRPO_DIAG_LAMBDA. */
void drpo__duals_report(const drpo_duals *d, const drpo_objective_config *cfg, double *eta,
                        double *lambda, int *has_lambda);

/* Group DRO: w_g <- w_g exp(step L_g) over the groups present, renormalised,
 * then pulled toward the uniform prior just enough to satisfy the set's ball
 * (the largest tau in [0, 1] with D(prior + tau (w - prior) || prior) <= rho;
 * CVaR: max w/prior <= 1/alpha).  present[g] != 0 marks the batch's groups;
 * scratch holds 2 G doubles. */
void drpo__group_update(const drpo_objective_config *cfg, size_t G, const double *w,
                        const double *group_loss, const unsigned char *present, double *next,
                        double *scratch);

#endif

/* optim.h - optimisers and learning-rate schedules (internal). */
#ifndef DRPO_OPTIM_H
#define DRPO_OPTIM_H

#include "internal.h"

typedef struct drpo_optim_config {
    int32_t kind; /* DRPO_OPT_* */
    double lr, momentum;
    int nesterov;
    double beta1, beta2, eps, weight_decay, clip_norm;
    int32_t schedule; /* DRPO_SCHED_* */
    double warmup, total_steps, min_lr;
} drpo_optim_config;

typedef struct drpo_optim_stats {
    double update_norm2; /* ||theta_new - theta||^2 */
    double param_norm2;  /* ||theta_new||^2 */
    int finite;          /* every new parameter and moment is finite */
} drpo_optim_stats;

void drpo__optim_defaults(drpo_optim_config *c);
/* Learning rate of the step with 0-based index `step`. */
double drpo__lr_at(const drpo_optim_config *c, uint64_t step);
/* Moments the optimiser keeps per parameter (0, 1 or 2). */
int drpo__optim_moments(int32_t kind);
/* One update of n parameters with gradient g * gscale at 0-based step index
 * `step`.  With commit == 0 nothing is written: the call only measures
 * (finiteness and norms), so a step can refuse an update before applying it. */
void drpo__optim_update(const drpo_optim_config *c, size_t n, float *theta, const float *g,
                        double gscale, float *m1, float *m2, uint64_t step, double lr,
                        int commit, drpo_optim_stats *st);

#endif

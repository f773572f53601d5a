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
    uint32_t m1_max, m2_max; /* max |new moment| as float bits (0 when not kept) */
} drpo_optim_stats;

/* The bits of a float's |x| at and above which x is not finite. */
#define DRPO__F32_INF_BITS 0x7f800000u

void drpo__optim_defaults(drpo_optim_config *c);
/* Learning rate of the step with 0-based index `step`. */
double drpo__lr_at(const drpo_optim_config *c, uint64_t step);
/* Moments the optimiser keeps per parameter (0, 1 or 2). */
int drpo__optim_moments(int32_t kind);
/* One update of n parameters with gradient g * gscale at 0-based step index
 * `step`; g is left all zeros, ready for the next backward (cleared as it is
 * read, while its lines are in cache: a clearing pass of its own before the
 * backward had to fetch them again).  With commit == 0 nothing is written:
 * the call only measures (finiteness and norms), so a step can refuse an
 * update before applying it. */
void drpo__optim_update(const drpo_optim_config *c, size_t n, float *theta, float *g,
                        double gscale, float *m1, float *m2, uint64_t step, double lr,
                        int commit, drpo_optim_stats *st);
/* 1 when the update is sure to leave every parameter and moment finite,
 * from bounds alone: the largest |gradient|, |parameter| and |moment| (as
 * float bits, see DRPO__F32_INF_BITS), all finite; then the measuring call
 * (commit == 0) can be skipped.  0 means "measure first", not "fails". */
int drpo__optim_bounded(const drpo_optim_config *c, uint64_t step, double lr, double gscale,
                        uint32_t gmax, uint32_t tmax, uint32_t m1max, uint32_t m2max);
/* One pass over the gradient: its squared norm (summed as the update sums
 * its norms), the largest |g| and, when theta is not NULL, the largest
 * |theta|, both as float bits. */
void drpo__grad_stats(size_t n, const float *g, const float *theta, double *norm2,
                      uint32_t *gmax, uint32_t *tmax);
float drpo__f32_from_bits(uint32_t u);

#endif

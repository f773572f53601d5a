/* trainer.h - the trainer's layout, shared by trainer.c and checkpoint.c. */
#ifndef DRPO_TRAINER_H
#define DRPO_TRAINER_H

#include "batch.h"
#include "duals.h"
#include "model.h"
#include "optim.h"

#define DRPO__NTDIAG (DRPO_TDIAG_CALLBACK_CODE + 1)
#define DRPO__MAX_WINDOW 1024

typedef struct drpo_test_config {
    double grad_tol, rel_tol, smoothing;
    int32_t window;
    double max_steps;
} drpo_test_config;

struct drpo_trainer {
    drpo_allocator alloc;
    drpo_model *model;   /* borrowed, may be NULL (weights only) */
    drpo_objective *obj; /* borrowed */
    drpo_optim_config opt;
    drpo_test_config test;
    drpo_progress_fn progress;
    void *progress_user;

    /* state: what a checkpoint saves */
    uint64_t steps;
    float *m1, *m2;        /* optimiser moments, allocated at the first step */
    drpo_duals duals;
    size_t G;              /* groups, fixed at creation */
    double *group_w;       /* [G] group weights (group mode) */
    double smoothed;       /* EMA of the robust objective */
    double history[DRPO__MAX_WINDOW + 1]; /* smoothed values, a ring */
    uint32_t hist_len, hist_pos;

    /* staged by the weights computation, applied by a step or a commit */
    int staged;
    drpo_duals next_duals;
    double *next_group_w;  /* [G] */
    double next_diag[DRPO__NTDIAG];
    unsigned next_diag_set;
    double *next_gdiag;    /* [2 G]: weight share, mean loss */
    int next_group_mode, next_stochastic; /* which state the staging updates */

    /* scratch, grown on demand and reused */
    size_t pair_cap, unit_cap;
    double *pair_loss, *pair_w;          /* [pair_cap] */
    double *unit_loss, *unit_base, *unit_q; /* [unit_cap] */
    float *grad;                         /* [n_params] */
    double *group_sum, *group_tmp;       /* [G], [2G] */
    size_t *group_pairs;                 /* [G] */
    unsigned char *group_present;        /* [G] */

    /* diagnostics of the last step or commit */
    double diag[DRPO__NTDIAG];
    unsigned diag_set;
    double *gdiag;                       /* [3 G]: mean loss, weight, pairs */
    char err[DRPO__ERRLEN];
};

#define DRPO__NOPT (DRPO_TRAIN_SMOOTHING + 1)
/* Options by key (trainer.c): validity, value, and setting without checks of state. */
int drpo__trainer_option_valid(int32_t key, double value);
double drpo__trainer_read_option(const drpo_trainer *t, int32_t key);
void drpo__trainer_apply_option(drpo_trainer *t, int32_t key, double value);

/* Allocate the optimiser moments for the configured optimiser (idempotent). */
drpo_status drpo__trainer_moments(drpo_trainer *t);

#endif

/* trainer.h - the trainer's layout, shared by trainer.c and checkpoint.c. */
#ifndef DRPO_TRAINER_H
#define DRPO_TRAINER_H

#include "batch.h"
#include "keytable.h"
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
    drpo_allocator alloc; /* first member: made by drpo__handle_new */
    drpo_model *model;   /* borrowed, may be NULL (weights only) */
    drpo_objective *obj; /* borrowed */
    drpo_optim_config opt;
    drpo_test_config test;
    drpo_progress_fn progress;
    void *progress_user;

    /* state: what a checkpoint saves */
    uint64_t steps;
    float *m1, *m2;        /* optimiser moments, allocated at the first step */
    /* max |m1|, max |m2| as float bits, tracked by the update (the moments
     * are the library's); valid only when moments_max_known (not after a
     * checkpoint load) */
    uint32_t m1_max, m2_max;
    int moments_max_known;
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
    double *unit_comp;                   /* [unit_cap] compensation of the unit loss sums */
    float *grad;                         /* [n_params] */
    int grad_clear;                      /* grad is all zeros (the update clears it) */
    double *group_sum, *group_tmp;       /* [G], [2G] */
    size_t *group_pairs;                 /* [G] */
    unsigned char *group_present;        /* [G] */

    /* data-parallel scratch (units.c) */
    uint64_t *rank_words;                /* [2 size]: units and bytes per rank */
    unsigned char *records;              /* every rank's unit records */
    void *gunits;                        /* one block for the three arrays below */
    uint64_t *gkey;                      /* [global units] */
    size_t *gcount;
    double *gsum, *gerr;                 /* compensated loss sums */
    size_t *l2g;                         /* [local units] global unit of each */
    size_t *gpair_unit;                  /* [pairs] global unit of each local pair */
    double *reduce;                      /* [2 G + 2] */
    size_t rank_cap, records_cap, gunit_cap, l2g_cap, gpair_cap, reduce_cap;
    drpo_keytable gtable;

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
/* Every option at its default (trainer_options.c). */
void drpo__trainer_defaults(drpo_trainer *t);

/* The units of a step: the batch's own, or with a collective the global
 * units merged over every rank (units.c). */
typedef struct drpo_units {
    size_t U;                /* units; their losses and base in t->unit_loss / unit_base */
    double N;                /* pairs over all ranks */
    const size_t *pair_unit; /* [local pairs] unit of each */
    const size_t *count;     /* [U] pairs of each unit over all ranks */
    double mean;             /* mean pair loss over all ranks */
} drpo_units;

/* Unit losses and base weights, group sums (t->group_sum, t->group_pairs)
 * and the mean loss of a batch, over all ranks when cfg has a collective. */
drpo_status drpo__units_build(drpo_trainer *t, const drpo_batch *b, const double *loss,
                              const drpo_objective_config *cfg, drpo_units *u);
/* Sum n doubles over all ranks in place (nothing to do without a collective). */
drpo_status drpo__units_allreduce(drpo_trainer *t, const drpo_objective_config *cfg, double *v,
                                  size_t n);
void drpo__units_free(drpo_trainer *t);
/* Grow the trainer's unit scratch to U units (trainer.c). */
drpo_status drpo__trainer_unit_scratch(drpo_trainer *t, size_t U);

/* Allocate the optimiser moments for the configured optimiser (idempotent). */
drpo_status drpo__trainer_moments(drpo_trainer *t);

#endif

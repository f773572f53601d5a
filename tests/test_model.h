/* test_model.h - a linear Bradley-Terry model shared by the training suites.
 *
 * Parameters theta (d floats).  Pair j (host index h) has the feature
 * difference x_h = x[h * d .. h * d + d - 1] of a fixed table; its loss is
 * -log sigmoid(theta . x_h) in stable form, and backward adds
 * w_j * dloss_j/dtheta.  Failures can be injected at a given call, and the
 * weights of the last backward call are recorded. */
#ifndef DRPO_TEST_MODEL_H
#define DRPO_TEST_MODEL_H

#include "check_util.h"
#include "drpo.h"

#include <stddef.h>
#include <stdint.h>

#define TM_MAX_PAIRS 1024

typedef struct tm_bt {
    size_t d, n_data;
    double *x; /* [n_data * d], owned */
    int32_t *group; /* [n_data] group of each data point, owned */
    /* calls so far (1-based numbering of the next call is calls + 1) */
    long fwd_calls, bwd_calls;
    /* inject at the call with this number (0: never) */
    long fail_fwd_at, fail_bwd_at; /* return fail_code */
    long nan_fwd_at, nan_bwd_at;   /* write a NaN loss / gradient */
    int fail_code;
    /* backward calls whose gradient was not all zeros on entry (the
     * callback contract: the library zeroes it) */
    long dirty_grads;
    /* weights passed to the last backward call */
    double rec_w[TM_MAX_PAIRS];
    size_t rec_n;
} tm_bt;

/* A data set of n points in d dimensions: x ~ N(0, 1), label y drawn from
 * the logistic model of a unit direction `dir` scaled by `sharp`, stored as
 * y * x.  The groups are all DRPO_GROUP_NONE. */
void tm_bt_init(tm_bt *m, size_t d, size_t n);
void tm_bt_fill(tm_bt *m, tu_rng *r, size_t from, size_t to, const double *dir, double sharp,
                int32_t group);
void tm_bt_free(tm_bt *m);

drpo_model_callbacks tm_bt_callbacks(void);
/* A library model over m (no free_user); alloc may be NULL. */
drpo_model *tm_bt_model(tm_bt *m, const drpo_allocator *alloc);

/* Loss of data point h and its gradient (added, times w, to g[d]) at theta. */
double tm_bt_loss(const tm_bt *m, const double *theta, int64_t h);
void tm_bt_add_grad(const tm_bt *m, const double *theta, int64_t h, double w, double *g);
/* Mean loss over the data points in [from, to). */
double tm_bt_mean_loss(const tm_bt *m, const double *theta, size_t from, size_t to);

/* theta as double. */
void tm_params(drpo_model *model, double *theta);

/* A batch of the data points idx[0..n-1]; pair i has prompt key
 * idx[i] / per_unit (so `per_unit` consecutive points share a prompt) and
 * the data point's group. */
void tm_batch_fill(drpo_batch *b, const tm_bt *m, const size_t *idx, size_t n, size_t per_unit);
/* The batch of all points in [from, to). */
void tm_batch_range(drpo_batch *b, const tm_bt *m, size_t from, size_t to, size_t per_unit);

/* An objective of one set and form (key 0: DRPO_SET_NONE) in a mode. */
drpo_objective *tm_objective(int32_t set, int32_t key, double param, int32_t mode,
                             double dual_lr, int32_t groups, const drpo_allocator *alloc);

/* Read a whole file into a malloc'd buffer (*len bytes); NULL if unreadable. */
unsigned char *tm_read_file(const char *path, size_t *len);
/* Save t to a fresh file under dir and return its bytes (malloc'd). */
unsigned char *tm_state_bytes(const drpo_trainer *t, const char *dir, size_t *len);
/* A fresh temporary directory, its path in buf (TM_PATH bytes); and its
 * removal with every file in it.  tm_count_files: entries in dir. */
#define TM_PATH 256
void tm_tmpdir(char *buf);
void tm_rmdir(const char *dir);
size_t tm_count_files(const char *dir);

#endif

/* ---- a whole training setup, for the suites that replay runs ------------ */

typedef struct tm_cfg {
    int32_t set, key;
    double param;
    int32_t mode, groups, opt, sched;
    const char *name;
} tm_cfg;

/* Data (d = 4, 96 points, groups g = point % groups when groups > 0), the
 * model, objective, trainer and a batch, all through one counting allocator
 * (st; a copy in `a`).  Options: lr 0.05, cosine schedules over 40 steps
 * with 3 warm-up steps, weight decay 0.01 for AdamW.  Must not move once
 * opened. */
typedef struct tm_run {
    tu_alloc_stats st;
    drpo_allocator a;
    tm_bt bt;
    drpo_model *model;
    drpo_objective *obj;
    drpo_trainer *t;
    drpo_batch *b;
} tm_run;
#define TM_RUN_D 4
#define TM_RUN_N 96
void tm_run_open(tm_run *r, const tm_cfg *c);
/* Free the trainer and objective and make fresh ones of the same config. */
void tm_run_renew(tm_run *r, const tm_cfg *c);
/* Fill r->b with the batch of a step: `units` distinct prompts of 2 pairs,
 * deterministic in (step, units). */
void tm_run_batch(tm_run *r, int step, size_t units);
void tm_run_close(tm_run *r);

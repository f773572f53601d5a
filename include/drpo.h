/*
 * drpo.h - libdrpo, distributionally robust preference optimisation.
 *
 * The one public header.  Conventions (see docs/api.md):
 *  - every fallible function returns a drpo_status: 0 ok, > 0 informational,
 *    < 0 an error; status values never change once released;
 *  - handles are opaque, created through an out-parameter, freed by
 *    drpo_x_free (which accepts NULL);
 *  - options are numbered keys with range-checked setters and getters;
 *  - a failed call writes nothing to its outputs and leaves the handle as it
 *    was, apart from the handle's last-error message;
 *  - the library never aborts, prints or exits and has no global mutable
 *    state: use one handle per thread.
 */
#ifndef DRPO_H
#define DRPO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(DRPO_BUILDING_LIBRARY) && defined(__GNUC__)
#define DRPO_API __attribute__((visibility("default")))
#else
#define DRPO_API
#endif

/* ---- version ----------------------------------------------------------- */

#define DRPO_VERSION_MAJOR 0
#define DRPO_VERSION_MINOR 1
#define DRPO_VERSION_PATCH 0
/* major * 10000 + minor * 100 + patch */
#define DRPO_VERSION_NUMBER \
    (DRPO_VERSION_MAJOR * 10000 + DRPO_VERSION_MINOR * 100 + DRPO_VERSION_PATCH)

/* The version of the library actually linked (compare with the macros). */
DRPO_API uint32_t drpo_version_number(void);
DRPO_API const char *drpo_version_string(void);

/* ---- status ------------------------------------------------------------ */

typedef int32_t drpo_status;

enum {
    DRPO_OK = 0,
    /* informational (> 0) */
    DRPO_CONTINUE = 1,  /* a convergence test: keep going */
    DRPO_CONVERGED = 2, /* a convergence test: criterion met */
    DRPO_STOPPED = 3,   /* a progress callback asked to stop */
    /* errors (< 0) */
    DRPO_ERR_NULL = -1,            /* a required pointer argument is NULL */
    DRPO_ERR_SIZE = -2,            /* n = 0 or sizes that do not match */
    DRPO_ERR_LOSS_NONFINITE = -3,  /* a loss is NaN or infinite */
    DRPO_ERR_BASE_NEGATIVE = -4,   /* a base weight is negative, NaN or infinite */
    DRPO_ERR_BASE_SUM = -5,        /* base weights do not sum to 1 within 1e-9 */
    DRPO_ERR_PARAM_RANGE = -6,     /* a parameter value is out of its range */
    DRPO_ERR_PARAM_UNSET = -7,     /* the set's required parameter is not set */
    DRPO_ERR_KEY = -8,             /* unknown key, or a key this set does not use */
    DRPO_ERR_SET = -9,             /* unknown ambiguity set */
    DRPO_ERR_NOMEM = -10,          /* an allocation failed */
    DRPO_ERR_NO_SOLUTION = -11,    /* diagnostics asked before any successful solve */
    DRPO_ERR_UNAVAILABLE = -12,    /* diagnostic not defined for this set or form */
    DRPO_ERR_NUMERICAL = -13,      /* an internal iteration failed to converge */
    DRPO_ERR_CALLBACK = -14,       /* a host callback returned non-zero (its code is kept) */
    DRPO_ERR_NONFINITE = -15,      /* a callback produced a NaN or infinite loss or gradient,
                                      or an update would make a parameter non-finite */
    DRPO_ERR_STATE = -16,          /* the call does not fit the handle's state or mode */
    DRPO_ERR_IO = -17,             /* a file could not be opened, read or written */
    DRPO_ERR_CORRUPT = -18,        /* a file is truncated, damaged or not a checkpoint */
    DRPO_ERR_INCOMPATIBLE = -19    /* a valid checkpoint of another version, model size or set */
};

/* A static English description of any status value (never NULL). */
DRPO_API const char *drpo_status_string(drpo_status s);

/* ---- allocation -------------------------------------------------------- */

/* Optional allocator for a handle and everything it allocates.  All three
 * functions must be set; `user` is passed back unchanged.  struct_size must
 * be sizeof(drpo_allocator) as compiled by the caller. */
typedef struct drpo_allocator {
    uint32_t struct_size;
    void *(*malloc_fn)(void *user, size_t size);
    void *(*realloc_fn)(void *user, void *ptr, size_t size);
    void (*free_fn)(void *user, void *ptr);
    void *user;
} drpo_allocator;

/* ---- the robust objective ---------------------------------------------- */

/* Ambiguity sets around the base distribution p. */
enum {
    DRPO_SET_NONE = 0, /* empirical risk: q = p */
    DRPO_SET_KL = 1,   /* sum q log(q/p) */
    DRPO_SET_CHI2 = 2, /* 1/2 sum p (q/p - 1)^2   (note the 1/2) */
    DRPO_SET_CVAR = 3, /* q <= p / alpha */
    DRPO_SET_TV = 4    /* 1/2 sum |q - p|, q on the support of p */
};

/* Objective parameters (drpo_objective_set / _get). */
enum {
    DRPO_PARAM_RADIUS = 1,  /* rho >= 0: constraint D(q||p) <= rho (KL, CHI2, TV) */
    DRPO_PARAM_PENALTY = 2, /* lambda >= 0: subtract lambda * D(q||p) (KL, CHI2, TV) */
    DRPO_PARAM_LEVEL = 3,   /* alpha in (0, 1] (CVAR) */
    DRPO_PARAM_MODE = 4,    /* DRPO_MODE_*, used by the trainer (default EXACT) */
    DRPO_PARAM_DUAL_LR = 5, /* > 0: step size of the stochastic duals and of the
                               group weights' exponentiated gradient (default 0.1) */
    DRPO_PARAM_GROUPS = 6   /* number of groups G >= 0 (default 0); group ids of a
                               batch must then lie in [0, G).  Required by GROUP mode */
};

/* Modes of the objective inside the training step (DRPO_PARAM_MODE). */
enum {
    DRPO_MODE_EXACT = 0,      /* worst case of each minibatch, solved exactly */
    DRPO_MODE_STOCHASTIC = 1, /* dual variables as state, updated by SGD across
                                 batches (KL, CHI2, CVAR; not TV) */
    DRPO_MODE_GROUP = 2       /* group weights by exponentiated gradient (group DRO),
                                 kept in the set's ball around a uniform group prior */
};

/* Diagnostics of the last successful solve (drpo_objective_diag). */
enum {
    DRPO_DIAG_VALUE = 1,        /* the robust value returned by the solve */
    DRPO_DIAG_MEAN = 2,         /* sum p_i loss_i, the non-robust value */
    DRPO_DIAG_ETA = 3,          /* dual threshold eta (loss units; see docs/math.md) */
    DRPO_DIAG_LAMBDA = 4,       /* dual multiplier lambda (loss units) */
    DRPO_DIAG_DIVERGENCE = 5,   /* D(q||p) of the returned q (CVaR: max q_i/p_i) */
    DRPO_DIAG_ESS = 6,          /* effective sample size 1 / sum q_i^2 */
    DRPO_DIAG_ESS_FRACTION = 7, /* ESS / n */
    DRPO_DIAG_MAX_WEIGHT = 8,   /* max q_i */
    DRPO_DIAG_SUPPORT = 9,      /* number of q_i > 0 */
    DRPO_DIAG_ITERATIONS = 10,  /* solver iterations (passes of Newton / bisection) */
    DRPO_DIAG_TIGHT = 11,       /* 1 if the radius / level constraint binds, else 0 */
    DRPO_DIAG_DEGENERATE = 12   /* 1 if the worst case is the maximum loss (or q = p
                                   because all losses tie), else 0 */
};

typedef struct drpo_objective drpo_objective;

/* Create an objective for one ambiguity set (DRPO_SET_*).  The set's
 * parameter must be set before solving (none for DRPO_SET_NONE).
 * Errors: DRPO_ERR_NULL, DRPO_ERR_SET, DRPO_ERR_NOMEM. */
DRPO_API drpo_status drpo_objective_create(drpo_objective **out, int32_t set);
/* The same with a custom allocator (copied; NULL means the C library's). */
DRPO_API drpo_status drpo_objective_create_with_allocator(drpo_objective **out, int32_t set,
                                                          const drpo_allocator *alloc);

/* Set a parameter (DRPO_PARAM_*).  RADIUS and PENALTY exclude each other:
 * setting one clears the other.  Errors: DRPO_ERR_NULL, DRPO_ERR_KEY (unknown
 * key or not used by this set), DRPO_ERR_PARAM_RANGE (NaN, infinite, negative,
 * LEVEL outside (0, 1]). */
DRPO_API drpo_status drpo_objective_set(drpo_objective *obj, int32_t key, double value);
/* Errors: DRPO_ERR_NULL, DRPO_ERR_KEY, DRPO_ERR_PARAM_UNSET. */
DRPO_API drpo_status drpo_objective_get(const drpo_objective *obj, int32_t key, double *value);

/* Exact inner maximisation over the ambiguity set around `base`:
 *     value = max_q  sum_i q_i loss_i  [ - penalty * D(q || base) ]
 * base: n non-negative weights summing to 1 within 1e-9 (renormalised), or
 * NULL for uniform.  Writes one optimal q to weights[n] (zero off the support
 * of base) and the optimum to *value.  Either output may be NULL if unwanted.
 * Scratch memory is kept by the handle; repeated solves of the same or a
 * smaller n do not allocate.
 * Errors: DRPO_ERR_NULL, DRPO_ERR_SIZE (n = 0), DRPO_ERR_LOSS_NONFINITE,
 * DRPO_ERR_BASE_NEGATIVE, DRPO_ERR_BASE_SUM, DRPO_ERR_PARAM_UNSET,
 * DRPO_ERR_NOMEM, DRPO_ERR_NUMERICAL.  On error nothing is written. */
DRPO_API drpo_status drpo_objective_solve(drpo_objective *obj, size_t n, const double *loss,
                                          const double *base, double *weights, double *value);

/* A diagnostic (DRPO_DIAG_*) of the last successful solve.
 * Errors: DRPO_ERR_NULL, DRPO_ERR_KEY, DRPO_ERR_NO_SOLUTION, DRPO_ERR_UNAVAILABLE. */
DRPO_API drpo_status drpo_objective_diag(const drpo_objective *obj, int32_t key, double *value);

/* The set the objective was created with. */
DRPO_API int32_t drpo_objective_set_kind(const drpo_objective *obj);

/* A message describing the handle's last error ("" if none; never NULL). */
DRPO_API const char *drpo_objective_last_error(const drpo_objective *obj);

DRPO_API void drpo_objective_free(drpo_objective *obj);


/* ---- data parallelism ------------------------------------------------------ */

/* Collectives the host supplies (for example over MPI) so that, with data
 * parallelism, every rank computes the same exact worst-case weights over
 * the global batch: the trainer gathers each rank's per-unit loss sums and
 * pair counts, merges units by prompt key across ranks (a prompt whose pairs
 * sit on several ranks is one unit), and solves the same problem on every
 * rank; group sums and diagnostics are all-reduced.  Each callback returns 0
 * or a non-zero user code (the call then fails with DRPO_ERR_CALLBACK).
 * With a collective the backward callback must return the global gradient
 * (all-reduce it inside the callback), so every rank applies the same update.
 * drpo_objective_solve itself stays local. */
typedef struct drpo_collective {
    uint32_t struct_size; /* sizeof(drpo_collective) as compiled by the caller */
    int32_t rank, size;   /* this process, and the number of processes (>= 1) */
    /* values[r] = the `value` given by rank r, for r in [0, size) */
    int (*allgather_u64)(void *user, uint64_t value, uint64_t *values);
    /* recv = the bytes of every rank concatenated in rank order; rank r sends
     * recv_bytes[r] bytes (as gathered by allgather_u64 before) */
    int (*allgatherv)(void *user, const void *send, uint64_t send_bytes, void *recv,
                      const uint64_t *recv_bytes);
    /* in-place sum over ranks of n doubles */
    int (*allreduce_sum)(void *user, double *values, uint64_t n);
} drpo_collective;

/* Attach (copied) or detach (NULL) a collective.  Errors: DRPO_ERR_NULL,
 * DRPO_ERR_SIZE (struct_size too small), DRPO_ERR_PARAM_RANGE (rank outside
 * [0, size), a NULL function). */
DRPO_API drpo_status drpo_objective_set_collective(drpo_objective *obj, const drpo_collective *c,
                                                   void *user);

/* ---- preference batches ------------------------------------------------- */

/* A batch of preference pairs.  Each pair has a prompt key (XXH3-64 of the
 * prompt bytes, or a key the host gives), a group id (DRPO_GROUP_NONE or
 * >= 0) and a host index the host uses to find its data.  Pairs with the
 * same key form one unit: the ambiguity set is over prompts.  Units are
 * maintained as pairs are added, so a finished batch is never written by
 * the library and may be read from several threads. */
typedef struct drpo_batch drpo_batch;

#define DRPO_GROUP_NONE (-1)

DRPO_API drpo_status drpo_batch_create(drpo_batch **out);
DRPO_API drpo_status drpo_batch_create_with_allocator(drpo_batch **out,
                                                      const drpo_allocator *alloc);
/* Add a pair whose prompt is `prompt_len` bytes (hashed with XXH3-64).
 * Errors: DRPO_ERR_NULL (b, or prompt with prompt_len > 0), DRPO_ERR_PARAM_RANGE
 * (group < -1), DRPO_ERR_NOMEM.  On error the batch is unchanged. */
DRPO_API drpo_status drpo_batch_add(drpo_batch *b, const void *prompt, size_t prompt_len,
                                    int32_t group, int64_t host_index);
/* Add a pair with a host-given prompt key. */
DRPO_API drpo_status drpo_batch_add_key(drpo_batch *b, uint64_t key, int32_t group,
                                        int64_t host_index);
/* The XXH3-64 key drpo_batch_add uses for these bytes. */
DRPO_API uint64_t drpo_prompt_key(const void *prompt, size_t prompt_len);
DRPO_API size_t drpo_batch_size(const drpo_batch *b);       /* pairs */
DRPO_API size_t drpo_batch_units(const drpo_batch *b);      /* distinct prompts */
DRPO_API int64_t drpo_batch_host_index(const drpo_batch *b, size_t j); /* -1 if out of range */
DRPO_API int32_t drpo_batch_group(const drpo_batch *b, size_t j);
DRPO_API uint64_t drpo_batch_key(const drpo_batch *b, size_t j);
DRPO_API size_t drpo_batch_unit_of(const drpo_batch *b, size_t j); /* unit of pair j */
/* Empty the batch, keeping its memory for reuse. */
DRPO_API void drpo_batch_clear(drpo_batch *b);
DRPO_API void drpo_batch_free(drpo_batch *b);

/* ---- models -------------------------------------------------------------- */

/* Host callbacks over a flat float32 parameter vector the library owns.
 * forward writes one loss per pair of the batch; backward writes the gradient
 * of sum_j pair_weight[j] * loss_j (grad is zeroed by the library before the
 * call).  Both return 0 or a non-zero user error code, which aborts the step.
 * They run on the caller's thread.  free_user (optional) is called on `user`
 * by drpo_model_free.  struct_size: sizeof(drpo_model_callbacks) as compiled
 * by the caller. */
typedef struct drpo_model_callbacks {
    uint32_t struct_size;
    int (*forward)(void *user, const float *params, const drpo_batch *batch, double *pair_loss);
    int (*backward)(void *user, const float *params, const drpo_batch *batch,
                    const double *pair_weight, float *grad);
    void (*free_user)(void *user);
} drpo_model_callbacks;

typedef struct drpo_model drpo_model;

/* Parameters start at zero.  Errors: DRPO_ERR_NULL, DRPO_ERR_SIZE (0 params or
 * a struct_size too small), DRPO_ERR_NOMEM. */
DRPO_API drpo_status drpo_model_create(drpo_model **out, size_t n_params,
                                       const drpo_model_callbacks *cb, void *user);
DRPO_API drpo_status drpo_model_create_with_allocator(drpo_model **out, size_t n_params,
                                                      const drpo_model_callbacks *cb,
                                                      void *user, const drpo_allocator *alloc);
DRPO_API float *drpo_model_params(drpo_model *m);
DRPO_API size_t drpo_model_n_params(const drpo_model *m);
DRPO_API void drpo_model_free(drpo_model *m);

/* ---- the trainer ---------------------------------------------------------- */

typedef struct drpo_trainer drpo_trainer;

/* Trainer options (drpo_trainer_set / _get). */
enum {
    DRPO_TRAIN_OPTIMIZER = 1,    /* DRPO_OPT_* (default SGD) */
    DRPO_TRAIN_LR = 2,           /* base learning rate > 0 (default 1e-3) */
    DRPO_TRAIN_MOMENTUM = 3,     /* [0, 1) (default 0.9) */
    DRPO_TRAIN_NESTEROV = 4,     /* 0 or 1 (default 0) */
    DRPO_TRAIN_BETA1 = 5,        /* AdamW, [0, 1) (default 0.9) */
    DRPO_TRAIN_BETA2 = 6,        /* AdamW, [0, 1) (default 0.999) */
    DRPO_TRAIN_EPS = 7,          /* AdamW, > 0 (default 1e-8) */
    DRPO_TRAIN_WEIGHT_DECAY = 8, /* decoupled: theta -= lr * wd * theta (default 0) */
    DRPO_TRAIN_CLIP_NORM = 9,    /* clip the gradient to this L2 norm; 0 = off (default) */
    DRPO_TRAIN_SCHEDULE = 10,    /* DRPO_SCHED_* (default CONSTANT) */
    DRPO_TRAIN_WARMUP = 11,      /* warm-up steps, linear from lr/warmup (default 0) */
    DRPO_TRAIN_TOTAL_STEPS = 12, /* cosine: steps to decay over (required by COSINE) */
    DRPO_TRAIN_MIN_LR = 13,      /* cosine: final lr as a fraction of lr (default 0) */
    DRPO_TRAIN_GRAD_TOL = 14,    /* test: ||g|| <= tol * max(1, ||theta||) (default 1e-6) */
    DRPO_TRAIN_REL_TOL = 15,     /* test: relative decrease of the smoothed robust
                                    objective over WINDOW steps <= tol (default 1e-6) */
    DRPO_TRAIN_WINDOW = 16,      /* test window in steps, 1..1024 (default 10) */
    DRPO_TRAIN_MAX_STEPS = 17,   /* test: converged after this many steps; 0 = no limit */
    DRPO_TRAIN_SMOOTHING = 18    /* EMA factor of the smoothed objective, [0, 1) (default 0.9) */
};

enum { DRPO_OPT_SGD = 0, DRPO_OPT_MOMENTUM = 1, DRPO_OPT_ADAMW = 2 };
enum { DRPO_SCHED_CONSTANT = 0, DRPO_SCHED_WARMUP = 1, DRPO_SCHED_COSINE = 2 };

/* Trainer diagnostics after a step (drpo_trainer_diag). */
enum {
    DRPO_TDIAG_ROBUST = 1,        /* robust objective of the batch (stochastic mode: the
                                     joint objective at the current duals) */
    DRPO_TDIAG_MEAN_LOSS = 2,     /* mean pair loss of the batch */
    DRPO_TDIAG_ETA = 3,           /* dual eta (as DRPO_DIAG_ETA; stochastic: the state) */
    DRPO_TDIAG_LAMBDA = 4,        /* dual lambda (KL radius, chi2 radius: t) */
    DRPO_TDIAG_ESS = 5,           /* effective sample size of the unit weights */
    DRPO_TDIAG_MAX_WEIGHT = 6,    /* largest unit weight (normalised) */
    DRPO_TDIAG_DIVERGENCE = 7,    /* D(q || base) of the normalised unit weights */
    DRPO_TDIAG_GRAD_NORM = 8,     /* ||g|| before clipping */
    DRPO_TDIAG_UPDATE_NORM = 9,   /* ||theta_new - theta_old|| */
    DRPO_TDIAG_PARAM_NORM = 10,   /* ||theta|| after the step */
    DRPO_TDIAG_DUAL_GRAD = 11,    /* |gradient of the joint objective in the duals| */
    DRPO_TDIAG_STEPS = 12,        /* steps taken (the schedule position) */
    DRPO_TDIAG_LR = 13,           /* learning rate used by the last step */
    DRPO_TDIAG_SMOOTHED = 14,     /* EMA of the robust objective */
    DRPO_TDIAG_UNITS = 15,        /* units (prompts) in the last batch */
    DRPO_TDIAG_CONVERGED_BY = 16, /* last test: 0 none, 1 gradient, 2 objective,
                                     3 step limit, 4 progress callback */
    DRPO_TDIAG_CALLBACK_CODE = 17 /* the code of the last failing callback, else 0 */
};

/* Per-group diagnostics (drpo_trainer_group_diag), for groups in [0, G). */
enum {
    DRPO_GDIAG_MEAN_LOSS = 1, /* mean loss of the group's pairs in the last batch (NaN if none) */
    DRPO_GDIAG_WEIGHT = 2,    /* the group's share of the robust weight in the last batch
                                 (group mode: the group weight state) */
    DRPO_GDIAG_PAIRS = 3      /* the group's pairs in the last batch */
};

/* Create a trainer over a model and an objective; both are borrowed and must
 * outlive the trainer.  model may be NULL for weights-only use.
 * Errors: DRPO_ERR_NULL, DRPO_ERR_NOMEM, DRPO_ERR_STATE (a mode the set
 * cannot run: stochastic TV, or group mode without DRPO_PARAM_GROUPS). */
DRPO_API drpo_status drpo_trainer_create(drpo_trainer **out, drpo_model *m, drpo_objective *o);
DRPO_API drpo_status drpo_trainer_create_with_allocator(drpo_trainer **out, drpo_model *m,
                                                        drpo_objective *o,
                                                        const drpo_allocator *alloc);
DRPO_API drpo_status drpo_trainer_set(drpo_trainer *t, int32_t key, double value);
DRPO_API drpo_status drpo_trainer_get(const drpo_trainer *t, int32_t key, double *value);

/* One robust step: forward -> units -> worst-case weights -> backward ->
 * clipping -> optimiser -> dual update -> diagnostics.  Atomic: on any error
 * the parameters, optimiser moments, duals and group weights are bitwise
 * unchanged.  Errors: DRPO_ERR_NULL, DRPO_ERR_SIZE (empty batch), DRPO_ERR_STATE
 * (no model), DRPO_ERR_CALLBACK, DRPO_ERR_NONFINITE, DRPO_ERR_PARAM_RANGE (a
 * group id >= G), the objective's errors, DRPO_ERR_NOMEM. */
DRPO_API drpo_status drpo_trainer_step(drpo_trainer *t, const drpo_batch *b);

/* Weights only: from per-pair losses of a batch (several micro-batches may be
 * added to one batch) compute per-pair weights w (the step would call
 * backward with them) and the robust value, using the mode's current duals.
 * Nothing changes until drpo_trainer_commit, which applies the dual / group
 * update these losses imply and counts a step.  Either output may be NULL. */
DRPO_API drpo_status drpo_trainer_weights(drpo_trainer *t, const drpo_batch *b,
                                          const double *pair_loss, double *pair_weight,
                                          double *robust_value);
DRPO_API drpo_status drpo_trainer_commit(drpo_trainer *t);

/* Convergence test, separate from the step: DRPO_CONTINUE, DRPO_CONVERGED or
 * DRPO_STOPPED (the progress callback returned non-zero). */
DRPO_API drpo_status drpo_trainer_test(drpo_trainer *t);
/* Called by drpo_trainer_test; return non-zero to stop training. */
typedef int (*drpo_progress_fn)(void *user, const drpo_trainer *t);
DRPO_API drpo_status drpo_trainer_set_progress(drpo_trainer *t, drpo_progress_fn fn, void *user);

DRPO_API drpo_status drpo_trainer_diag(const drpo_trainer *t, int32_t key, double *value);
DRPO_API drpo_status drpo_trainer_group_diag(const drpo_trainer *t, int32_t group, int32_t key,
                                             double *value);

/* Full-data evaluation: the exact robust objective of the batch at the
 * current parameters and the norm of its gradient, changing no state. */
DRPO_API drpo_status drpo_trainer_evaluate(drpo_trainer *t, const drpo_batch *b,
                                           double *robust_value, double *grad_norm);

/* Checkpoints: the whole trainer state (parameters, optimiser moments, duals,
 * group weights, step count, options and the objective's configuration) in a
 * versioned binary file with an XXH3-64 checksum, written atomically
 * (temporary file, fsync, rename).  Loading checks everything before changing
 * anything.  Errors: DRPO_ERR_IO, DRPO_ERR_CORRUPT, DRPO_ERR_INCOMPATIBLE. */
DRPO_API drpo_status drpo_trainer_save(const drpo_trainer *t, const char *path);
DRPO_API drpo_status drpo_trainer_load(drpo_trainer *t, const char *path);

DRPO_API const char *drpo_trainer_last_error(const drpo_trainer *t);
DRPO_API void drpo_trainer_free(drpo_trainer *t);


/* ---- preference losses ---------------------------------------------------- */

/* Per-pair losses on a margin m, in stable log-sigmoid form (no overflow for
 * margins of any size).  With z = beta * m:
 *   BT     Bradley-Terry reward loss  -log sigmoid(m)          (beta unused)
 *   DPO    -log sigmoid(z)
 *   IPO    (m - 1 / (2 beta))^2
 *   HINGE  max(0, 1 - z)
 *   CDPO   conservative DPO, label smoothing e in [0, 0.5]:
 *          (1 - e)(-log sigmoid(z)) + e(-log sigmoid(-z))
 * BT and DPO are evaluated four margins at a time with the library's own exp
 * and log1p: the same bits on every CPU, a few ulps from the exact values
 * (at most 3 for the loss and 4 for the slope on the 200 000 margins of the
 * losses suite), exp(-|z|) below 1e-307 taken as 0.  The others call the C
 * library's. */
enum { DRPO_LOSS_BT = 0, DRPO_LOSS_DPO = 1, DRPO_LOSS_IPO = 2, DRPO_LOSS_HINGE = 3,
       DRPO_LOSS_CDPO = 4 };

/* loss[i] and dloss[i] = d loss / d margin for n margins; either output may
 * be NULL.  Errors: DRPO_ERR_NULL, DRPO_ERR_KEY (unknown kind),
 * DRPO_ERR_PARAM_RANGE (beta <= 0 or not finite where used, smoothing
 * outside [0, 0.5]), DRPO_ERR_LOSS_NONFINITE (a NaN or infinite margin). */
DRPO_API drpo_status drpo_loss_from_margins(int32_t kind, size_t n, const double *margin,
                                            double beta, double smoothing, double *loss,
                                            double *dloss);
/* The same with the DPO margin from log-probabilities:
 * m = (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected);
 * dloss is with respect to that margin. */
DRPO_API drpo_status drpo_loss_from_logps(int32_t kind, size_t n, const double *policy_chosen,
                                          const double *policy_rejected,
                                          const double *ref_chosen, const double *ref_rejected,
                                          double beta, double smoothing, double *loss,
                                          double *dloss);

/* ---- built-in models ------------------------------------------------------- */

/* scores[i] = x_i . theta for `rows` rows of a row-major rows x dim matrix. */
DRPO_API drpo_status drpo_linear_scores(const float *theta, size_t dim, size_t rows,
                                        const float *x, double *scores);

/* A linear pairwise model over feature differences x_h = phi(x, chosen) -
 * phi(x, rejected) (row h of `diff`, rows x dim, row-major, borrowed: it must
 * outlive the model).  The batch's host index of a pair is its row.  Margin
 * m = (theta - theta_ref) . x_h, loss by kind (DRPO_LOSS_*):
 *   - kind BT, theta_ref NULL: the linear Bradley-Terry reward model
 *     r(x, y) = theta . phi(x, y);
 *   - kind DPO/IPO/HINGE/CDPO with beta and theta_ref: the log-linear DPO
 *     policy pi_theta(y|x) ∝ exp(theta . phi(x, y)), whose log-ratio
 *     difference is exactly (theta - theta_ref) . x_h.
 * theta_ref (dim floats) is copied.  Parameters start at zero.  Speed: the
 * pairs of a batch whose rows follow each other (h, h + 1, ...) are done by
 * one matrix-vector product, a pair alone by a dot product (both read the
 * rows once in the forward and once in the backward); the model's scratch
 * grows to the largest batch, on the first step that needs it.
 * Errors: DRPO_ERR_NULL, DRPO_ERR_SIZE, DRPO_ERR_KEY, DRPO_ERR_PARAM_RANGE,
 * DRPO_ERR_NOMEM. */
DRPO_API drpo_status drpo_pairwise_linear_create(drpo_model **out, size_t dim, size_t rows,
                                                 const float *diff, int32_t loss_kind,
                                                 double beta, double smoothing,
                                                 const float *theta_ref);
/* The same with a custom allocator for the model and its scratch. */
DRPO_API drpo_status drpo_pairwise_linear_create_with_allocator(
    drpo_model **out, size_t dim, size_t rows, const float *diff, int32_t loss_kind, double beta,
    double smoothing, const float *theta_ref, const drpo_allocator *alloc);

/* A log-linear softmax policy over a finite candidate set per prompt, for the
 * policy step of reward-based RLHF.  Prompt i has candidates
 * offsets[i] .. offsets[i+1]-1, with features (rows of `features`,
 * dim floats each) and rewards (e.g. from a learned reward model).  With
 * pi_theta(k|i) = softmax_k(theta . phi_k) and pi_ref from theta_ref, the
 * per-prompt loss is  -(E_{k~pi} r_k - beta KL(pi(.|i) || pi_ref(.|i)))  and
 * its gradient is exact.  The batch's host index of an entry is its prompt.
 * offsets (n_prompts + 1), features and rewards are borrowed; theta_ref
 * (dim floats, NULL = 0) is used at creation only.  Parameters start at zero.
 * Speed: as for the pairwise model, prompts of a batch that follow each
 * other (i, i + 1, ...) have their candidates' scores computed by one
 * matrix-vector product; the scratch grows to the largest batch's
 * candidate count.
 * Errors: DRPO_ERR_NULL, DRPO_ERR_SIZE (offsets not increasing from 0, an
 * empty candidate set), DRPO_ERR_PARAM_RANGE (beta < 0), DRPO_ERR_NOMEM. */
DRPO_API drpo_status drpo_softmax_policy_create(drpo_model **out, size_t dim, size_t n_prompts,
                                                const size_t *offsets, const float *features,
                                                const double *rewards, const float *theta_ref,
                                                double beta);
/* The same with a custom allocator for the model and its scratch. */
DRPO_API drpo_status drpo_softmax_policy_create_with_allocator(
    drpo_model **out, size_t dim, size_t n_prompts, const size_t *offsets, const float *features,
    const double *rewards, const float *theta_ref, double beta, const drpo_allocator *alloc);
/* For prompt i under the model's current parameters: E_{k~pi} reward_k
 * (reward: per-candidate values, e.g. the true reward, NULL = the model's
 * rewards) and KL(pi(.|i) || pi_ref(.|i)).  Either output may be NULL.
 * Errors: DRPO_ERR_NULL, DRPO_ERR_STATE (not a softmax policy model),
 * DRPO_ERR_SIZE (i out of range). */
DRPO_API drpo_status drpo_softmax_policy_stats(const drpo_model *m, size_t prompt,
                                               const double *reward, double *expected_reward,
                                               double *kl_to_ref);

#ifdef __cplusplus
}
#endif

#endif /* DRPO_H */

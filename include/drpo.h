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
    DRPO_ERR_NUMERICAL = -13       /* an internal iteration failed to converge */
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
    DRPO_PARAM_LEVEL = 3    /* alpha in (0, 1] (CVAR) */
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

#ifdef __cplusplus
}
#endif

#endif /* DRPO_H */

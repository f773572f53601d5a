/* check_util.h - helpers the suites share: checking a solution's feasibility. */
#ifndef DRPO_CHECK_UTIL_H
#define DRPO_CHECK_UTIL_H

#include "drpo.h"

#include <stddef.h>

/* Divergence of q from p for a set, over the support of p (CVaR: max q/p). */
double tu_divergence(int32_t set, size_t n, const double *q, const double *p);

/* Checks the feasibility rules for a returned q: non-negative, zero off
 * the support, sums to 1 within 1e-12, within the radius (or CVaR caps), and
 * attaining `value` (sum q l - penalty D within tol).  Returns NULL if fine, else
 * a static message. */
const char *tu_check_solution(int32_t set, int form_key, double param, size_t n,
                              const double *loss, const double *p, const double *q,
                              double value);

/* The value tolerance: 1e-8 * max(1, |value|, max |loss|). */
double tu_value_tol(double value, size_t n, const double *loss);

/* ---- shared by the property suites ------------------------------------- */

#include <stdint.h>

/* Every set and form the library solves, for suites that loop over them. */
typedef struct tu_form {
    int32_t set, key; /* key 0: DRPO_SET_NONE, no parameter */
    const char *name;
} tu_form;
extern const tu_form tu_forms[];
extern const size_t tu_nforms;
/* Representative parameters of a form (loss scale 1), at most TU_MAXPARAMS. */
#define TU_MAXPARAMS 8
size_t tu_params(const tu_form *f, double *out);

/* A deterministic generator (splitmix64), so every run sees the same cases. */
typedef struct tu_rng {
    uint64_t s;
} tu_rng;
void tu_rng_seed(tu_rng *r, uint64_t seed);
double tu_unif(tu_rng *r);            /* [0, 1) */
size_t tu_below(tu_rng *r, size_t k); /* 0 .. k-1 */
/* Losses of mixed sign in [-3, 3]; with ties = 1 drawn from 5 values. */
void tu_random_losses(tu_rng *r, size_t n, int ties, double *loss);
/* Random base summing to 1 (zeros = 1: some entries zero, at least one not). */
void tu_random_base(tu_rng *r, size_t n, int zeros, double *p);
void tu_uniform_base(size_t n, double *p);
/* A random point of the simplex on the support of p. */
void tu_random_simplex(tu_rng *r, size_t n, const double *p, double *q);

/* One solve with a fresh handle (param ignored for DRPO_SET_NONE). */
drpo_status tu_solve(int32_t set, int32_t key, double param, size_t n, const double *loss,
                     const double *base, double *q, double *value);

/* Solve (base NULL to the library when `uniform`), then check the status,
 * q's feasibility and attainment (tu_check_solution) and the value against
 * tu_reference_value.  Returns NULL if all holds, else a message (static
 * buffer).  q[n] and *value receive the solution. */
const char *tu_solve_and_check(int32_t set, int32_t key, double param, size_t n,
                               const double *loss, const double *p, int uniform, double *q,
                               double *value);

/* "n=.. loss=[..] p=[..]" (the first 6 units) for failure messages; static buffer. */
const char *tu_describe(size_t n, const double *loss, const double *p);

/* sum q l, minus param * D(q||p) in the penalty form. */
double tu_objective(int32_t set, int32_t key, double param, size_t n, const double *loss,
                    const double *p, const double *q);
/* 1 if q is in the ambiguity set (tolerances of the issue), else 0. */
int tu_feasible(int32_t set, int32_t key, double param, size_t n, const double *p,
                const double *q);
/* Radius forms: move q towards p until D(q||p) <= rho (bisection). */
void tu_pull_into_ball(int32_t set, double rho, size_t n, const double *p, double *q);

/* The optimum computed independently of the library, from the dual formulas
 * of design.md section 3 (golden section on the convex dual, or every
 * breakpoint of the piecewise-linear ones). */
double tu_reference_value(int32_t set, int32_t key, double param, size_t n, const double *loss,
                          const double *p);

/* Statistics over the support of p. */
double tu_mean(size_t n, const double *loss, const double *p);
double tu_max_loss(size_t n, const double *loss, const double *p);
double tu_top_mass(size_t n, const double *loss, const double *p); /* mass of the argmax set */
/* |y - ref| in units of the last place of ref (of the smallest normal where
 * ref is subnormal or 0). */
double tu_ulps(double y, double ref);

/* Outputs pre-filled with a NaN-payload sentinel, compared bitwise. */
void tu_fill_sentinel(double *x, size_t n);
int tu_is_sentinel(const double *x, size_t n);

/* An allocator that counts, and fails the fail_at-th malloc (0: never). */
typedef struct tu_alloc_stats {
    long mallocs, reallocs, frees, live, fail_at;
} tu_alloc_stats;
drpo_allocator tu_counting_allocator(tu_alloc_stats *st);

#endif

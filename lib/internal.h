/* internal.h - shared between the library's source files, never installed. */
#ifndef DRPO_INTERNAL_H
#define DRPO_INTERNAL_H

#include "drpo.h"

#include <stdarg.h>
#include <stddef.h>

/* ---- allocation (alloc.c) ---------------------------------------------- */

/* Validate and copy a user allocator, or install the C library's. */
drpo_status drpo__allocator_init(drpo_allocator *dst, const drpo_allocator *src);
void *drpo__malloc(const drpo_allocator *a, size_t size);
void drpo__free(const drpo_allocator *a, void *ptr);
/* Grow scratch *buf to hold `need` elements of `size` bytes (contents are
 * not kept); on failure *buf and *cap are unchanged. */
drpo_status drpo__reserve(const drpo_allocator *a, void **buf, size_t *cap, size_t need,
                          size_t size);
/* n * size with overflow detection; returns NULL on overflow or failure. */
void *drpo__malloc_array(const drpo_allocator *a, size_t n, size_t size);

/* ---- error messages (status.c) ----------------------------------------- */

#define DRPO__ERRLEN 256
/* Format a message into buf (DRPO__ERRLEN bytes) and return status. */
drpo_status drpo__fail(char *buf, drpo_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* ---- the objective's configuration, for the trainer (objective.c) ------ */

typedef struct drpo_objective_config {
    int32_t set;
    int form; /* DRPO__FORM_* */
    double param;
    int32_t mode;
    double dual_lr;
    int32_t groups;
    const drpo_collective *coll; /* NULL unless attached with size > 1 */
    void *coll_user;
} drpo_objective_config;

void drpo__objective_config(const drpo_objective *obj, drpo_objective_config *cfg);
char *drpo__objective_errbuf(drpo_objective *obj);

/* ---- the inner maximisation in gap space ------------------------------- */

/* Every set is solved on the support of the base distribution in "gap
 * space": d_j = (l_max - l_j) * 2^-e >= 0 with 2^-e the power of two that
 * brings max |l| into [0.5, 1).  The scaling is exact, ties stay ties, and
 * nothing can overflow; objective.c maps the results back. */

typedef struct drpo_pair {
    double d, p;
} drpo_pair;

enum { DRPO__FORM_NONE = 0, DRPO__FORM_RADIUS, DRPO__FORM_PENALTY, DRPO__FORM_LEVEL };

typedef struct drpo_problem {
    size_t m;          /* support size, >= 1 */
    const double *d;   /* gaps, min is exactly 0 */
    const double *p;   /* base on the support, renormalised, all > 0 */
    double p_top;      /* mass of the argmax set {d == 0} */
    double mean_d;     /* sum p d */
    double d_max;      /* largest gap */
    int form;          /* DRPO__FORM_* */
    double param;      /* rho, lambda (scaled by 2^-e) or alpha */
    drpo_pair *pairs;  /* scratch for m pairs */
    double *q;         /* output: m weights (normalised afterwards) */
} drpo_problem;

typedef struct drpo_solution {
    double value;      /* optimum of the gap problem, <= 0: value = l_max + value * 2^e */
    double eta;        /* threshold in gaps: eta_loss = l_max - eta * 2^e - eta_lambda * lambda */
    double eta_lambda; /* multiple of the (unscaled) penalty in eta, usually 0 */
    double lambda;     /* multiplier in gaps: lambda_loss = lambda * 2^e */
    int has_eta, has_lambda;
    int iterations, tight;
} drpo_solution;

typedef drpo_status (*drpo_solve_fn)(const drpo_problem *pb, drpo_solution *sol);
/* D(q||p) over the support (CVaR: max q/p). */
typedef double (*drpo_divergence_fn)(size_t m, const double *q, const double *p);

typedef struct drpo_set_ops {
    const char *name;
    unsigned forms;    /* bit (1 << DRPO__FORM_x) for each form the set takes */
    drpo_solve_fn solve;
    drpo_divergence_fn divergence;
} drpo_set_ops;

/* The operations of a set, or NULL for an unknown one (objective.c). */
const drpo_set_ops *drpo__set_ops(int32_t set);

extern const drpo_set_ops drpo__set_none, drpo__set_kl, drpo__set_chi2, drpo__set_cvar,
    drpo__set_tv;

/* Neumaier's compensated sum.  Plain sums of 10^5 masses are off by ~1e-11,
 * more than the 1e-12 that q's sum and the CVaR caps are held to. */
typedef struct drpo_ksum {
    double s, c;
} drpo_ksum;
static inline void drpo__ksum_add(drpo_ksum *k, double x)
{
    double t = k->s + x;
    double as = k->s < 0.0 ? -k->s : k->s, ax = x < 0.0 ? -x : x;
    k->c += as >= ax ? (k->s - t) + x : (x - t) + k->s;
    k->s = t;
}
static inline double drpo__ksum_value(const drpo_ksum *k) { return k->s + k->c; }

/* Shared pieces of the solvers (sets/common.c). */
/* q = p restricted to the argmax set, renormalised: the degenerate answer. */
void drpo__q_on_top(const drpo_problem *pb, drpo_solution *sol);
/* q = p, the answer at radius 0 or infinite penalty. */
void drpo__q_base(const drpo_problem *pb, drpo_solution *sol);
/* Copy (d, p) into pb->pairs and sort ascending by d. */
void drpo__sort_pairs(const drpo_problem *pb);
void drpo__pairs_sort(drpo_pair *a, size_t n);

/* ---- sorted windows of the gaps (sets/window.c) ------------------------- */

/* Gaps summarised below a bracket [lo, hi), copied and sorted inside it. */
typedef struct drpo_window {
    double below_mass, below_s1, below_s2; /* sum p, p d, p d^2 over d < lo */
    double above_mass;                     /* sum p over d >= hi */
    const drpo_pair *win;                  /* the gaps in [lo, hi), ascending */
    size_t n;
    double next;                           /* smallest gap >= hi, INFINITY if none */
    double lo, hi;
} drpo_window;

/* Where the crossing lies relative to a filled window: < 0 below lo, 0
 * inside (at a gap of the window or at `next`), > 0 above. */
typedef int (*drpo_window_check)(const drpo_window *w, const void *ctx);

/* A sorted sample of the gaps with masses summing to 1, as a window with
 * nothing below or above; returns its size, 0 when the problem is small
 * enough to sort whole.  Uses pb->pairs. */
size_t drpo__window_sample(const drpo_problem *pb, drpo_window *w);
/* Cumulative mass of the first k gaps of a window. */
double drpo__window_level(const drpo_window *w, size_t k);
/* A bracket of gaps around a level of cumulative mass, from a sample. */
void drpo__window_bracket(const drpo_window *sample, double level, double *lo, double *hi);
void drpo__window_fill(const drpo_problem *pb, double lo, double hi, drpo_window *w);
/* Fill windows from [lo, hi), widening until check says the crossing is
 * inside (or the window is everything); returns the passes made. */
int drpo__window_find(const drpo_problem *pb, drpo_window *w, drpo_window_check check,
                      const void *ctx, double lo, double hi);

/* ---- losses (losses.c) and dense kernels (linalg.c) --------------------- */

drpo_status drpo__loss_check(int32_t kind, double beta, double smoothing);
/* The loss of one margin and its slope; the parameters must have passed the check. */
void drpo__loss_eval(int32_t kind, double m, double beta, double smoothing, double *l, double *dl);

/* y = X theta for a contiguous block of `rows` rows (row-major, dim columns). */
void drpo__rows_dot(size_t rows, size_t dim, const float *x, const float *theta, float *y);
/* g += X^T c for a contiguous block of rows. */
void drpo__rows_axpy(size_t rows, size_t dim, const float *x, const float *c, float *g);

#endif

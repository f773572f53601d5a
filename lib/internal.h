/* internal.h - shared between the library's source files, never installed. */
#ifndef DRPO_INTERNAL_H
#define DRPO_INTERNAL_H

#include "drpo.h"

#include <stdarg.h>
#include <stddef.h>

/* The widest kernel instances the dispatch may pick: 0 the baseline, 1
 * AVX2 (and the AVX2/FMA gemv), 2 AVX-512 where built.  A build option for
 * testing only (make check-instances), so that a CPU that has more runs the
 * narrower instances through the whole suite. */
#ifndef DRPO_ISA_MAX
#define DRPO_ISA_MAX 2
#endif

/* Inlined where it is used, whatever the optimiser thinks (the callers
 * make its flags constants). */
#define DRPO__INLINE static inline __attribute__((always_inline))

/* ---- allocation (alloc.c) ---------------------------------------------- */

/* Validate and copy a user allocator, or install the C library's. */
drpo_status drpo__allocator_init(drpo_allocator *dst, const drpo_allocator *src);
/* A zeroed handle of `size` bytes whose first member is its drpo_allocator,
 * set from `user` (NULL: the C library's).  Every handle is made this way. */
drpo_status drpo__handle_new(const drpo_allocator *user, size_t size, void **out);
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
    /* gaps d_j = top - x_j * down (drpo__gap), min exactly 0: x is the losses
     * themselves with top = l_max 2^-e and down = 2^-e when that is exact
     * (uniform base, no pass needed to make the gaps), else the compacted
     * gaps with top = 0 and down = -1 (0 - (-d) is d exactly) */
    const double *x;
    double top, down;
    const double *p;   /* base on the support, renormalised, all > 0 (NULL if uniform) */
    int uniform;       /* every p_j is pu (drpo__mass) */
    double pu;
    double p_top;      /* mass of the argmax set {d == 0} */
    double mean_d;     /* sum p d */
    double d_max;      /* largest gap */
    int form;          /* DRPO__FORM_* */
    double param;      /* rho, lambda (scaled by 2^-e) or alpha */
    drpo_pair *pairs;  /* scratch for m pairs */
    double *scratch;   /* scratch for m doubles */
    const struct drpo_loss_window *first; /* or NULL */
} drpo_problem;

static inline double drpo__gap(const drpo_problem *pb, size_t j)
{
    return pb->top - pb->x[j] * pb->down;
}

/* The base mass of unit j (a uniform base has no array to read). */
static inline double drpo__mass(const drpo_problem *pb, size_t j)
{
    return pb->uniform ? pb->pu : pb->p[j];
}

/* How the worst case weighs a unit, as a solver hands it over: q_j =
 * (p_j c(d_j)) * scale, written with its statistics by drpo__q_write. */
enum { DRPO__Q_STEP, DRPO__Q_RAMP, DRPO__Q_RAMP_DIV, DRPO__Q_EXP, DRPO__Q_EXP_PRECISE,
       DRPO__Q_STORED };
/* Which divergence the pass measures: max q/p, sum |q - p|, sum p (q/p - 1)^2;
 * NONE: the solver states it (KL knows it from its last evaluation). */
enum { DRPO__DIV_NONE, DRPO__DIV_MAX_RATIO, DRPO__DIV_ABS, DRPO__DIV_CHI2 };

typedef struct drpo_qrule {
    int kind, divergence;
    double t; /* STEP, RAMP: the threshold gap; RAMP_DIV: the mean gap; EXP: u */
    const double *w; /* STORED: p_j c(d_j), kept by the solver's last pass (c = w / p) */
    /* STEP: c = c_top at d == 0, else c_below, c_at, c_above for d <, ==, > t */
    double c_top, c_below, c_at, c_above;
    double lambda;   /* RAMP_DIV: c = (1 + (t - d) / lambda)_+; RAMP: c = (t - d)_+ */
    double scale;    /* the normaliser */
    int unnormalised; /* scale is not the normaliser (a degenerate piece): q is
                         renormalised afterwards, so written to scratch first */
    /* STEP, a part of the value left to the pass (which reads every gap
     * anyway): where value_excess (or, over a uniform base only,
     * value_deficit) is not 0 it sums p (d - t) over d > t, the excess (or
     * p (t - d) over d < t, the deficit), and the solution's value gains
     * that multiple of it.  With value_excess the pass also keeps the argmax
     * units' indices: c_top grows by top_per_moved times the mass beyond t,
     * not known before the pass either (TV penalty; 0 elsewhere).  Over a
     * weighted base only TV measures (its divergence the absolute one). */
    double value_excess, value_deficit, top_per_moved;
} drpo_qrule;

typedef struct drpo_qstats {
    double sum, sum2, max, support; /* of q */
    double max_ratio, div;          /* the rule's divergence measure (see above) */
    double excess, deficit;         /* see drpo_qrule.value_excess */
} drpo_qstats;

/* Write q to out (m doubles) by the rule; one pass (sets/weights.c). */
drpo_qstats drpo__q_write(const drpo_problem *pb, const drpo_qrule *r, double *out);

typedef struct drpo_solution {
    double value;      /* optimum of the gap problem, <= 0: value = l_max + value * 2^e */
    double eta;        /* threshold in gaps: eta_loss = l_max - eta * 2^e - eta_lambda * lambda */
    double eta_lambda; /* multiple of the (unscaled) penalty in eta, usually 0 */
    double lambda;     /* multiplier in gaps: lambda_loss = lambda * 2^e */
    int has_eta, has_lambda;
    int iterations, tight;
    drpo_qrule rule;   /* the weights */
    double divergence; /* D(q||p) when rule.divergence is DRPO__DIV_NONE */
} drpo_solution;

typedef drpo_status (*drpo_solve_fn)(const drpo_problem *pb, drpo_solution *sol);
/* D(q||p) over the support (CVaR: max q/p). */
typedef double (*drpo_divergence_fn)(size_t m, const double *q, const double *p);

typedef struct drpo_set_ops {
    const char *name;
    unsigned forms;    /* bit (1 << DRPO__FORM_x) for each form the set takes */
    drpo_solve_fn solve;
    drpo_divergence_fn divergence;
    /* where the crossing of a solve that needs only masses is expected
     * before anything is known: the fraction of the mass, in ascending gaps,
     * below it (CVaR: alpha; TV radius: 1 - rho), or NaN; NULL: none.  The
     * objective then takes the solve's first window while it scans the
     * losses (drpo_loss_window). */
    double (*level)(int form, double param);
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

/* The same accuracy for long sums at nearly the cost of a plain one: plain
 * sums over blocks of 256 terms, compensated across the blocks. */
typedef struct drpo_bsum {
    drpo_ksum k;
    double block;
    unsigned count;
} drpo_bsum;
static inline void drpo__bsum_add(drpo_bsum *b, double x)
{
    b->block += x;
    if (++b->count == 256) {
        drpo__ksum_add(&b->k, b->block);
        b->block = 0.0;
        b->count = 0;
    }
}
static inline double drpo__bsum_value(const drpo_bsum *b)
{
    drpo_ksum k = b->k;
    drpo__ksum_add(&k, b->block);
    return drpo__ksum_value(&k);
}

/* One read of n losses (scan.c): finiteness, range, ties at the maximum and
 * sum (l_j - l_0) (compensated). */
typedef struct drpo_loss_scan {
    double max, min, at_max, shifted_sum;
    int finite;
    double over;  /* drpo__scan_window: losses >= x1 */
    size_t kept;  /* drpo__scan_window: losses in (x0, x1), copied */
} drpo_loss_scan;
drpo_loss_scan drpo__scan_losses(size_t n, const double *loss);
/* The same, and the losses in (x0, x1) copied in order to kept (room for
 * n), those >= x1 counted. */
drpo_loss_scan drpo__scan_window(size_t n, const double *loss, double x0, double x1, double *kept);

/* A caller's base (base.c): the check, the range of the losses on its
 * support (base > 0) and what a solve in place needs of it, in one
 * vectorised pass. */
typedef struct drpo_base_scan {
    double l_max, l_min; /* the largest and least loss on the support */
    double p_top;             /* the base's mass at l_max (tied units of it) */
    double sum;               /* of the base, compensated across blocks */
    double moment;            /* sum base (loss - loss[0]), compensated across blocks */
    size_t tied;
    int ok;          /* 1: every loss finite, every base entry finite and >= 0;
                      * 0: perhaps not (or the sums overflowed: only possible
                      * with losses past 2^1022 or a base far from sum 1) */
    int off_support; /* some base entry is 0 */
} drpo_base_scan;
drpo_base_scan drpo__scan_base(size_t n, const double *loss, const double *base);
/* The support in gap space, in order: d = top - loss * down and p = base /
 * sum (the base as it is where sum is 1) into d[0, m), p[0, m) (room for n
 * each); the largest gap, the count and mass at gap 0 and sum p d. */
typedef struct drpo_support {
    size_t m, tied;
    double d_max, p_top, mean_d;
} drpo_support;
drpo_support drpo__base_support(size_t n, const double *loss, const double *base, double sum,
                                double top, double down, double *d, double *p);

/* A window taken in loss space by drpo__scan_window, for a set with a level
 * (a uniform base): the losses in (x0, x1) kept as doubles at the front of
 * the problem's pairs, `over` the losses >= x1.  The gap map is monotone,
 * so these are a window in gap space too, exact once its ends' own ties are
 * sorted out (drpo__window_find). */
typedef struct drpo_loss_window {
    double x0, x1, over;
    size_t kept;
} drpo_loss_window;

/* The loss-space bracket (x0, x1) of a set's level from a sample of the
 * losses (scratch: room for the sample); 0 where the losses are too few to
 * sample or the sample is not finite (then no window is taken). */
int drpo__loss_bracket(size_t n, const double *loss, double level, drpo_pair *scratch, double *x0,
                       double *x1);

/* Shared pieces of the solvers (sets/common.c). */
/* q = p restricted to the argmax set, renormalised: the degenerate answer;
 * `divergence` is the set's DRPO__DIV_* (KL: NONE, then set sol->divergence). */
void drpo__q_on_top(const drpo_problem *pb, drpo_solution *sol, int divergence);
/* q = p, the answer at radius 0 or infinite penalty. */
void drpo__q_base(const drpo_problem *pb, drpo_solution *sol);
/* Sort pairs ascending by gap (introsort, no allocation). */
void drpo__pairs_sort(drpo_pair *a, size_t n);
/* Running sums of a scan over pairs: mass (compensated), sum p x and
 * sum p x^2 with x = d - centre (moments about a point near their mean lose
 * no digits to it; parts of one scan share the centre). */
typedef struct drpo_scan_sums {
    drpo_ksum mass;
    double s1, s2;
    double centre;
} drpo_scan_sums;
/* Whether a scan stops at a group of equal gaps, from the sums of the gaps
 * before it and of the group; monotone along the scan (once true, true). */
typedef int (*drpo_scan_stop)(const drpo_scan_sums *before, double gap,
                              const drpo_scan_sums *group, const void *ctx);
/* Scanning the pairs by gap (ascending, or descending) from the sums in
 * *sums: the first group where stop holds, found by selection in place
 * (three-way quickselect, expected O(n); reorders a).  Returns 1 with its
 * gap and *sums the sums before it, or 0 with *sums the sums of everything. */
int drpo__pairs_scan(drpo_pair *a, size_t n, drpo_scan_sums *sums, int descending,
                     drpo_scan_stop stop, const void *ctx, double *gap);
/* The gap at which a running mass starting at `start` first reaches
 * `target` (drpo__pairs_scan with that rule). */
int drpo__pairs_crossing(drpo_pair *a, size_t n, double start, double target, int descending,
                         double *gap);
/* A crossing of a rule of masses alone: the gap at which the mass, in scan
 * order (ascending gaps, or descending), reaches a target (else the last gap
 * in scan order), the masses before it in scan order and at it, and whether
 * the target was reached. */
typedef struct drpo_crossing {
    double gap, before, at;
    int reached;
} drpo_crossing;

/* Ranks (sets/rank.c).  Where every unit weighs pu (a uniform base), a
 * crossing is a rank: the gap of the first count c with (start + c) pu >=
 * target among the n gaps top - x_j down (start a count of units before
 * them), selected as doubles (buf0 and buf1: n doubles each, overwritten;
 * expected O(n)).  Problems of equal masses up to DRPO__RANK_UP_TO units
 * find their crossings so among all their gaps (past it, the window's copy
 * and narrowing cost less than whole rounds). */
#define DRPO__RANK_UP_TO 4096
drpo_crossing drpo__rank_crossing(const double *x, size_t n, double top, double down,
                                  double start, double pu, double target, int descending,
                                  double *buf0, double *buf1);

/* ---- sorted windows of the gaps (sets/window.c) ------------------------- */

/* Gaps summarised below and above a bracket [lo, hi), the ones inside kept
 * (sorted once drpo__window_find returns). */
typedef struct drpo_window {
    double below_mass, below_s1, below_s2; /* sum p, p x, p x^2 over d < lo, x = d - centre */
    double win_mass, win_s1, win_s2;       /* the same over the window */
    double above_mass;                     /* sum p over d >= hi */
    double centre;                         /* rules with moments 2: near the active mean; else 0 */
    const drpo_pair *win;                  /* the gaps in [lo, hi) */
    size_t n;
    /* or, where not NULL, the gaps top - values_j down of values[0, n), each
     * of mass pu (win unused): the losses a uniform base's scan kept, for a
     * rule of masses alone; values has room for n more doubles after them */
    double *values;
    double top, down;
    double next; /* the smallest gap >= hi (INFINITY if none): hi itself, since every
                  * bracket end is a sampled gap or infinite (were it not, next would be a
                  * lower bound, and a check at it would err towards "above") */
    double lo, hi;
} drpo_window;

/* How a solver finds its crossing.  check: from a window's sums alone,
 * where the crossing lies: < 0 below lo, 0 inside (at a gap of the window
 * or at `next`), > 0 above.  predict: the fraction of the window's mass
 * below the crossing, estimated from a sorted sample of the window (the
 * sample carries the window's sums below it, masses scaled to the window's). */
typedef struct drpo_window_rule {
    int (*check)(const drpo_window *w, const void *ctx);
    double (*predict)(const drpo_window *w, const drpo_window *sample, const void *ctx);
    const void *ctx;
    int moments; /* the sums check needs: 0 masses, 1 and sum p d, 2 and sum p d^2 */
} drpo_window_rule;

/* A stratified sample of s <= m gaps with their masses, scaled to sum to 1. */
void drpo__sample_gaps(const drpo_problem *pb, size_t s, drpo_pair *out);

/* The units with gaps below tau as pairs at the front of pb->pairs (one
 * pass); returns how many, their mass in *mass. */
size_t drpo__gaps_below(const drpo_problem *pb, double tau, double *mass);

/* A window's crossing (drpo_crossing), scanning from the window's sums
 * below it (ascending) or above it (descending), its last gap in scan order
 * if the target is not reached in it, `next` if it is empty.  pu > 0: every
 * mass is pu (a uniform base), a rank (scratch holds w->n doubles; the
 * window's pairs, or the doubles after its values, are overwritten); else
 * compensated sums (with plain ones, at n = 10^5 a tie group's share could
 * be off by ~1e-11 and break a CVaR cap), the window reordered.  A window
 * of values (see drpo_window) needs pu > 0. */
drpo_crossing drpo__window_crossing(const drpo_window *w, double target, int descending,
                                    double pu, double *scratch);

/* A window of the gaps (unsorted) that holds the crossing; returns the passes
 * over the data (1 unless the first bracket missed).  Uses pb->pairs, and
 * pb->q as scratch. */
int drpo__window_find(const drpo_problem *pb, const drpo_window_rule *rule, drpo_window *w);

/* The KL solver's pass (kl_pass.c) at inverse temperature u, moments about c:
 * z = sum w, w = p exp(-u d) (with precise: w = p (1 + e1), e1 = expm1(-u d),
 * and em1 = sum p e1), mom[k-1] = sum w (d - c)^k for k = 1..DRPO__KL_ORDER
 * (moments) or k = 1 alone; w kept in store unless it is NULL. */
#define DRPO__KL_ORDER 6 /* the cumulants each pass measures */
typedef struct drpo_kl_sums {
    double z, em1, mom[DRPO__KL_ORDER];
} drpo_kl_sums;
drpo_kl_sums drpo__kl_pass(const drpo_problem *pb, double u, double c, double *store,
                           int precise, int moments);

/* ---- losses (losses.c) and dense kernels (linalg.c) --------------------- */

drpo_status drpo__loss_check(int32_t kind, double beta, double smoothing);
/* The losses of n margins and their slopes (either output may be NULL); the
 * parameters must have passed the check. */
void drpo__losses(int32_t kind, size_t n, const double *margin, double beta, double smoothing,
                  double *loss, double *dloss);

/* y = X theta for a contiguous block of `rows` rows (row-major, dim columns). */
void drpo__rows_dot(size_t rows, size_t dim, const float *x, const float *theta, float *y);
/* g += X^T c for a contiguous block of rows. */
void drpo__rows_axpy(size_t rows, size_t dim, const float *x, const float *c, float *g);

#endif

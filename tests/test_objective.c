/* test_objective.c - properties of the exact solves on random cases of every
 * set and form: invariances (shift, permutation, scale), monotonicity in the
 * parameter, the limits of the parameter, and the diagnostics recomputed from
 * the returned q. */
#include "check_util.h"
#include "suites.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAXN 40

/* One random case. */
typedef struct ob_case {
    size_t n;
    int uniform;
    double loss[MAXN], p[MAXN];
} ob_case;

static void draw_case(tu_rng *r, size_t max_n, int ties, ob_case *c)
{
    c->n = 1 + tu_below(r, max_n);
    tu_random_losses(r, c->n, ties < 0 ? (int)tu_below(r, 2) : ties, c->loss);
    c->uniform = tu_below(r, 3) == 0;
    if (c->uniform)
        tu_uniform_base(c->n, c->p);
    else
        tu_random_base(r, c->n, (int)tu_below(r, 2), c->p);
}

static const double *base_of(const ob_case *c) { return c->uniform ? NULL : c->p; }

/* Solve, check feasibility and attainment, return the value. */
static double solve_ok(const tu_form *f, double prm, const ob_case *c, const double *loss,
                       double *q)
{
    double v = NAN;
    drpo_status st = tu_solve(f->set, f->key, prm, c->n, loss, base_of(c), q, &v);
    ck_assert_msg(st == DRPO_OK, "%s %g, %s: status %d", f->name, prm,
                  tu_describe(c->n, loss, c->p), (int)st);
    const char *why = tu_check_solution(f->set, f->key, prm, c->n, loss, c->p, q, v);
    ck_assert_msg(why == NULL, "%s %g, %s: %s", f->name, prm, tu_describe(c->n, loss, c->p), why);
    return v;
}

typedef void (*ob_case_fn)(tu_rng *r, const tu_form *f, double prm, const ob_case *c);

/* Every form (the none set too), every representative parameter, `cases`
 * random cases of n = 1..max_n each. ties: 0 none, 1 always, -1 either. */
static void for_cases(uint64_t seed, int cases, size_t max_n, int ties, ob_case_fn fn)
{
    tu_rng r;
    tu_rng_seed(&r, seed);
    for (size_t fi = 0; fi < tu_nforms; fi++) {
        const tu_form *f = &tu_forms[fi];
        double prm[TU_MAXPARAMS];
        size_t np = tu_params(f, prm);
        for (size_t k = 0; k < np; k++)
            for (int t = 0; t < cases; t++) {
                ob_case c;
                draw_case(&r, max_n, ties, &c);
                fn(&r, f, prm[k], &c);
            }
    }
}

static void assert_q_close(const tu_form *f, double prm, const ob_case *c, const double *q0,
                           const double *q1, const size_t *perm, double tol, const char *what)
{
    for (size_t i = 0; i < c->n; i++) {
        double a = q0[perm ? perm[i] : i], b = q1[i];
        ck_assert_msg(fabs(a - b) <= tol, "%s %g, %s: %s changes q[%zu] from %.17g to %.17g",
                      f->name, prm, tu_describe(c->n, c->loss, c->p), what, i, a, b);
    }
}

/* ---- invariances ------------------------------------------------------- */

/* loss + c: value + c, the same q (the losses are multiples of 2^-30, as are
 * the shifts, so the shifted losses are exact). */
static void shift_case(tu_rng *r, const tu_form *f, double prm, const ob_case *c)
{
    static const double shifts[] = {0.75, -2.5, 5.25, -1024.0};
    (void)r;
    double q0[MAXN], q1[MAXN], l1[MAXN];
    double v0 = solve_ok(f, prm, c, c->loss, q0);
    for (size_t s = 0; s < sizeof shifts / sizeof shifts[0]; s++) {
        for (size_t i = 0; i < c->n; i++)
            l1[i] = c->loss[i] + shifts[s];
        double v1 = solve_ok(f, prm, c, l1, q1);
        ck_assert_msg(fabs(v1 - (v0 + shifts[s])) <= tu_value_tol(v1, c->n, l1),
                      "%s %g, %s: shift %g gives %.17g, expected %.17g", f->name, prm,
                      tu_describe(c->n, c->loss, c->p), shifts[s], v1, v0 + shifts[s]);
        assert_q_close(f, prm, c, q0, q1, NULL, 1e-12, "a shift");
    }
}

START_TEST(test_shift) { for_cases(101, 12, MAXN, -1, shift_case); }

/* A base of n copies of 1/n is the uniform base (base NULL): bitwise the same
 * value and weights (the solver takes the same path for both). */
static void uniform_base_case(tu_rng *r, const tu_form *f, double prm, const ob_case *c)
{
    (void)r;
    double p[MAXN], q0[MAXN], q1[MAXN], v0 = NAN, v1 = NAN;
    tu_uniform_base(c->n, p);
    drpo_status s0 = tu_solve(f->set, f->key, prm, c->n, c->loss, NULL, q0, &v0);
    drpo_status s1 = tu_solve(f->set, f->key, prm, c->n, c->loss, p, q1, &v1);
    ck_assert_msg(s0 == DRPO_OK && s1 == DRPO_OK, "%s %g: statuses %d, %d", f->name, prm,
                  (int)s0, (int)s1);
    ck_assert_msg(!memcmp(&v0, &v1, sizeof v0) && !memcmp(q0, q1, c->n * sizeof *q0),
                  "%s %g, %s: base NULL and n copies of 1/n differ (values %.17g, %.17g)",
                  f->name, prm, tu_describe(c->n, c->loss, p), v0, v1);
}

START_TEST(test_uniform_base) { for_cases(107, 6, MAXN, -1, uniform_base_case); }
END_TEST

/* Permuting losses and base permutes q (distinct losses: q is unique), to
 * 1e-10 as for a scale: a permutation changes the rounding of every sum, so
 * an iterative solve (KL radius) may take another path and stop at another
 * point within its tolerance (|KL - rho| <= 1e-10 rho). */
static void permute_case(tu_rng *r, const tu_form *f, double prm, const ob_case *c)
{
    double q0[MAXN], q1[MAXN];
    size_t perm[MAXN];
    double v0 = solve_ok(f, prm, c, c->loss, q0);
    for (size_t i = 0; i < c->n; i++)
        perm[i] = i;
    for (size_t i = c->n; i > 1; i--) {
        size_t j = tu_below(r, i), t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
    ob_case d = *c;
    for (size_t i = 0; i < c->n; i++) {
        d.loss[i] = c->loss[perm[i]];
        d.p[i] = c->p[perm[i]];
    }
    double v1 = solve_ok(f, prm, &d, d.loss, q1);
    ck_assert_msg(fabs(v1 - v0) <= tu_value_tol(v0, c->n, c->loss),
                  "%s %g, %s: permuted value %.17g, original %.17g", f->name, prm,
                  tu_describe(c->n, c->loss, c->p), v1, v0);
    assert_q_close(f, prm, c, q0, q1, perm, 1e-10, "a permutation");
}

START_TEST(test_permutation) { for_cases(102, 12, MAXN, 0, permute_case); }
END_TEST

/* s * loss (and s * penalty): s * value, the same q. */
static void scale_case(tu_rng *r, const tu_form *f, double prm, const ob_case *c)
{
    static const double scales[] = {1e-3, 3.7, 1e5, 0x1p-40};
    (void)r;
    double q0[MAXN], q1[MAXN], l1[MAXN];
    double v0 = solve_ok(f, prm, c, c->loss, q0);
    for (size_t s = 0; s < sizeof scales / sizeof scales[0]; s++) {
        for (size_t i = 0; i < c->n; i++)
            l1[i] = c->loss[i] * scales[s];
        double p1 = f->key == DRPO_PARAM_PENALTY ? prm * scales[s] : prm;
        double v1 = solve_ok(f, p1, c, l1, q1);
        ck_assert_msg(fabs(v1 - v0 * scales[s]) <= tu_value_tol(v1, c->n, l1),
                      "%s %g, %s: scale %g gives %.17g, expected %.17g", f->name, prm,
                      tu_describe(c->n, c->loss, c->p), scales[s], v1, v0 * scales[s]);
        assert_q_close(f, prm, c, q0, q1, NULL, 1e-10, "a scale");
    }
}

START_TEST(test_scale) { for_cases(103, 12, MAXN, -1, scale_case); }
END_TEST

/* ---- monotonicity ------------------------------------------------------ */

#define NSWEEP 160

/* The value along a sweep of the parameter (increasing), each solve checked. */
static void sweep(const tu_form *f, const ob_case *c, const double *prm, size_t k, double *v)
{
    double q[MAXN];
    for (size_t j = 0; j < k; j++)
        v[j] = solve_ok(f, prm[j], c, c->loss, q);
}

/* radius: non-decreasing; penalty and level: non-increasing. */
static void monotone_case(tu_rng *r, const tu_form *f, double prm0, const ob_case *c)
{
    (void)r;
    (void)prm0;
    if (f->key == 0)
        return;
    double prm[NSWEEP], v[NSWEEP];
    prm[0] = f->key == DRPO_PARAM_LEVEL ? 1e-4 : 0.0;
    for (size_t j = 1; j < NSWEEP; j++) /* 1e-10 .. 1e3, or levels 1e-4 .. 1 */
        prm[j] = f->key == DRPO_PARAM_LEVEL ? pow(10.0, -4.0 + 4.0 * (double)j / (NSWEEP - 1))
                                            : 1e-10 * pow(10.0, 13.0 * (double)j / (NSWEEP - 1));
    sweep(f, c, prm, NSWEEP, v);
    double sign = f->key == DRPO_PARAM_RADIUS ? 1.0 : -1.0;
    for (size_t j = 1; j < NSWEEP; j++)
        ck_assert_msg(sign * (v[j] - v[j - 1]) >= -tu_value_tol(v[j], c->n, c->loss),
                      "%s, %s: value %.17g at %g but %.17g at %g", f->name,
                      tu_describe(c->n, c->loss, c->p), v[j - 1], prm[j - 1], v[j], prm[j]);
}

START_TEST(test_monotone)
{
    tu_rng r;
    tu_rng_seed(&r, 104);
    for (size_t fi = 0; fi < tu_nforms; fi++)
        for (int t = 0; t < 15; t++) {
            ob_case c;
            draw_case(&r, MAXN, -1, &c);
            monotone_case(&r, &tu_forms[fi], 0.0, &c);
        }
}
END_TEST

/* ---- limits ------------------------------------------------------------ */

/* The radius at which the worst case becomes the maximum loss. */
static double degenerate_radius(int32_t set, double p_top)
{
    switch (set) {
    case DRPO_SET_KL: return -log(p_top);
    case DRPO_SET_CHI2: return 0.5 * (1.0 / p_top - 1.0);
    default: return 1.0 - p_top;
    }
}

static void assert_value(const tu_form *f, double prm, const ob_case *c, double v, double want,
                         const char *what)
{
    ck_assert_msg(fabs(v - want) <= tu_value_tol(want, c->n, c->loss),
                  "%s %g, %s: value %.17g, %s %.17g", f->name, prm,
                  tu_describe(c->n, c->loss, c->p), v, what, want);
}

static void limits_case(tu_rng *r, const tu_form *f, double prm0, const ob_case *c)
{
    (void)r;
    (void)prm0;
    double q[MAXN];
    double mean = tu_mean(c->n, c->loss, c->p), lmax = tu_max_loss(c->n, c->loss, c->p);
    double ptop = tu_top_mass(c->n, c->loss, c->p);
    if (f->key == 0 || f->key == DRPO_PARAM_RADIUS || f->key == DRPO_PARAM_LEVEL) {
        /* radius 0, level 1, the none set: the mean, q = p */
        double prm = f->key == DRPO_PARAM_LEVEL ? 1.0 : 0.0;
        assert_value(f, prm, c, solve_ok(f, prm, c, c->loss, q), mean, "mean");
        assert_q_close(f, prm, c, c->p, q, NULL, 1e-15, "the neutral parameter");
    }
    if (f->key == DRPO_PARAM_RADIUS) { /* at and past the degenerate radius: the max */
        double tau = degenerate_radius(f->set, ptop);
        const double at[] = {tau, tau * (1 + 1e-6), 1.5 * tau + 1e-3, 10.0 * tau + 1.0, 1e6};
        for (size_t k = 0; k < sizeof at / sizeof at[0]; k++) {
            assert_value(f, at[k], c, solve_ok(f, at[k], c, c->loss, q), lmax, "max loss");
            double on_top = 0.0;
            for (size_t i = 0; i < c->n; i++)
                on_top += c->loss[i] == lmax ? q[i] : 0.0;
            ck_assert_msg(k == 0 || on_top >= 1.0 - 1e-12, "%s %g, %s: mass %.17g on the max",
                          f->name, at[k], tu_describe(c->n, c->loss, c->p), on_top);
        }
    }
    if (f->key == DRPO_PARAM_PENALTY) {
        /* penalty 0: the max; tiny: within penalty * D(p_top) of it; huge: the mean */
        double dtop = f->set == DRPO_SET_KL     ? -log(ptop)
                      : f->set == DRPO_SET_CHI2 ? 0.5 * (1.0 / ptop - 1.0)
                                                : 1.0 - ptop;
        const double tiny[] = {0.0, 1e-12, 1e-9};
        for (size_t k = 0; k < sizeof tiny / sizeof tiny[0]; k++) {
            double v = solve_ok(f, tiny[k], c, c->loss, q);
            ck_assert_msg(v <= lmax + tu_value_tol(v, c->n, c->loss) &&
                              v >= lmax - tiny[k] * dtop - tu_value_tol(v, c->n, c->loss),
                          "%s %g, %s: value %.17g, max loss %.17g", f->name, tiny[k],
                          tu_describe(c->n, c->loss, c->p), v, lmax);
        }
        /* 1e300: q can only attain the value if it is p to the last bit (any
         * rounding in q is multiplied by the penalty), so check q = p and the
         * value directly instead */
        double v = NAN;
        ck_assert_int_eq(tu_solve(f->set, f->key, 1e300, c->n, c->loss, base_of(c), q, &v),
                         DRPO_OK);
        assert_value(f, 1e300, c, v, mean, "mean");
        assert_q_close(f, 1e300, c, c->p, q, NULL, 1e-15, "a huge penalty");
        /* 1e6: mean + O(1/penalty), against the dual reference */
        assert_value(f, 1e6, c, solve_ok(f, 1e6, c, c->loss, q),
                     tu_reference_value(f->set, f->key, 1e6, c->n, c->loss, c->p), "reference");
    }
}

START_TEST(test_limits) { for_cases(105, 4, MAXN, -1, limits_case); }
END_TEST

/* ---- diagnostics ------------------------------------------------------- */

#define NDIAG (DRPO_DIAG_DEGENERATE + 1)

typedef struct ob_diag {
    drpo_status st[NDIAG];
    double d[NDIAG];
} ob_diag;

static double solve_diag(const tu_form *f, double prm, const ob_case *c, double *q, ob_diag *dg)
{
    drpo_objective *obj;
    double v = NAN;
    ck_assert_int_eq(drpo_objective_create(&obj, f->set), DRPO_OK);
    if (f->key)
        ck_assert_int_eq(drpo_objective_set(obj, f->key, prm), DRPO_OK);
    ck_assert_int_eq(drpo_objective_solve(obj, c->n, c->loss, base_of(c), q, &v), DRPO_OK);
    for (int k = 1; k < NDIAG; k++) {
        dg->d[k] = NAN;
        dg->st[k] = drpo_objective_diag(obj, k, &dg->d[k]);
    }
    drpo_objective_free(obj);
    return v;
}

#define DIAG_MSG "%s %g, %s: "
#define DIAG_ARGS f->name, prm, tu_describe(c->n, c->loss, c->p)

/* The generic diagnostics, recomputed from q. */
static void check_generic(const tu_form *f, double prm, const ob_case *c, const double *q,
                          double v, const ob_diag *dg)
{
    static const int always[] = {DRPO_DIAG_VALUE,     DRPO_DIAG_MEAN,       DRPO_DIAG_DIVERGENCE,
                                 DRPO_DIAG_ESS,       DRPO_DIAG_ESS_FRACTION, DRPO_DIAG_MAX_WEIGHT,
                                 DRPO_DIAG_SUPPORT,   DRPO_DIAG_ITERATIONS, DRPO_DIAG_TIGHT,
                                 DRPO_DIAG_DEGENERATE};
    for (size_t k = 0; k < sizeof always / sizeof always[0]; k++)
        ck_assert_msg(dg->st[always[k]] == DRPO_OK, DIAG_MSG "diag %d: status %d", DIAG_ARGS,
                      always[k], (int)dg->st[always[k]]);
    double q2 = 0.0, qmax = 0.0, support = 0.0;
    for (size_t i = 0; i < c->n; i++) {
        q2 += q[i] * q[i];
        qmax = fmax(qmax, q[i]);
        support += q[i] > 0.0;
    }
    ck_assert_msg(memcmp(&dg->d[DRPO_DIAG_VALUE], &v, sizeof v) == 0, DIAG_MSG "VALUE %.17g",
                  DIAG_ARGS, dg->d[DRPO_DIAG_VALUE]);
    double mean = tu_mean(c->n, c->loss, c->p);
    ck_assert_msg(fabs(dg->d[DRPO_DIAG_MEAN] - mean) <= tu_value_tol(mean, c->n, c->loss),
                  DIAG_MSG "MEAN %.17g, recomputed %.17g", DIAG_ARGS, dg->d[DRPO_DIAG_MEAN], mean);
    double ess = 1.0 / q2;
    ck_assert_msg(fabs(dg->d[DRPO_DIAG_ESS] - ess) <= 1e-12 * ess, DIAG_MSG "ESS %.17g vs %.17g",
                  DIAG_ARGS, dg->d[DRPO_DIAG_ESS], ess);
    ck_assert_msg(fabs(dg->d[DRPO_DIAG_ESS_FRACTION] - ess / (double)c->n) <= 1e-12 * ess,
                  DIAG_MSG "ESS_FRACTION %.17g", DIAG_ARGS, dg->d[DRPO_DIAG_ESS_FRACTION]);
    ck_assert_msg(dg->d[DRPO_DIAG_MAX_WEIGHT] == qmax, DIAG_MSG "MAX_WEIGHT %.17g vs %.17g",
                  DIAG_ARGS, dg->d[DRPO_DIAG_MAX_WEIGHT], qmax);
    ck_assert_msg(dg->d[DRPO_DIAG_SUPPORT] == support, DIAG_MSG "SUPPORT %g vs %g", DIAG_ARGS,
                  dg->d[DRPO_DIAG_SUPPORT], support);
    double div = tu_divergence(f->set, c->n, q, c->p);
    ck_assert_msg(fabs(dg->d[DRPO_DIAG_DIVERGENCE] - div) <= 1e-12 + 1e-9 * div,
                  DIAG_MSG "DIVERGENCE %.17g, recomputed %.17g", DIAG_ARGS,
                  dg->d[DRPO_DIAG_DIVERGENCE], div);
    double it = dg->d[DRPO_DIAG_ITERATIONS];
    ck_assert_msg(it >= 0.0 && it == floor(it), DIAG_MSG "ITERATIONS %g", DIAG_ARGS, it);
    for (int k = DRPO_DIAG_TIGHT; k <= DRPO_DIAG_DEGENERATE; k++)
        ck_assert_msg(dg->d[k] == 0.0 || dg->d[k] == 1.0, DIAG_MSG "flag %d is %g", DIAG_ARGS, k,
                      dg->d[k]);
}

/* Mass of the units with loss > eta (strict) or >= eta. */
static double mass_above(const ob_case *c, double eta, int strict)
{
    double s = 0.0;
    for (size_t i = 0; i < c->n; i++)
        if (strict ? c->loss[i] > eta : c->loss[i] >= eta)
            s += c->p[i];
    return s;
}

/* q_i = p_i * g_i for a predicted g (KL, chi2): within 1e-9 relative. */
static void assert_q_shape(const tu_form *f, double prm, const ob_case *c, const double *q,
                           double eta, double lambda)
{
    for (size_t i = 0; i < c->n; i++) {
        double x = c->loss[i] - eta;
        double g = f->set == DRPO_SET_KL ? exp(x / lambda) : (x > 0.0 ? x / lambda : 0.0);
        double want = c->p[i] * g;
        ck_assert_msg(fabs(q[i] - want) <= 1e-9 * fmax(q[i], want) + 1e-14,
                      DIAG_MSG "q[%zu] = %.17g, dual formula with eta %.17g lambda %.17g: %.17g",
                      DIAG_ARGS, i, q[i], eta, lambda, want);
    }
}

static void check_duals(const tu_form *f, double prm, const ob_case *c, const double *q, double v,
                        const ob_diag *dg)
{
    double lmax = tu_max_loss(c->n, c->loss, c->p), ptop = tu_top_mass(c->n, c->loss, c->p);
    double tol = tu_value_tol(v, c->n, c->loss);
    double eta = dg->d[DRPO_DIAG_ETA], lambda = dg->d[DRPO_DIAG_LAMBDA];
    int has_eta = dg->st[DRPO_DIAG_ETA] == DRPO_OK, has_lambda = dg->st[DRPO_DIAG_LAMBDA] == DRPO_OK;
    int all_tied = ptop >= 1.0 - 1e-12;
    if (f->set == DRPO_SET_NONE || f->set == DRPO_SET_CVAR)
        ck_assert_msg(dg->st[DRPO_DIAG_LAMBDA] == DRPO_ERR_UNAVAILABLE, DIAG_MSG "LAMBDA status %d",
                      DIAG_ARGS, (int)dg->st[DRPO_DIAG_LAMBDA]);
    if (f->set == DRPO_SET_NONE) {
        ck_assert_msg(dg->st[DRPO_DIAG_ETA] == DRPO_ERR_UNAVAILABLE, DIAG_MSG "ETA status %d",
                      DIAG_ARGS, (int)dg->st[DRPO_DIAG_ETA]);
        return;
    }
    if (f->key == DRPO_PARAM_RADIUS) {
        double tau = degenerate_radius(f->set, ptop);
        if (prm == 0.0) {
            ck_assert_msg(has_lambda && isinf(lambda), DIAG_MSG "LAMBDA %g", DIAG_ARGS, lambda);
            if (f->set != DRPO_SET_KL)
                ck_assert_msg(!has_eta, DIAG_MSG "ETA should be unavailable", DIAG_ARGS);
            return;
        }
        if (prm > tau * (1 + 1e-9) || all_tied) {
            ck_assert_msg(dg->d[DRPO_DIAG_DEGENERATE] == 1.0, DIAG_MSG "not DEGENERATE", DIAG_ARGS);
            return;
        }
        if (prm > tau * (1 - 1e-6))
            return; /* too close to the threshold to say */
        ck_assert_msg(dg->d[DRPO_DIAG_TIGHT] == 1.0 && dg->d[DRPO_DIAG_DEGENERATE] == 0.0,
                      DIAG_MSG "TIGHT %g DEGENERATE %g", DIAG_ARGS, dg->d[DRPO_DIAG_TIGHT],
                      dg->d[DRPO_DIAG_DEGENERATE]);
        ck_assert_msg(fabs(dg->d[DRPO_DIAG_DIVERGENCE] - prm) <= 1e-9 * prm + 1e-12,
                      DIAG_MSG "DIVERGENCE %.17g not at the radius", DIAG_ARGS,
                      dg->d[DRPO_DIAG_DIVERGENCE]);
    }
    ck_assert_msg(has_eta && isfinite(eta), DIAG_MSG "ETA %g (status %d)", DIAG_ARGS, eta,
                  (int)dg->st[DRPO_DIAG_ETA]);
    if (f->key == DRPO_PARAM_PENALTY)
        ck_assert_msg(has_lambda && lambda == prm, DIAG_MSG "LAMBDA %g", DIAG_ARGS, lambda);
    switch (f->set) {
    case DRPO_SET_KL:
        if (lambda > 0.0 && dg->d[DRPO_DIAG_DEGENERATE] == 0.0)
            assert_q_shape(f, prm, c, q, eta, lambda);
        if (f->key == DRPO_PARAM_PENALTY)
            ck_assert_msg(fabs(eta - v) <= tol, DIAG_MSG "ETA %.17g, value %.17g", DIAG_ARGS, eta,
                          v);
        else /* value = lambda rho + mu */
            ck_assert_msg(fabs(lambda * prm + eta - v) <= tol, DIAG_MSG "lambda rho + eta %.17g",
                          DIAG_ARGS, lambda * prm + eta);
        break;
    case DRPO_SET_CHI2:
        if (lambda > 0.0 && !all_tied)
            assert_q_shape(f, prm, c, q, eta, lambda);
        if (f->key == DRPO_PARAM_RADIUS) { /* lambda = E_p (l - eta)_+ */
            double s = 0.0;
            for (size_t i = 0; i < c->n; i++)
                s += c->p[i] * fmax(c->loss[i] - eta, 0.0);
            ck_assert_msg(fabs(s - lambda) <= tol, DIAG_MSG "LAMBDA %.17g, E(l-eta)+ %.17g",
                          DIAG_ARGS, lambda, s);
        }
        break;
    case DRPO_SET_CVAR: { /* eta is the alpha-quantile, and the dual at eta is the value */
        ck_assert_msg(mass_above(c, eta, 1) <= prm + 1e-12 && mass_above(c, eta, 0) >= prm - 1e-12,
                      DIAG_MSG "ETA %.17g is not the level-quantile", DIAG_ARGS, eta);
        double s = 0.0;
        for (size_t i = 0; i < c->n; i++)
            s += c->p[i] * fmax(c->loss[i] - eta, 0.0);
        ck_assert_msg(fabs(eta + s / prm - v) <= tol, DIAG_MSG "dual at ETA %.17g", DIAG_ARGS,
                      eta + s / prm);
        break;
    }
    case DRPO_SET_TV:
        if (f->key == DRPO_PARAM_PENALTY)
            ck_assert_msg(fabs(eta - (lmax - prm)) <= tol, DIAG_MSG "ETA %.17g", DIAG_ARGS, eta);
        else
            ck_assert_msg(fabs(lambda - (lmax - eta)) <= tol, DIAG_MSG "LAMBDA %.17g ETA %.17g",
                          DIAG_ARGS, lambda, eta);
        for (size_t i = 0; i < c->n; i++) { /* below eta: emptied; between: untouched */
            if (c->loss[i] < eta - tol)
                ck_assert_msg(q[i] == 0.0, DIAG_MSG "q[%zu] = %g below ETA", DIAG_ARGS, i, q[i]);
            if (c->loss[i] > eta + tol && c->loss[i] < lmax)
                ck_assert_msg(fabs(q[i] - c->p[i]) <= 1e-15, DIAG_MSG "q[%zu] moved", DIAG_ARGS,
                              i);
        }
        break;
    default: break;
    }
}

static void diag_case(tu_rng *r, const tu_form *f, double prm, const ob_case *c)
{
    (void)r;
    double q[MAXN];
    ob_diag dg;
    double v = solve_diag(f, prm, c, q, &dg);
    check_generic(f, prm, c, q, v, &dg);
    check_duals(f, prm, c, q, v, &dg);
}

START_TEST(test_diagnostics) { for_cases(106, 25, MAXN, -1, diag_case); }
END_TEST

/* Every set and form over a caller's base, with the radii past the argmax
 * set's reach (KL 50, TV 0.9999, chi-square 10^6) last. */
static const struct {
    int32_t set, key;
    double prm;
} base_forms[] = {
    {DRPO_SET_KL, DRPO_PARAM_RADIUS, 0.3},    {DRPO_SET_KL, DRPO_PARAM_PENALTY, 0.7},
    {DRPO_SET_CHI2, DRPO_PARAM_RADIUS, 0.5},  {DRPO_SET_CHI2, DRPO_PARAM_PENALTY, 0.4},
    {DRPO_SET_CVAR, DRPO_PARAM_LEVEL, 0.2},   {DRPO_SET_TV, DRPO_PARAM_RADIUS, 0.2},
    {DRPO_SET_TV, DRPO_PARAM_PENALTY, 0.6},   {DRPO_SET_KL, DRPO_PARAM_RADIUS, 50.0},
    {DRPO_SET_TV, DRPO_PARAM_RADIUS, 0.9999}, {DRPO_SET_CHI2, DRPO_PARAM_RADIUS, 1e6}};

/* A base with zeros solves as the same problem without those units, bit for
 * bit, when the base sums to exactly 1 (dyadic masses: no renormalisation
 * to round differently): the compaction to the support (four units at a
 * time, compressed, and a scalar tail) keeps every unit on it, in order, and
 * the largest losses, put off the support, count for nothing.  1037 units,
 * about a quarter of them off the support; every set. */
START_TEST(test_support_compaction)
{
    enum { N = 1037 };
    tu_rng r;
    tu_rng_seed(&r, 402);
    double *l = malloc(N * sizeof *l), *b = malloc(N * sizeof *b), *q = malloc(N * sizeof *q);
    double *lc = malloc(N * sizeof *lc), *bc = malloc(N * sizeof *bc);
    double *qc = malloc(N * sizeof *qc);
    ck_assert(l && b && q && lc && bc && qc);
    tu_random_losses(&r, N, 0, l);
    /* counts 0..3 out of 2048 (the last unit takes the rest): exact sums */
    double total = 0.0;
    for (size_t i = 0; i + 1 < N; i++) {
        b[i] = (double)tu_below(&r, 4);
        total += b[i];
    }
    b[N - 1] = 2048.0 - total;
    ck_assert(b[N - 1] > 0.0);
    for (size_t i = 0; i < N; i++) {
        b[i] /= 2048.0;
        if (b[i] == 0.0 && tu_below(&r, 8) == 0)
            l[i] = 10.0 + tu_unif(&r); /* above every loss on the support */
    }
    size_t m = 0;
    for (size_t i = 0; i < N; i++)
        if (b[i] != 0.0) {
            lc[m] = l[i];
            bc[m++] = b[i];
        }
    ck_assert(m < N - N / 8);
    for (size_t k = 0; k < sizeof base_forms / sizeof base_forms[0]; k++) {
        drpo_objective *o;
        ck_assert_int_eq(drpo_objective_create(&o, base_forms[k].set), DRPO_OK);
        ck_assert_int_eq(drpo_objective_set(o, base_forms[k].key, base_forms[k].prm), DRPO_OK);
        double v, vc;
        ck_assert_int_eq(drpo_objective_solve(o, N, l, b, q, &v), DRPO_OK);
        ck_assert_int_eq(drpo_objective_solve(o, m, lc, bc, qc, &vc), DRPO_OK);
        ck_assert_msg(memcmp(&v, &vc, sizeof v) == 0, "set %d: value %.17g, compacted %.17g",
                      (int)base_forms[k].set, v, vc);
        for (size_t i = 0, j = 0; i < N; i++) {
            double want = b[i] != 0.0 ? qc[j++] : 0.0;
            ck_assert_msg(memcmp(&q[i], &want, sizeof want) == 0,
                          "set %d: q[%zu] = %.17g, compacted %.17g", (int)base_forms[k].set, i,
                          q[i], want);
        }
        drpo_objective_free(o);
    }
    free(l);
    free(b);
    free(q);
    free(lc);
    free(bc);
    free(qc);
}
END_TEST

/* A base on every unit that sums to 1 up to rounding (the trainer's when
 * prompts have different numbers of pairs) is solved in place: the scan's
 * lane sums stand in for the copy's (the mass and count at the largest loss,
 * the least loss, the mean).  The same problem with a unit of base 0
 * appended goes through the copy instead: every set and form must agree to
 * rounding.  1037 units (blocks, both chains, a tail) of general masses;
 * the largest loss tied in several lanes and in the tail; lanes whose own
 * maximum is lower; a lane whose lower maximum was tied twice before the
 * largest replaced it; then again with a unique largest loss in the tail.
 * The radii past the argmax set's reach put the weights on it in
 * proportion to the base, checked against its mass summed here. */
START_TEST(test_base_in_place)
{
    enum { N = 1037 };
    tu_rng r;
    tu_rng_seed(&r, 1037);
    double *l = malloc((N + 1) * sizeof *l), *b = malloc((N + 1) * sizeof *b);
    double *q = malloc(N * sizeof *q), *qc = malloc((N + 1) * sizeof *qc);
    ck_assert(l && b && q && qc);
    double total = 0.0;
    for (size_t i = 0; i < N; i++) {
        l[i] = 2.0 * tu_unif(&r) - 1.0 + 1e-3 * tu_unif(&r);
        b[i] = 1.0 + (double)tu_below(&r, 4);
        total += b[i];
    }
    for (size_t i = 0; i < N; i++)
        b[i] /= total;
    /* unit i is in chain (i / 4) mod 2, lane i mod 4: lane i mod 8 of eight */
    static const size_t top[] = {13, 19, 100, 518, 1033, 1036}, lower[] = {3, 7, 11};
    for (size_t k = 0; k < sizeof top / sizeof top[0]; k++)
        l[top[k]] = 1.5;
    for (size_t k = 0; k < sizeof lower / sizeof lower[0]; k++)
        l[lower[k]] = 1.25;
    l[2] = 1.125;
    l[N] = 0.0; /* the copy's unit off the support */
    b[N] = 0.0;
    for (int variant = 0; variant < 2; variant++) {
        if (variant == 1)
            l[1035] = 2.0; /* the largest, alone, in the tail */
        double lmax = tu_max_loss(N, l, b), ptop = tu_top_mass(N, l, b);
        for (size_t k = 0; k < sizeof base_forms / sizeof base_forms[0]; k++) {
            drpo_objective *o;
            ck_assert_int_eq(drpo_objective_create(&o, base_forms[k].set), DRPO_OK);
            ck_assert_int_eq(drpo_objective_set(o, base_forms[k].key, base_forms[k].prm), DRPO_OK);
            double v, vc, mean, meanc, degenerate, degeneratec;
            ck_assert_int_eq(drpo_objective_solve(o, N, l, b, q, &v), DRPO_OK);
            ck_assert_int_eq(drpo_objective_diag(o, DRPO_DIAG_MEAN, &mean), DRPO_OK);
            ck_assert_int_eq(drpo_objective_diag(o, DRPO_DIAG_DEGENERATE, &degenerate), DRPO_OK);
            ck_assert_int_eq(drpo_objective_solve(o, N + 1, l, b, qc, &vc), DRPO_OK);
            ck_assert_int_eq(drpo_objective_diag(o, DRPO_DIAG_MEAN, &meanc), DRPO_OK);
            ck_assert_int_eq(drpo_objective_diag(o, DRPO_DIAG_DEGENERATE, &degeneratec), DRPO_OK);
            ck_assert_msg(fabs(v - vc) <= 1e-14, "variant %d, form %zu: value %.17g, copied %.17g",
                          variant, k, v, vc);
            ck_assert_msg(fabs(mean - meanc) <= 1e-14, "variant %d: mean %.17g, copied %.17g",
                          variant, mean, meanc);
            int on_top = base_forms[k].prm >= 50.0 ||
                         (base_forms[k].set == DRPO_SET_TV && base_forms[k].prm >= 1.0 - ptop);
            ck_assert_msg(degenerate == (double)on_top && degeneratec == degenerate,
                          "variant %d, form %zu: degenerate %g, copied %g", variant, k,
                          degenerate, degeneratec);
            if (on_top)
                ck_assert_msg(v == lmax, "variant %d, form %zu: value %.17g, max %.17g", variant,
                              k, v, lmax);
            ck_assert(qc[N] == 0.0);
            for (size_t i = 0; i < N; i++) {
                double want = on_top ? (l[i] == lmax ? b[i] / ptop : 0.0) : qc[i];
                ck_assert_msg(fabs(q[i] - want) <= 1e-14 * (q[i] + want),
                              "variant %d, form %zu: q[%zu] = %.17g, want %.17g", variant, k, i,
                              q[i], want);
            }
            drpo_objective_free(o);
        }
    }
    free(l);
    free(b);
    free(q);
    free(qc);
}
END_TEST

Suite *suite_objective(void)
{
    Suite *s = suite_create("objective");
    TCase *tc = tcase_create("invariance");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_shift);
    tcase_add_test(tc, test_uniform_base);
    tcase_add_test(tc, test_support_compaction);
    tcase_add_test(tc, test_base_in_place);
    tcase_add_test(tc, test_permutation);
    tcase_add_test(tc, test_scale);
    suite_add_tcase(s, tc);
    tc = tcase_create("parameter");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_monotone);
    tcase_add_test(tc, test_limits);
    suite_add_tcase(s, tc);
    tc = tcase_create("diagnostics");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_diagnostics);
    suite_add_tcase(s, tc);
    return s;
}

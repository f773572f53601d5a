/* test_models.c - the built-in models (pairwise linear BT / log-linear DPO,
 * softmax policy) and drpo_linear_scores.
 *
 * The gradient a model's backward callback writes is observed through the
 * public trainer: with SGD at lr = 1 one step moves theta by exactly -g (up to
 * the float32 rounding of theta - g), and drpo_trainer_evaluate gives the
 * robust value and ||g||.  Exact-mode objectives make the pair weights
 * arbitrary: the KL penalty form tilts every unit differently
 * (q_u ∝ p_u exp(l_u / lambda)), CVaR gives capped, zero and fractional
 * weights, and units of two pairs halve them again.  The test computes the
 * losses, weights, value and gradient itself in double and compares.
 *
 * Exactness: features and parameters are small dyadic rationals (features on
 * a 2^-4 grid in [-1, 1], parameters on a 2^-9 grid in [-1, 1], finite
 * difference steps 2^-8 and 2^-9), so every margin and logit is exact in
 * float32 whatever the summation order or FMA use (at most 2^18 grid steps,
 * below float's 2^24).  Losses, weights and the value are then the same
 * doubles in the library and in the test up to the solver's summation order;
 * the only float32 rounding left is in the gradient: the per-pair
 * coefficient (float)(w_j * dl_j), the float accumulation of n terms, and the
 * step's rounding of theta - g.  Tolerance per coordinate i:
 *     |g_i - g_ref_i| <= 4 (n + 4) 2^-24 S_i + 2^-24 |theta_i|,
 * S_i = sum_j w_j |d loss_j / d theta_i| term by term (the standard bound of
 * a float sum of n + 2 rounded terms, doubled).  A wrong weight, slope,
 * feature row or sign moves g by a large fraction of S_i. */
#include "check_util.h"
#include "suites.h"
#include "../lib/model.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define F32_EPS (1.0 / 16777216.0) /* 2^-24 */
#define MAXD 16
#define MAXN 64

/* A random dyadic rational k / 2^shift, |k| <= kmax. */
static float dyadic(tu_rng *r, int kmax, int shift)
{
    int k = (int)tu_below(r, (size_t)(2 * kmax + 1)) - kmax;
    return (float)ldexp((double)k, -shift);
}

/* ---- reference models (double) ------------------------------------------ */

typedef struct pl_data {
    size_t dim, rows;
    float diff[48 * MAXD];
    float theta_ref[MAXD];
    int use_ref;
    int32_t kind;
    double beta, eps;
} pl_data;

/* Loss of pair h at theta, its gradient in grad and |terms| in gabs. */
static double pl_ref(const void *ctx, int64_t h, const double *theta, double *grad, double *gabs)
{
    const pl_data *p = ctx;
    const float *x = p->diff + (size_t)h * p->dim;
    double m = 0.0;
    for (size_t i = 0; i < p->dim; i++)
        m += ((double)theta[i] - (p->use_ref ? (double)p->theta_ref[i] : 0.0)) * x[i];
    double l, dl;
    ck_assert_int_eq(drpo_loss_from_margins(p->kind, 1, &m, p->beta, p->eps, &l, &dl), DRPO_OK);
    for (size_t i = 0; i < p->dim; i++) {
        grad[i] = dl * x[i];
        gabs[i] = fabs(grad[i]);
    }
    return l;
}

typedef struct sp_data {
    size_t dim, n_prompts;
    size_t off[16];
    float feat[64 * MAXD];
    double reward[64], true_reward[64];
    float theta_ref[MAXD];
    int use_ref;
    double beta;
} sp_data;

/* log pi(.|i) under theta (double) into out. */
static void sp_logp(const sp_data *s, const double *theta, size_t i, double *out)
{
    size_t a = s->off[i], k = s->off[i + 1] - a;
    double top = -INFINITY;
    for (size_t c = 0; c < k; c++) {
        double v = 0.0;
        for (size_t d = 0; d < s->dim; d++)
            v += theta[d] * s->feat[(a + c) * s->dim + d];
        out[c] = v;
        top = fmax(top, v);
    }
    double z = 0.0;
    for (size_t c = 0; c < k; c++)
        z += exp(out[c] - top);
    double lz = top + log(z);
    for (size_t c = 0; c < k; c++)
        out[c] -= lz;
}

/* E_pi reward and KL(pi || pi_ref) of prompt i at theta, computed directly. */
static void sp_stats_ref(const sp_data *s, const double *theta, size_t i, const double *reward,
                         double *er, double *kl)
{
    double lp[64], lr[64], ref[MAXD] = {0.0};
    for (size_t d = 0; d < s->dim; d++)
        ref[d] = s->use_ref ? s->theta_ref[d] : 0.0;
    sp_logp(s, theta, i, lp);
    sp_logp(s, ref, i, lr);
    size_t a = s->off[i], k = s->off[i + 1] - a;
    *er = *kl = 0.0;
    for (size_t c = 0; c < k; c++) {
        double p = exp(lp[c]);
        *er += p * reward[a + c];
        *kl += p * (lp[c] - lr[c]);
    }
}

/* The per-prompt loss -(E r - beta KL) and its gradient
 * -sum_k pi_k (g_k - E_pi g) phi_k, g_k = r_k - beta (log pi_k - log ref_k). */
static double sp_ref(const void *ctx, int64_t h, const double *theta, double *grad, double *gabs)
{
    const sp_data *s = ctx;
    size_t i = (size_t)h, a = s->off[i], k = s->off[i + 1] - a;
    double lp[64], lr[64], ref[MAXD] = {0.0}, g[64], eg = 0.0;
    for (size_t d = 0; d < s->dim; d++)
        ref[d] = s->use_ref ? s->theta_ref[d] : 0.0;
    sp_logp(s, theta, i, lp);
    sp_logp(s, ref, i, lr);
    double er = 0.0, kl = 0.0;
    for (size_t c = 0; c < k; c++) {
        double p = exp(lp[c]);
        er += p * s->reward[a + c];
        kl += p * (lp[c] - lr[c]);
        g[c] = s->reward[a + c] - s->beta * (lp[c] - lr[c]);
        eg += p * g[c];
    }
    for (size_t d = 0; d < s->dim; d++)
        grad[d] = gabs[d] = 0.0;
    for (size_t c = 0; c < k; c++) {
        double coef = -exp(lp[c]) * (g[c] - eg);
        for (size_t d = 0; d < s->dim; d++) {
            double t = coef * s->feat[(a + c) * s->dim + d];
            grad[d] += t;
            gabs[d] += fabs(t);
        }
    }
    return -(er - s->beta * fmax(kl, 0.0));
}

typedef double (*ref_fn)(const void *ctx, int64_t h, const double *theta, double *grad,
                         double *gabs);

/* ---- objectives, trainers, batches ---------------------------------------- */

typedef struct objective_case {
    int32_t set, key;
    double param;
    const char *name;
} objective_case;

static const objective_case objectives[] = {
    {DRPO_SET_NONE, 0, 0.0, "ERM"},
    {DRPO_SET_KL, DRPO_PARAM_PENALTY, 0.25, "KL penalty 0.25"},
    {DRPO_SET_CVAR, DRPO_PARAM_LEVEL, 0.3, "CVaR 0.3"},
};
#define N_OBJ (sizeof objectives / sizeof objectives[0])
#define OBJ_KL 1

static drpo_objective *make_objective(const objective_case *oc)
{
    drpo_objective *o;
    ck_assert_int_eq(drpo_objective_create(&o, oc->set), DRPO_OK);
    if (oc->key)
        ck_assert_int_eq(drpo_objective_set(o, oc->key, oc->param), DRPO_OK);
    ck_assert_int_eq(drpo_objective_set(o, DRPO_PARAM_MODE, DRPO_MODE_EXACT), DRPO_OK);
    return o;
}

/* SGD at lr = 1: a step moves theta by -g. */
static drpo_trainer *make_trainer(drpo_model *m, drpo_objective *o)
{
    drpo_trainer *t;
    ck_assert_int_eq(drpo_trainer_create(&t, m, o), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_set(t, DRPO_TRAIN_OPTIMIZER, DRPO_OPT_SGD), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_set(t, DRPO_TRAIN_LR, 1.0), DRPO_OK);
    return t;
}

/* A batch of host indices; pair j's prompt key is keys[j]. */
static drpo_batch *make_batch(size_t n, const int64_t *host, const uint64_t *keys)
{
    drpo_batch *b;
    ck_assert_int_eq(drpo_batch_create(&b), DRPO_OK);
    for (size_t j = 0; j < n; j++)
        ck_assert_int_eq(drpo_batch_add_key(b, keys[j], DRPO_GROUP_NONE, host[j]), DRPO_OK);
    return b;
}

/* The reference of a batch at theta: value, weights, gradient g and the
 * term scale S of each coordinate (see the top of the file). */
typedef struct batch_ref {
    double value, g[MAXD], scale[MAXD], gnorm, w[MAXN];
} batch_ref;

static void reference(ref_fn fn, const void *ctx, size_t dim, const objective_case *oc,
                      const drpo_batch *b, const double *theta, batch_ref *out)
{
    size_t n = drpo_batch_size(b);
    ck_assert_uint_le(n, MAXN);
    double l[MAXN], gr[MAXN][MAXD], ga[MAXN][MAXD], *w = out->w;
    for (size_t j = 0; j < n; j++)
        l[j] = fn(ctx, drpo_batch_host_index(b, j), theta, gr[j], ga[j]);
    /* units: the pairs of one prompt key; base p_u = pairs / n */
    size_t unit[MAXN], first[MAXN], cnt[MAXN] = {0}, U = 0;
    double ul[MAXN] = {0.0};
    for (size_t j = 0; j < n; j++) {
        size_t u = 0;
        while (u < U && drpo_batch_key(b, first[u]) != drpo_batch_key(b, j))
            u++;
        if (u == U)
            first[U++] = j;
        unit[j] = u;
        cnt[u]++;
        ul[u] += l[j];
    }
    for (size_t u = 0; u < U; u++)
        ul[u] /= (double)cnt[u];
    if (oc->set == DRPO_SET_NONE) {
        out->value = 0.0;
        for (size_t j = 0; j < n; j++) {
            w[j] = 1.0 / (double)n;
            out->value += l[j] / (double)n;
        }
    } else if (oc->set == DRPO_SET_KL) {
        /* max_q sum q l - lambda KL(q || p) = lambda log sum p exp(l / lambda),
         * attained at q_u ∝ p_u exp(l_u / lambda) */
        double lam = oc->param, top = -INFINITY, z = 0.0;
        for (size_t u = 0; u < U; u++)
            top = fmax(top, ul[u]);
        for (size_t u = 0; u < U; u++)
            z += (double)cnt[u] / (double)n * exp((ul[u] - top) / lam);
        out->value = top + lam * log(z);
        for (size_t j = 0; j < n; j++)
            w[j] = (double)cnt[unit[j]] / (double)n * exp((ul[unit[j]] - top) / lam) / z /
                   (double)cnt[unit[j]];
    } else { /* CVaR: the library's weights (tested by the objective suites) */
        drpo_objective *o = make_objective(oc);
        drpo_trainer *t;
        ck_assert_int_eq(drpo_trainer_create(&t, NULL, o), DRPO_OK);
        ck_assert_int_eq(drpo_trainer_weights(t, b, l, w, NULL), DRPO_OK);
        drpo_trainer_free(t);
        drpo_objective_free(o);
        out->value = 0.0;
        for (size_t j = 0; j < n; j++)
            out->value += w[j] * l[j];
    }
    double g2 = 0.0;
    for (size_t i = 0; i < dim; i++) {
        out->g[i] = out->scale[i] = 0.0;
        for (size_t j = 0; j < n; j++) {
            out->g[i] += w[j] * gr[j][i];
            out->scale[i] += w[j] * ga[j][i];
        }
        g2 += out->g[i] * out->g[i];
    }
    out->gnorm = sqrt(g2);
}

/* Per-coordinate tolerance of a float32 gradient (top of the file). */
static double grad_tol(size_t n, double scale, double theta)
{
    return 4.0 * (double)(n + 4) * F32_EPS * scale + F32_EPS * fabs(theta);
}

static void set_params(drpo_model *m, const float *theta)
{
    memcpy(drpo_model_params(m), theta, drpo_model_n_params(m) * sizeof(float));
}

/* May coordinate i be differenced with steps up to h (the pairwise hinge:
 * no pair's z = beta m may reach the kink z = 1)?  NULL: always. */
typedef int (*fd_ok_fn)(const void *ctx, const drpo_batch *b, const double *theta, size_t i,
                        double h);

static int pl_fd_ok(const void *ctx, const drpo_batch *b, const double *theta, size_t i, double h)
{
    const pl_data *p = ctx;
    if (p->kind != DRPO_LOSS_HINGE)
        return 1;
    for (size_t j = 0; j < drpo_batch_size(b); j++) {
        const float *x = p->diff + (size_t)drpo_batch_host_index(b, j) * p->dim;
        double m = 0.0;
        for (size_t d = 0; d < p->dim; d++)
            m += (theta[d] - (p->use_ref ? (double)p->theta_ref[d] : 0.0)) * x[d];
        if (fabs(p->beta * m - 1.0) <= p->beta * h * fabs(x[i]))
            return 0;
    }
    return 1;
}

/* The gradient of one step (SGD, lr = 1) at theta, in double: theta - theta'.
 * Restores theta.  Also the step's robust value and gradient norm. */
static void step_gradient(drpo_trainer *t, drpo_model *m, const drpo_batch *b, const float *theta,
                          double *g, double *value, double *gnorm)
{
    size_t dim = drpo_model_n_params(m);
    set_params(m, theta);
    ck_assert_int_eq(drpo_trainer_step(t, b), DRPO_OK);
    const float *after = drpo_model_params(m);
    for (size_t i = 0; i < dim; i++)
        g[i] = (double)theta[i] - (double)after[i];
    ck_assert_int_eq(drpo_trainer_diag(t, DRPO_TDIAG_ROBUST, value), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_diag(t, DRPO_TDIAG_GRAD_NORM, gnorm), DRPO_OK);
    set_params(m, theta);
}

static double evaluate_at(drpo_trainer *t, drpo_model *m, const drpo_batch *b, const float *theta)
{
    double v, gn;
    set_params(m, theta);
    ck_assert_int_eq(drpo_trainer_evaluate(t, b, &v, &gn), DRPO_OK);
    return v;
}

/* Every objective on one batch: the evaluated value and gradient norm, the
 * step's gradient vector against the reference, and (KL penalty, when fd)
 * Richardson central differences of the evaluated value in each
 * coordinate, which by the envelope theorem are sum_j w_j d loss_j / d theta
 * at the optimal weights.  Steps 2^-8 and 2^-9 keep theta dyadic; the
 * extrapolation error is O(h^4), about 1e-10 here, and the value's rounding
 * 1e-16 / h, so 1e-7 max(1, |g|_inf) on top of the float tolerance is ample
 * and still far below any real slip.  g_out (if not NULL) receives the
 * gradients by objective, for comparisons across batch layouts. */
static void check_batch(const char *what, drpo_model *m, ref_fn fn, const void *ctx,
                        fd_ok_fn fd_ok, const float *theta, const drpo_batch *b, int fd,
                        double g_out[N_OBJ][MAXD])
{
    size_t dim = drpo_model_n_params(m), n = drpo_batch_size(b);
    double th[MAXD];
    for (size_t i = 0; i < dim; i++)
        th[i] = theta[i];
    for (size_t k = 0; k < N_OBJ; k++) {
        const objective_case *oc = &objectives[k];
        batch_ref ref;
        reference(fn, ctx, dim, oc, b, th, &ref);
        if (oc->set != DRPO_SET_NONE) { /* the weights are not uniform */
            double lo = HUGE_VAL, hi = 0.0;
            for (size_t j = 0; j < n; j++) {
                lo = fmin(lo, ref.w[j]);
                hi = fmax(hi, ref.w[j]);
            }
            ck_assert_msg(hi > 1.5 * lo, "%s, %s: weights too uniform (%g .. %g)", what,
                          oc->name, lo, hi);
        }
        drpo_objective *o = make_objective(oc);
        drpo_trainer *t = make_trainer(m, o);
        double v, gn, tol2 = 0.0, tol[MAXD];
        for (size_t i = 0; i < dim; i++) {
            tol[i] = grad_tol(n, ref.scale[i], th[i]);
            tol2 += tol[i] * tol[i];
        }
        set_params(m, theta);
        ck_assert_int_eq(drpo_trainer_evaluate(t, b, &v, &gn), DRPO_OK);
        double vtol = 1e-12 * fmax(1.0, fabs(ref.value));
        ck_assert_msg(fabs(v - ref.value) <= vtol, "%s, %s: value %.17g, reference %.17g", what,
                      oc->name, v, ref.value);
        ck_assert_msg(fabs(gn - ref.gnorm) <= sqrt(tol2) + 1e-300,
                      "%s, %s: gradient norm %.17g, reference %.17g", what, oc->name, gn,
                      ref.gnorm);
        double g[MAXD], sv, sg;
        step_gradient(t, m, b, theta, g, &sv, &sg);
        ck_assert_msg(fabs(sv - ref.value) <= vtol && fabs(sg - gn) <= 1e-12 * fmax(1.0, gn),
                      "%s, %s: step value %.17g norm %.17g, evaluate %.17g %.17g", what, oc->name,
                      sv, sg, v, gn);
        double gmax = 0.0;
        for (size_t i = 0; i < dim; i++) {
            ck_assert_msg(fabs(g[i] - ref.g[i]) <= tol[i],
                          "%s, %s: gradient[%zu] %.9g, reference %.9g (tolerance %.3g)", what,
                          oc->name, i, g[i], ref.g[i], tol[i]);
            gmax = fmax(gmax, fabs(ref.g[i]));
            if (g_out)
                g_out[k][i] = g[i];
        }
        if (fd && oc->set == DRPO_SET_KL) {
            const double h = 1.0 / 256.0;
            for (size_t i = 0; i < dim; i++) {
                if (fd_ok && !fd_ok(ctx, b, th, i, h))
                    continue;
                float tp[MAXD];
                memcpy(tp, theta, dim * sizeof(float));
                double f[4];
                const double steps[4] = {h, -h, 0.5 * h, -0.5 * h};
                for (int s = 0; s < 4; s++) {
                    tp[i] = (float)(th[i] + steps[s]); /* exact: dyadic */
                    ck_assert((double)tp[i] == th[i] + steps[s]);
                    f[s] = evaluate_at(t, m, b, tp);
                }
                double d1 = (f[0] - f[1]) / (2.0 * h), d2 = (f[2] - f[3]) / h;
                double fdv = (4.0 * d2 - d1) / 3.0;
                ck_assert_msg(fabs(fdv - g[i]) <= tol[i] + 1e-7 * fmax(1.0, gmax),
                              "%s, %s: gradient[%zu] %.12g, finite differences %.12g", what,
                              oc->name, i, g[i], fdv);
            }
            set_params(m, theta);
        }
        drpo_trainer_free(t);
        drpo_objective_free(o);
    }
}

/* ---- the pairwise linear model ------------------------------------------- */

#define PL_DIM 13
#define PL_ROWS 40

static void pl_fill(pl_data *p, tu_rng *r)
{
    memset(p, 0, sizeof *p);
    p->dim = PL_DIM;
    p->rows = PL_ROWS;
    for (size_t k = 0; k < PL_ROWS * PL_DIM; k++)
        p->diff[k] = dyadic(r, 16, 4); /* [-1, 1] on 2^-4 */
    for (size_t i = 0; i < PL_DIM; i++)
        p->theta_ref[i] = dyadic(r, 96, 9); /* [-0.19, 0.19] on 2^-9 */
}

/* The same 24 pairs (rows 8..31, two consecutive rows per prompt key) as one
 * contiguous run (BLIS gemv), fully scattered (per-row dot products) and
 * mixed (runs of 5, 4, 2, 5, 4 between single rows). */
static const int64_t layout_contig[24] = {8,  9,  10, 11, 12, 13, 14, 15, 16, 17, 18, 19,
                                          20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31};
static const int64_t layout_scatter[24] = {8,  10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30,
                                           9,  11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31};
static const int64_t layout_mixed[24] = {20, 21, 22, 23, 24, 8,  12, 13, 14, 15, 10, 30,
                                         31, 25, 26, 27, 28, 29, 9,  11, 16, 17, 18, 19};

static drpo_batch *pl_batch(const int64_t *host)
{
    uint64_t keys[24];
    for (size_t j = 0; j < 24; j++)
        keys[j] = (uint64_t)host[j] / 2;
    return make_batch(24, host, keys);
}

START_TEST(test_pairwise_gradients)
{
    tu_rng r;
    tu_rng_seed(&r, 0x9a1e);
    pl_data p;
    pl_fill(&p, &r);
    const int64_t *layouts[3] = {layout_contig, layout_scatter, layout_mixed};
    const char *lnames[3] = {"contiguous", "scattered", "mixed"};
    for (int32_t kind = DRPO_LOSS_BT; kind <= DRPO_LOSS_CDPO; kind++)
        for (int use_ref = 0; use_ref < 2; use_ref++) {
            p.kind = kind;
            p.use_ref = use_ref;
            p.beta = 0.75;
            p.eps = kind == DRPO_LOSS_CDPO ? 0.2 : 0.0;
            drpo_model *m;
            ck_assert_int_eq(drpo_pairwise_linear_create(&m, PL_DIM, PL_ROWS, p.diff, kind, p.beta,
                                                         p.eps, use_ref ? p.theta_ref : NULL),
                             DRPO_OK);
            ck_assert_uint_eq(drpo_model_n_params(m), PL_DIM);
            for (size_t i = 0; i < PL_DIM; i++)
                ck_assert(drpo_model_params(m)[i] == 0.0f);
            float theta[PL_DIM];
            for (size_t i = 0; i < PL_DIM; i++)
                theta[i] = dyadic(&r, 160, 9); /* [-0.31, 0.31] on 2^-9 */
            double g[3][N_OBJ][MAXD];
            for (int l = 0; l < 3; l++) {
                char what[96];
                snprintf(what, sizeof what, "pairwise kind %d%s, %s", (int)kind,
                         use_ref ? " with theta_ref" : "", lnames[l]);
                drpo_batch *b = pl_batch(layouts[l]);
                check_batch(what, m, pl_ref, &p, pl_fd_ok, theta, b, l == 0, g[l]);
                drpo_batch_free(b);
            }
            /* the layouts agree with each other (each is within tol of the reference) */
            for (int l = 1; l < 3; l++)
                for (size_t k = 0; k < N_OBJ; k++)
                    for (size_t i = 0; i < PL_DIM; i++)
                        ck_assert_msg(fabs(g[l][k][i] - g[0][k][i]) <=
                                          1e-5 * (fabs(g[0][k][i]) + 1e-3),
                                      "kind %d: %s and contiguous gradients differ", (int)kind,
                                      lnames[l]);
            drpo_model_free(m);
        }
}
END_TEST

/* General (non-dyadic) floats: the BLIS path accumulates in float, the
 * per-row path in double, so the margins agree to the float bound
 * |dm| <= (dim + 2) 2^-24 sum_i |theta_i x_i|; value and gradient of a
 * contiguous and a scattered batch of the same pairs agree with the double
 * reference within that bound carried through |dl| <= 1 and |d2l| <= 1/4. */
START_TEST(test_pairwise_general_floats)
{
    enum { D = 40, ROWS = 120, N = 60 };
    static float x[ROWS * D];
    tu_rng r;
    tu_rng_seed(&r, 0x6f10a7);
    for (size_t k = 0; k < ROWS * D; k++)
        x[k] = (float)(2.0 * tu_unif(&r) - 1.0);
    float theta[D];
    double th[D];
    for (size_t i = 0; i < D; i++)
        th[i] = theta[i] = (float)(0.4 * tu_unif(&r) - 0.2);
    int64_t contig[N], scatter[N];
    uint64_t keys[N];
    for (size_t j = 0; j < N; j++)
        contig[j] = 30 + (int64_t)j;
    for (size_t j = 0, k = 0; k < 3; k++) /* 30, 33, ..., 31, 34, ..., 32, 35, ... */
        for (size_t i = k; i < N; i += 3)
            scatter[j++] = 30 + (int64_t)i;
    for (int32_t kind = DRPO_LOSS_BT; kind <= DRPO_LOSS_DPO; kind++) {
        drpo_model *m;
        ck_assert_int_eq(drpo_pairwise_linear_create(&m, D, ROWS, x, kind, 1.0, 0.0, NULL),
                         DRPO_OK);
        drpo_objective *o;
        ck_assert_int_eq(drpo_objective_create(&o, DRPO_SET_NONE), DRPO_OK);
        drpo_trainer *t = make_trainer(m, o);
        double gl[2][D], vl[2];
        for (int l = 0; l < 2; l++) {
            const int64_t *host = l ? scatter : contig;
            for (size_t j = 0; j < N; j++)
                keys[j] = (uint64_t)host[j];
            drpo_batch *b = make_batch(N, host, keys);
            double value = 0.0, g[D] = {0}, slack[D] = {0}, vtol = 0.0;
            for (size_t j = 0; j < N; j++) {
                const float *xr = x + host[j] * D;
                double mj = 0.0, mabs = 0.0, lj, dl;
                for (size_t i = 0; i < D; i++) {
                    mj += th[i] * xr[i];
                    mabs += fabs(th[i] * xr[i]);
                }
                ck_assert_int_eq(drpo_loss_from_margins(kind, 1, &mj, 1.0, 0.0, &lj, &dl),
                                 DRPO_OK);
                double dm = (D + 2) * F32_EPS * mabs;
                value += lj / N;
                vtol += fabs(dl) * dm / N;
                for (size_t i = 0; i < D; i++) {
                    g[i] += dl * xr[i] / N;
                    slack[i] += (fabs(dl * xr[i]) * 4.0 * (N + 4) * F32_EPS +
                                 0.25 * dm * fabs(xr[i])) / N;
                }
            }
            double v, gn, sv, sg;
            set_params(m, theta);
            ck_assert_int_eq(drpo_trainer_evaluate(t, b, &v, &gn), DRPO_OK);
            ck_assert_msg(fabs(v - value) <= vtol + 1e-15,
                          "kind %d layout %d: value %.17g, ref %.17g",
                          (int)kind, l, v, value);
            step_gradient(t, m, b, theta, gl[l], &sv, &sg);
            for (size_t i = 0; i < D; i++)
                ck_assert_msg(fabs(gl[l][i] - g[i]) <= slack[i] + F32_EPS * fabs(th[i]),
                              "kind %d layout %d: gradient[%zu] %.9g, reference %.9g", (int)kind,
                              l, i, gl[l][i], g[i]);
            vl[l] = v;
            drpo_batch_free(b);
        }
        ck_assert(fabs(vl[0] - vl[1]) <= 1e-6 * fabs(vl[0]));
        drpo_trainer_free(t);
        drpo_objective_free(o);
        drpo_model_free(m);
    }
}
END_TEST

/* A create call fails with `want` and sets its model to NULL. */
#define CREATE_FAILS(want, create, ...)                                 \
    do {                                                                \
        drpo_model *made_ = (drpo_model *)&made_;                       \
        ck_assert_int_eq(create(&made_, __VA_ARGS__), want);            \
        ck_assert_ptr_null(made_);                                      \
    } while (0)

/* A step that fails leaves theta bitwise as it was. */
static void expect_bad_index(drpo_model *m, const int64_t *host, size_t n)
{
    uint64_t keys[8];
    for (size_t j = 0; j < n; j++)
        keys[j] = (uint64_t)j;
    drpo_batch *b = make_batch(n, host, keys);
    drpo_objective *o = make_objective(&objectives[OBJ_KL]);
    drpo_trainer *t = make_trainer(m, o);
    size_t d = drpo_model_n_params(m);
    float before[MAXD];
    for (size_t i = 0; i < d; i++)
        drpo_model_params(m)[i] = (float)(0.125 * (double)i - 0.5);
    memcpy(before, drpo_model_params(m), d * sizeof(float));
    ck_assert_int_eq(drpo_trainer_step(t, b), DRPO_ERR_CALLBACK);
    double code = 0.0, v = 7.0, gn = 7.0;
    ck_assert_int_eq(drpo_trainer_diag(t, DRPO_TDIAG_CALLBACK_CODE, &code), DRPO_OK);
    ck_assert(code == 1.0);
    ck_assert(memcmp(before, drpo_model_params(m), d * sizeof(float)) == 0);
    ck_assert_int_eq(drpo_trainer_evaluate(t, b, &v, &gn), DRPO_ERR_CALLBACK);
    ck_assert(v == 7.0 && gn == 7.0);
    ck_assert(memcmp(before, drpo_model_params(m), d * sizeof(float)) == 0);
    drpo_trainer_free(t);
    drpo_objective_free(o);
    drpo_batch_free(b);
}

START_TEST(test_pairwise_bad_inputs)
{
    float diff[4 * 3] = {0};
    float ref[8] = {0}; /* theta_ref: 3 or D = 5 used */
    drpo_model *m;
    ck_assert_int_eq(drpo_pairwise_linear_create(NULL, 3, 4, diff, DRPO_LOSS_BT, 1.0, 0.0, NULL),
                     DRPO_ERR_NULL);
    CREATE_FAILS(DRPO_ERR_NULL, drpo_pairwise_linear_create,
                 3, 4, NULL, DRPO_LOSS_BT, 1.0, 0.0, NULL);
    CREATE_FAILS(DRPO_ERR_SIZE, drpo_pairwise_linear_create,
                 0, 4, diff, DRPO_LOSS_BT, 1.0, 0.0, NULL);
    CREATE_FAILS(DRPO_ERR_KEY, drpo_pairwise_linear_create, 3, 4, diff, -1, 1.0, 0.0, NULL);
    CREATE_FAILS(DRPO_ERR_KEY, drpo_pairwise_linear_create, 3, 4, diff, 5, 1.0, 0.0, NULL);
    CREATE_FAILS(DRPO_ERR_PARAM_RANGE, drpo_pairwise_linear_create,
                 3, 4, diff, DRPO_LOSS_DPO, 0.0, 0.0, ref);
    CREATE_FAILS(DRPO_ERR_PARAM_RANGE, drpo_pairwise_linear_create,
                 3, 4, diff, DRPO_LOSS_IPO, -1.0, 0.0, ref);
    CREATE_FAILS(DRPO_ERR_PARAM_RANGE, drpo_pairwise_linear_create,
                 3, 4, diff, DRPO_LOSS_HINGE, NAN, 0.0, ref);
    CREATE_FAILS(DRPO_ERR_PARAM_RANGE, drpo_pairwise_linear_create,
                 3, 4, diff, DRPO_LOSS_CDPO, HUGE_VAL, 0.1, ref);
    CREATE_FAILS(DRPO_ERR_PARAM_RANGE, drpo_pairwise_linear_create,
                 3, 4, diff, DRPO_LOSS_CDPO, 1.0, 0.6, ref);
    CREATE_FAILS(DRPO_ERR_PARAM_RANGE, drpo_pairwise_linear_create,
                 3, 4, diff, DRPO_LOSS_CDPO, 1.0, -0.1, ref);
    CREATE_FAILS(DRPO_ERR_PARAM_RANGE, drpo_pairwise_linear_create,
                 3, 4, diff, DRPO_LOSS_CDPO, 1.0, NAN, ref);

    /* a host index outside [0, rows): the callback fails with code 1 */
    enum { D = 5, ROWS = 40 };
    static float x[ROWS * D];
    for (size_t k = 0; k < ROWS * D; k++)
        x[k] = (float)((int)(k % 7) - 3) / 4.0f;
    ck_assert_int_eq(drpo_pairwise_linear_create(&m, D, ROWS, x, DRPO_LOSS_DPO, 0.5, 0.0, ref),
                     DRPO_OK);
    const int64_t past_end[] = {36, 37, 38, 39, 40}; /* a run that leaves the data */
    const int64_t scattered[] = {3, 40, 7};
    const int64_t negative[] = {5, 6, 7, 8, -1};
    const int64_t far[] = {INT64_MAX};
    expect_bad_index(m, past_end, 5);
    expect_bad_index(m, scattered, 3);
    expect_bad_index(m, negative, 5);
    expect_bad_index(m, far, 1);
    drpo_model_free(m);
}
END_TEST

/* ---- the softmax policy ---------------------------------------------------- */

#define SP_DIM 6

static void sp_fill(sp_data *s, tu_rng *r)
{
    static const size_t counts[] = {1, 3, 4, 6, 2, 5, 8};
    memset(s, 0, sizeof *s);
    s->dim = SP_DIM;
    s->n_prompts = sizeof counts / sizeof counts[0];
    for (size_t i = 0; i < s->n_prompts; i++)
        s->off[i + 1] = s->off[i] + counts[i];
    for (size_t k = 0; k < s->off[s->n_prompts] * SP_DIM; k++)
        s->feat[k] = dyadic(r, 16, 4);
    for (size_t k = 0; k < s->off[s->n_prompts]; k++) {
        s->reward[k] = 2.0 * tu_unif(r) - 1.0;
        s->true_reward[k] = 3.0 * tu_unif(r) - 1.0;
    }
    for (size_t i = 0; i < SP_DIM; i++)
        s->theta_ref[i] = dyadic(r, 256, 9);
}

static drpo_model *sp_model(const sp_data *s)
{
    drpo_model *m;
    ck_assert_int_eq(drpo_softmax_policy_create(&m, s->dim, s->n_prompts, s->off, s->feat,
                                                s->reward, s->use_ref ? s->theta_ref : NULL,
                                                s->beta),
                     DRPO_OK);
    return m;
}

START_TEST(test_softmax_policy)
{
    tu_rng r;
    tu_rng_seed(&r, 0x50f7);
    sp_data s;
    sp_fill(&s, &r);
    const double betas[] = {0.0, 0.3, 1.7};
    for (size_t bi = 0; bi < 3; bi++)
        for (int use_ref = 0; use_ref < 2; use_ref++) {
            s.beta = betas[bi];
            s.use_ref = use_ref;
            drpo_model *m = sp_model(&s);
            ck_assert_uint_eq(drpo_model_n_params(m), SP_DIM);
            for (size_t i = 0; i < SP_DIM; i++)
                ck_assert(drpo_model_params(m)[i] == 0.0f);
            float theta[SP_DIM];
            double th[SP_DIM];
            for (size_t i = 0; i < SP_DIM; i++)
                th[i] = theta[i] = dyadic(&r, 400, 9); /* [-0.78, 0.78] on 2^-9 */
            char what[96];
            snprintf(what, sizeof what, "softmax beta %g%s", s.beta,
                     use_ref ? " with theta_ref" : "");

            /* each prompt's loss alone, and the stats, against the direct computation */
            drpo_objective *o;
            ck_assert_int_eq(drpo_objective_create(&o, DRPO_SET_NONE), DRPO_OK);
            drpo_trainer *t = make_trainer(m, o);
            set_params(m, theta);
            for (size_t i = 0; i < s.n_prompts; i++) {
                int64_t h = (int64_t)i;
                uint64_t key = 1;
                drpo_batch *b = make_batch(1, &h, &key);
                double gr[MAXD], ga[MAXD], v, gn;
                double want = sp_ref(&s, h, th, gr, ga);
                ck_assert_int_eq(drpo_trainer_evaluate(t, b, &v, &gn), DRPO_OK);
                ck_assert_msg(fabs(v - want) <= 1e-12 * (1.0 + fabs(want)),
                              "%s prompt %zu: loss %.17g, direct %.17g", what, i, v, want);
                double er, kl, er_ref, kl_ref;
                sp_stats_ref(&s, th, i, s.reward, &er_ref, &kl_ref);
                ck_assert_int_eq(drpo_softmax_policy_stats(m, i, NULL, &er, &kl), DRPO_OK);
                ck_assert(fabs(er - er_ref) <= 1e-13 && fabs(kl - kl_ref) <= 1e-13 && kl >= 0.0);
                ck_assert(fabs(v - -(er - s.beta * kl)) <= 1e-13 * (1.0 + fabs(v)));
                sp_stats_ref(&s, th, i, s.true_reward, &er_ref, &kl_ref);
                ck_assert_int_eq(drpo_softmax_policy_stats(m, i, s.true_reward, &er, NULL),
                                 DRPO_OK);
                ck_assert(fabs(er - er_ref) <= 1e-13);
                ck_assert_int_eq(drpo_softmax_policy_stats(m, i, s.true_reward, NULL, &kl),
                                 DRPO_OK);
                ck_assert(fabs(kl - kl_ref) <= 1e-13);
                if (i == 0) /* one candidate: pi = 1, KL = 0, no gradient */
                    ck_assert(kl == 0.0 && er == s.true_reward[0] && gn == 0.0);
                drpo_batch_free(b);
            }
            /* at theta_ref the policy is the reference: KL 0 */
            float at_ref[SP_DIM];
            for (size_t i = 0; i < SP_DIM; i++)
                at_ref[i] = use_ref ? s.theta_ref[i] : 0.0f;
            set_params(m, at_ref);
            for (size_t i = 0; i < s.n_prompts; i++) {
                double kl;
                ck_assert_int_eq(drpo_softmax_policy_stats(m, i, NULL, NULL, &kl), DRPO_OK);
                ck_assert(kl >= 0.0 && kl <= 1e-15);
            }
            drpo_trainer_free(t);
            drpo_objective_free(o);

            /* every prompt, prompt 3 twice (one unit of two entries) */
            const int64_t host[] = {0, 1, 2, 3, 4, 5, 6, 3};
            uint64_t keys[8];
            for (size_t j = 0; j < 8; j++)
                keys[j] = (uint64_t)host[j] + 100;
            drpo_batch *b = make_batch(8, host, keys);
            check_batch(what, m, sp_ref, &s, NULL, theta, b, 1, NULL);
            drpo_batch_free(b);
            drpo_model_free(m);
        }
}
END_TEST

static int dummy_forward(void *u, const float *p, const drpo_batch *b, double *l)
{
    (void)u;
    (void)p;
    (void)b;
    (void)l;
    return 0;
}

static int dummy_backward(void *u, const float *p, const drpo_batch *b, const double *w, float *g)
{
    (void)u;
    (void)p;
    (void)b;
    (void)w;
    (void)g;
    return 0;
}

START_TEST(test_softmax_bad_inputs)
{
    tu_rng r;
    tu_rng_seed(&r, 0xbad5);
    sp_data s;
    sp_fill(&s, &r);
    size_t P = s.n_prompts;
    drpo_model *m;
    ck_assert_int_eq(
        drpo_softmax_policy_create(NULL, SP_DIM, P, s.off, s.feat, s.reward, NULL, 1.0),
                     DRPO_ERR_NULL);
    CREATE_FAILS(DRPO_ERR_NULL, drpo_softmax_policy_create,
                 SP_DIM, P, NULL, s.feat, s.reward, NULL, 1.0);
    CREATE_FAILS(DRPO_ERR_NULL, drpo_softmax_policy_create,
                 SP_DIM, P, s.off, NULL, s.reward, NULL, 1.0);
    CREATE_FAILS(DRPO_ERR_NULL, drpo_softmax_policy_create,
                 SP_DIM, P, s.off, s.feat, NULL, NULL, 1.0);
    CREATE_FAILS(DRPO_ERR_SIZE, drpo_softmax_policy_create,
                 0, P, s.off, s.feat, s.reward, NULL, 1.0);
    CREATE_FAILS(DRPO_ERR_SIZE, drpo_softmax_policy_create,
                 SP_DIM, 0, s.off, s.feat, s.reward, NULL, 1.0);
    const size_t from_one[] = {1, 3, 5};
    const size_t empty_set[] = {0, 2, 2, 5};
    const size_t decreasing[] = {0, 3, 2, 5};
    const size_t empty_first[] = {0, 0, 4};
    CREATE_FAILS(DRPO_ERR_SIZE, drpo_softmax_policy_create,
                 SP_DIM, 2, from_one, s.feat, s.reward, NULL, 1.0);
    CREATE_FAILS(DRPO_ERR_SIZE, drpo_softmax_policy_create,
                 SP_DIM, 3, empty_set, s.feat, s.reward, NULL, 1.0);
    CREATE_FAILS(DRPO_ERR_SIZE, drpo_softmax_policy_create,
                 SP_DIM, 3, decreasing, s.feat, s.reward, NULL, 1.0);
    CREATE_FAILS(DRPO_ERR_SIZE, drpo_softmax_policy_create,
                 SP_DIM, 2, empty_first, s.feat, s.reward, NULL, 1.0);
    CREATE_FAILS(DRPO_ERR_PARAM_RANGE, drpo_softmax_policy_create,
                 SP_DIM, P, s.off, s.feat, s.reward, NULL, -0.1);
    CREATE_FAILS(DRPO_ERR_PARAM_RANGE, drpo_softmax_policy_create,
                 SP_DIM, P, s.off, s.feat, s.reward, s.theta_ref, -1e-300);
    CREATE_FAILS(DRPO_ERR_PARAM_RANGE, drpo_softmax_policy_create,
                 SP_DIM, P, s.off, s.feat, s.reward, NULL, NAN);
    CREATE_FAILS(DRPO_ERR_PARAM_RANGE, drpo_softmax_policy_create,
                 SP_DIM, P, s.off, s.feat, s.reward, NULL, -HUGE_VAL);

    s.beta = 0.5;
    s.use_ref = 1;
    m = sp_model(&s);
    /* stats: errors write nothing */
    double er = 7.0, kl = 7.0;
    ck_assert_int_eq(drpo_softmax_policy_stats(NULL, 0, NULL, &er, &kl), DRPO_ERR_NULL);
    ck_assert_int_eq(drpo_softmax_policy_stats(m, P, NULL, &er, &kl), DRPO_ERR_SIZE);
    ck_assert_int_eq(drpo_softmax_policy_stats(m, SIZE_MAX, NULL, &er, &kl), DRPO_ERR_SIZE);
    drpo_model *pl;
    float diff[SP_DIM] = {1.0f};
    ck_assert_int_eq(
        drpo_pairwise_linear_create(&pl, SP_DIM, 1, diff, DRPO_LOSS_BT, 1.0, 0.0, NULL),
                     DRPO_OK);
    ck_assert_int_eq(drpo_softmax_policy_stats(pl, 0, NULL, &er, &kl), DRPO_ERR_STATE);
    drpo_model_free(pl);
    drpo_model_callbacks cb = {sizeof cb, dummy_forward, dummy_backward, NULL};
    drpo_model *user;
    ck_assert_int_eq(drpo_model_create(&user, SP_DIM, &cb, NULL), DRPO_OK);
    ck_assert_int_eq(drpo_softmax_policy_stats(user, 0, NULL, &er, &kl), DRPO_ERR_STATE);
    drpo_model_free(user);
    ck_assert(er == 7.0 && kl == 7.0);
    /* a host index outside [0, n_prompts): the callback fails with code 1 */
    const int64_t past_end[] = {0, 1, (int64_t)P};
    const int64_t negative[] = {-1, 2};
    const int64_t far[] = {INT64_MIN, 0};
    expect_bad_index(m, past_end, 3);
    expect_bad_index(m, negative, 2);
    expect_bad_index(m, far, 2);
    drpo_model_free(m);
}
END_TEST

/* ---- drpo_linear_scores --------------------------------------------------- */

/* Against a double loop, for more rows than the library's 1024-row chunk:
 * the float32 dot product is within (dim + 2) 2^-24 sum_i |x_i theta_i|. */
START_TEST(test_linear_scores)
{
    enum { D = 19, ROWS = 2500 };
    static float x[ROWS * D];
    static double s[ROWS + 1];
    float theta[D];
    tu_rng r;
    tu_rng_seed(&r, 0x5c0e);
    for (size_t k = 0; k < ROWS * D; k++)
        x[k] = (float)(4.0 * tu_unif(&r) - 2.0);
    for (size_t i = 0; i < D; i++)
        theta[i] = (float)(2.0 * tu_unif(&r) - 1.0);
    tu_fill_sentinel(s, ROWS + 1);
    ck_assert_int_eq(drpo_linear_scores(theta, D, ROWS, x, s), DRPO_OK);
    ck_assert(tu_is_sentinel(s + ROWS, 1)); /* nothing past the rows */
    for (size_t j = 0; j < ROWS; j++) {
        double ref = 0.0, mag = 0.0;
        for (size_t i = 0; i < D; i++) {
            ref += (double)x[j * D + i] * theta[i];
            mag += fabs((double)x[j * D + i] * theta[i]);
        }
        ck_assert_msg(fabs(s[j] - ref) <= (D + 2) * F32_EPS * mag,
                      "row %zu: %.17g, double loop %.17g", j, s[j], ref);
    }
    /* dyadic data: exact */
    float xd[3 * 4] = {0.5f,   -1.0f, 0.25f, 2.0f,   /* 1 - 0.5 - 0.25 + 0.5 */
                       1.0f,   1.0f,  1.0f,  1.0f,   /* 2 + 0.5 - 1 + 0.25 */
                       -0.125f, 0.0f, 4.0f,  -3.0f}; /* -0.25 - 4 - 0.75 */
    float td[4] = {2.0f, 0.5f, -1.0f, 0.25f};
    double sd[3];
    ck_assert_int_eq(drpo_linear_scores(td, 4, 3, xd, sd), DRPO_OK);
    ck_assert(sd[0] == 0.75 && sd[1] == 1.75 && sd[2] == -5.0);
    /* errors write nothing */
    tu_fill_sentinel(sd, 3);
    ck_assert_int_eq(drpo_linear_scores(NULL, 4, 3, xd, sd), DRPO_ERR_NULL);
    ck_assert_int_eq(drpo_linear_scores(td, 4, 3, NULL, sd), DRPO_ERR_NULL);
    ck_assert_int_eq(drpo_linear_scores(td, 4, 3, xd, NULL), DRPO_ERR_NULL);
    ck_assert_int_eq(drpo_linear_scores(td, 0, 3, xd, sd), DRPO_ERR_SIZE);
    ck_assert(tu_is_sentinel(sd, 3));
}
END_TEST

/* ---- the forward's cache ----------------------------------------------------- */

/* Backward of batch `b` through the model's own callbacks, after `before`:
 * 0 nothing, 1 forward of b, 2 forward of `other` (same size, other prompts). */
static void cached_backward(drpo_model *m, const drpo_batch *b, const drpo_batch *other,
                            int before, float *grad)
{
    double loss[MAXN], w[MAXN];
    size_t n = drpo_batch_size(b);
    for (size_t j = 0; j < n; j++)
        w[j] = 0.25 + 0.125 * (double)j;
    if (before)
        ck_assert_int_eq(m->cb.forward(m->user, m->params, before == 1 ? b : other, loss), 0);
    memset(grad, 0, MAXD * sizeof *grad);
    ck_assert_int_eq(m->cb.backward(m->user, m->params, b, w, grad), 0);
}

/* The built-in models keep the forward's slopes for the backward that
 * follows it with the same parameters and batch; a backward of another
 * batch (here of the same size), or one with no forward before it, must
 * compute its own: all give the same bits. */
START_TEST(test_builtin_forward_cache)
{
    tu_rng r;
    tu_rng_seed(&r, 0xcac4e);
    pl_data p;
    pl_fill(&p, &r);
    sp_data s;
    sp_fill(&s, &r);
    s.beta = 0.6;
    s.use_ref = 1;
    drpo_model *m[2];
    ck_assert_int_eq(drpo_pairwise_linear_create(&m[0], PL_DIM, PL_ROWS, p.diff, DRPO_LOSS_DPO,
                                                 0.75, 0.0, p.theta_ref),
                     DRPO_OK);
    m[1] = sp_model(&s);
    const int64_t host_a[2][4] = {{3, 4, 5, 9}, {2, 3, 4, 1}}, host_b[2][4] = {{20, 2, 7, 8},
                                                                              {5, 6, 0, 3}};
    const uint64_t keys[4] = {1, 2, 3, 4};
    for (int k = 0; k < 2; k++) {
        size_t dim = drpo_model_n_params(m[k]);
        for (size_t i = 0; i < dim; i++)
            drpo_model_params(m[k])[i] = dyadic(&r, 160, 9);
        drpo_batch *a = make_batch(4, host_a[k], keys), *b = make_batch(4, host_b[k], keys);
        float want[MAXD], got[MAXD];
        cached_backward(m[k], a, b, 1, want);
        int nonzero = 0;
        for (size_t i = 0; i < dim; i++)
            nonzero |= want[i] != 0.0f;
        ck_assert(nonzero);
        for (int before = 0; before <= 2; before += 2) {
            cached_backward(m[k], a, b, before, got);
            ck_assert_msg(!memcmp(got, want, dim * sizeof *got),
                          "model %d: backward after %s differs from after its forward", k,
                          before ? "another batch's forward" : "no forward");
        }
        drpo_batch_free(a);
        drpo_batch_free(b);
        drpo_model_free(m[k]);
    }
}
END_TEST

Suite *suite_models(void)
{
    Suite *s = suite_create("models");
    TCase *tc = tcase_create("pairwise");
    tcase_add_test(tc, test_pairwise_gradients);
    tcase_add_test(tc, test_pairwise_general_floats);
    tcase_add_test(tc, test_pairwise_bad_inputs);
    suite_add_tcase(s, tc);
    tc = tcase_create("softmax");
    tcase_add_test(tc, test_softmax_policy);
    tcase_add_test(tc, test_softmax_bad_inputs);
    suite_add_tcase(s, tc);
    tc = tcase_create("cache");
    tcase_add_test(tc, test_builtin_forward_cache);
    suite_add_tcase(s, tc);
    tc = tcase_create("scores");
    tcase_add_test(tc, test_linear_scores);
    suite_add_tcase(s, tc);
    return s;
}

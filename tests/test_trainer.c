/* test_trainer.c - the robust step (issue 3): the gradient it uses against
 * finite differences of the batch robust value, the weights-only path and
 * gradient accumulation, optimisers and schedules against hand-computed
 * formulas, options, the convergence test and the diagnostics. */
#include "check_util.h"
#include "suites.h"
#include "test_model.h"

#include <math.h>
#include <string.h>

static drpo_trainer *make_trainer(drpo_model *m, drpo_objective *o)
{
    drpo_trainer *t = NULL;
    ck_assert_int_eq(drpo_trainer_create(&t, m, o), DRPO_OK);
    return t;
}

/* Unit losses and base weights of a batch at theta, as the design defines
 * them (mean of the unit's pairs; share of the batch's pairs). */
static size_t unit_losses(const tm_bt *m, const drpo_batch *b, const double *theta, double *ul,
                          double *base)
{
    size_t U = drpo_batch_units(b), n = drpo_batch_size(b), cnt[TM_MAX_PAIRS] = {0};
    for (size_t u = 0; u < U; u++)
        ul[u] = 0.0;
    for (size_t j = 0; j < n; j++) {
        size_t u = drpo_batch_unit_of(b, j);
        ul[u] += tm_bt_loss(m, theta, drpo_batch_host_index(b, j));
        cnt[u]++;
    }
    for (size_t u = 0; u < U; u++) {
        ul[u] /= (double)cnt[u];
        base[u] = (double)cnt[u] / (double)n;
    }
    return U;
}

static double robust_value(drpo_objective *o, const tm_bt *m, const drpo_batch *b,
                           const double *theta)
{
    double ul[TM_MAX_PAIRS], base[TM_MAX_PAIRS], v;
    size_t U = unit_losses(m, b, theta, ul, base);
    ck_assert_int_eq(drpo_objective_solve(o, U, ul, base, NULL, &v), DRPO_OK);
    return v;
}

/* ---- finite differences ------------------------------------------------- */

/* For every set and form and its representative parameters: the gradient
 * sum_j w_j dloss_j with the weights the step passes to backward equals the
 * central difference (h = 1e-5, double precision on the model) of the batch
 * robust value computed by drpo_objective_solve from unit losses; the
 * reported gradient norm and drpo_trainer_evaluate agree with it.
 * Tolerances: 2e-7 * max(1, |g|) per component (the central difference
 * error is ~1e-10 here; a wrong weight moves g by > 1e-3); float32 norms to
 * a relative 1e-6. */
START_TEST(test_finite_differences)
{
    const size_t d = 4, n = 30;
    tm_bt bt;
    tm_bt_init(&bt, d, n);
    tu_rng r;
    tu_rng_seed(&r, 2024);
    const double dir[4] = {1, -0.5, 0.25, 0.8};
    tm_bt_fill(&bt, &r, 0, n, dir, 1.0, DRPO_GROUP_NONE);
    drpo_batch *b = NULL;
    ck_assert_int_eq(drpo_batch_create(&b), DRPO_OK);
    for (size_t h = 0; h < n; h++) /* 7 units of 4 or 5 pairs, not contiguous */
        ck_assert_int_eq(drpo_batch_add_key(b, h % 7, DRPO_GROUP_NONE, (int64_t)h), DRPO_OK);
    const double hstep = 1e-5;
    size_t checked = 0;
    for (size_t f = 0; f < tu_nforms; f++) {
        double params[TU_MAXPARAMS];
        size_t np = tu_params(&tu_forms[f], params);
        for (size_t k = 0; k < np; k++) {
            drpo_model *model = tm_bt_model(&bt, NULL);
            drpo_objective *o = tm_objective(tu_forms[f].set, tu_forms[f].key, params[k],
                                             DRPO_MODE_EXACT, 0.1, 0, NULL);
            drpo_objective *ref = tm_objective(tu_forms[f].set, tu_forms[f].key, params[k],
                                               DRPO_MODE_EXACT, 0.1, 0, NULL);
            drpo_trainer *t = make_trainer(model, o);
            float *p = drpo_model_params(model);
            double theta[4], g[4] = {0}, fd[4];
            /* the unit losses must not (nearly) tie, or the value has a kink:
             * draw parameters until the closest two are 1e-3 apart */
            for (int tries = 0;; tries++) {
                ck_assert_int_lt(tries, 1000);
                for (size_t i = 0; i < d; i++)
                    p[i] = (float)(2.0 * tu_unif(&r) - 1.0);
                tm_params(model, theta);
                double ul[TM_MAX_PAIRS], base[TM_MAX_PAIRS], gap = INFINITY;
                size_t U = unit_losses(&bt, b, theta, ul, base);
                for (size_t u = 0; u < U; u++)
                    for (size_t v = u + 1; v < U; v++)
                        gap = fmin(gap, fabs(ul[u] - ul[v]));
                if (gap > 1e-3)
                    break;
            }
            for (size_t i = 0; i < d; i++) {
                double tp[4], tm_[4];
                memcpy(tp, theta, sizeof tp);
                memcpy(tm_, theta, sizeof tm_);
                tp[i] += hstep;
                tm_[i] -= hstep;
                fd[i] = (robust_value(ref, &bt, b, tp) - robust_value(ref, &bt, b, tm_)) /
                        (2.0 * hstep);
            }
            double value0 = robust_value(ref, &bt, b, theta);
            double ev_value, ev_norm;
            ck_assert_int_eq(drpo_trainer_evaluate(t, b, &ev_value, &ev_norm), DRPO_OK);
            ck_assert_int_eq(drpo_trainer_set(t, DRPO_TRAIN_LR, 1e-3), DRPO_OK);
            ck_assert_int_eq(drpo_trainer_step(t, b), DRPO_OK);
            ck_assert_uint_eq(bt.rec_n, n);
            double gn2 = 0.0;
            for (size_t j = 0; j < n; j++)
                tm_bt_add_grad(&bt, theta, (int64_t)j, bt.rec_w[j], g);
            for (size_t i = 0; i < d; i++) {
                gn2 += g[i] * g[i];
                double tol = 2e-7 * fmax(1.0, fabs(g[i]));
                ck_assert_msg(fabs(g[i] - fd[i]) <= tol,
                              "%s %g: component %zu: step's gradient %.12g, finite difference "
                              "%.12g",
                              tu_forms[f].name, params[k], i, g[i], fd[i]);
            }
            double gnorm, robust;
            ck_assert_int_eq(drpo_trainer_diag(t, DRPO_TDIAG_GRAD_NORM, &gnorm), DRPO_OK);
            ck_assert_int_eq(drpo_trainer_diag(t, DRPO_TDIAG_ROBUST, &robust), DRPO_OK);
            ck_assert_double_eq_tol(gnorm, sqrt(gn2), 1e-6 * fmax(1.0, sqrt(gn2)));
            ck_assert_double_eq_tol(ev_norm, sqrt(gn2), 1e-6 * fmax(1.0, sqrt(gn2)));
            ck_assert_double_eq_tol(robust, value0, 1e-12 * fmax(1.0, fabs(value0)));
            ck_assert_double_eq_tol(ev_value, value0, 1e-12 * fmax(1.0, fabs(value0)));
            checked++;
            drpo_trainer_free(t);
            drpo_objective_free(o);
            drpo_objective_free(ref);
            drpo_model_free(model);
        }
    }
    ck_assert_uint_ge(checked, 40);
    drpo_batch_free(b);
    tm_bt_free(&bt);
}
END_TEST

/* ---- weights only --------------------------------------------------------- */

typedef struct wcase {
    int32_t set, key;
    double param;
    int32_t mode, groups;
} wcase;

static const wcase wcases[] = {
    {DRPO_SET_CHI2, DRPO_PARAM_RADIUS, 0.5, DRPO_MODE_EXACT, 0},
    {DRPO_SET_TV, DRPO_PARAM_PENALTY, 0.3, DRPO_MODE_EXACT, 0},
    {DRPO_SET_KL, DRPO_PARAM_RADIUS, 0.2, DRPO_MODE_STOCHASTIC, 0},
    {DRPO_SET_KL, DRPO_PARAM_PENALTY, 0.5, DRPO_MODE_STOCHASTIC, 0},
    {DRPO_SET_CHI2, DRPO_PARAM_RADIUS, 0.5, DRPO_MODE_STOCHASTIC, 0},
    {DRPO_SET_CHI2, DRPO_PARAM_PENALTY, 0.5, DRPO_MODE_STOCHASTIC, 0},
    {DRPO_SET_CVAR, DRPO_PARAM_LEVEL, 0.3, DRPO_MODE_STOCHASTIC, 0},
    {DRPO_SET_KL, DRPO_PARAM_RADIUS, 0.1, DRPO_MODE_GROUP, 3},
    {DRPO_SET_NONE, 0, 0, DRPO_MODE_GROUP, 3},
};

static void random_batch(drpo_batch *b, const tm_bt *bt, tu_rng *r, size_t n, size_t per_unit)
{
    size_t idx[TM_MAX_PAIRS];
    for (size_t i = 0; i < n; i++)
        idx[i] = tu_below(r, bt->n_data);
    tm_batch_fill(b, bt, idx, n, per_unit);
}

static int same_bits(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

/* 120 points in 3 dimensions, 40 per group (groups only if the case has
 * them), each group with its own label sharpness. */
static void three_groups(tm_bt *bt, const wcase *c, tu_rng *r)
{
    const double dir[3] = {1, 0.5, -1};
    tm_bt_init(bt, 3, 120);
    for (int32_t g = 0; g < 3; g++)
        tm_bt_fill(bt, r, 40 * (size_t)g, 40 * (size_t)g + 40, dir, 1.0 + g,
                   c->groups ? g : DRPO_GROUP_NONE);
}

/* drpo_trainer_weights + drpo_trainer_commit on a model-less trainer, fed
 * the losses of the full-step trainer's current parameters, reproduce the
 * weights the step passes to backward, its robust value and the dual /
 * group-weight trajectory bitwise. */
START_TEST(test_weights_only_matches_step)
{
    const wcase *c = &wcases[_i];
    tm_bt bt;
    tu_rng r;
    tu_rng_seed(&r, 77 + (uint64_t)_i);
    three_groups(&bt, c, &r);
    drpo_model *model = tm_bt_model(&bt, NULL);
    drpo_objective *o1 = tm_objective(c->set, c->key, c->param, c->mode, 0.05, c->groups, NULL);
    drpo_objective *o2 = tm_objective(c->set, c->key, c->param, c->mode, 0.05, c->groups, NULL);
    drpo_trainer *full = make_trainer(model, o1), *wo = make_trainer(NULL, o2);
    ck_assert_int_eq(drpo_trainer_set(full, DRPO_TRAIN_LR, 0.1), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_commit(wo), DRPO_ERR_STATE); /* nothing staged */
    ck_assert_int_eq(drpo_trainer_step(wo, NULL), DRPO_ERR_NULL);
    drpo_batch *b = NULL;
    ck_assert_int_eq(drpo_batch_create(&b), DRPO_OK);
    for (int s = 0; s < 12; s++) {
        random_batch(b, &bt, &r, 24, 2);
        size_t n = drpo_batch_size(b);
        double theta[3], loss[TM_MAX_PAIRS], w[TM_MAX_PAIRS], value;
        tm_params(model, theta);
        for (size_t j = 0; j < n; j++)
            loss[j] = tm_bt_loss(&bt, theta, drpo_batch_host_index(b, j));
        if (s == 0)
            ck_assert_int_eq(drpo_trainer_step(wo, b), DRPO_ERR_STATE); /* no model */
        ck_assert_int_eq(drpo_trainer_weights(wo, b, loss, w, &value), DRPO_OK);
        ck_assert_int_eq(drpo_trainer_step(full, b), DRPO_OK);
        ck_assert_int_eq(drpo_trainer_commit(wo), DRPO_OK);
        ck_assert_int_eq(drpo_trainer_commit(wo), DRPO_ERR_STATE); /* committed once */
        for (size_t j = 0; j < n; j++)
            ck_assert_msg(same_bits(w[j], bt.rec_w[j]), "step %d pair %zu: %.17g vs %.17g", s, j,
                          w[j], bt.rec_w[j]);
        static const int32_t keys[] = {DRPO_TDIAG_ROBUST, DRPO_TDIAG_ETA, DRPO_TDIAG_LAMBDA,
                                       DRPO_TDIAG_ESS, DRPO_TDIAG_STEPS};
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
            double a, bb;
            drpo_status sa = drpo_trainer_diag(full, keys[k], &a);
            ck_assert_int_eq(sa, drpo_trainer_diag(wo, keys[k], &bb));
            if (sa == DRPO_OK)
                ck_assert_msg(same_bits(a, bb), "step %d diag %d: %.17g vs %.17g", s,
                              (int)keys[k], a, bb);
        }
        double robust;
        ck_assert_int_eq(drpo_trainer_diag(full, DRPO_TDIAG_ROBUST, &robust), DRPO_OK);
        ck_assert(same_bits(robust, value));
        for (int32_t g = 0; g < c->groups; g++) {
            double a, bb;
            ck_assert_int_eq(drpo_trainer_group_diag(full, g, DRPO_GDIAG_WEIGHT, &a), DRPO_OK);
            ck_assert_int_eq(drpo_trainer_group_diag(wo, g, DRPO_GDIAG_WEIGHT, &bb), DRPO_OK);
            ck_assert(same_bits(a, bb));
        }
    }
    /* a failed weights call stages nothing */
    double nanloss[TM_MAX_PAIRS];
    for (size_t j = 0; j < drpo_batch_size(b); j++)
        nanloss[j] = j == 3 ? NAN : 1.0;
    ck_assert_int_eq(drpo_trainer_weights(wo, b, nanloss, NULL, NULL), DRPO_ERR_NONFINITE);
    ck_assert_int_eq(drpo_trainer_commit(wo), DRPO_ERR_STATE);
    drpo_trainer_free(full);
    drpo_trainer_free(wo);
    drpo_objective_free(o1);
    drpo_objective_free(o2);
    drpo_model_free(model);
    drpo_batch_free(b);
    tm_bt_free(&bt);
}
END_TEST

/* Gradient accumulation: one batch made of two micro-batches (losses of each
 * computed separately, prompts shared across them) gives the weights of the
 * same pairs sent as one batch in another order (per pair, to 1e-13
 * relative; the sums only change order). */
START_TEST(test_gradient_accumulation)
{
    const wcase *c = &wcases[_i];
    tm_bt bt;
    tu_rng r;
    tu_rng_seed(&r, 5 + (uint64_t)_i);
    three_groups(&bt, c, &r);
    drpo_objective *o1 = tm_objective(c->set, c->key, c->param, c->mode, 0.05, c->groups, NULL);
    drpo_objective *o2 = tm_objective(c->set, c->key, c->param, c->mode, 0.05, c->groups, NULL);
    drpo_trainer *acc = make_trainer(NULL, o1), *one = make_trainer(NULL, o2);
    drpo_batch *micro = NULL, *whole = NULL, *single = NULL;
    ck_assert_int_eq(drpo_batch_create(&micro), DRPO_OK);
    ck_assert_int_eq(drpo_batch_create(&whole), DRPO_OK);
    ck_assert_int_eq(drpo_batch_create(&single), DRPO_OK);
    const double theta[3] = {0.2, 0.1, -0.3};
    for (int s = 0; s < 5; s++) {
        size_t idx[40];
        for (size_t i = 0; i < 40; i++)
            idx[i] = tu_below(&r, 120);
        /* micro-batches: even and odd positions; prompts (idx / 3) overlap */
        double loss_whole[40], loss_single[40], w_whole[40], w_single[40], v1, v2;
        size_t k = 0;
        drpo_batch_clear(whole);
        for (int half = 0; half < 2; half++) {
            size_t part[20];
            for (size_t i = 0; i < 20; i++)
                part[i] = idx[2 * i + (size_t)half];
            tm_batch_fill(micro, &bt, part, 20, 3); /* the host's micro-batch forward */
            for (size_t j = 0; j < 20; j++) {
                int64_t h = drpo_batch_host_index(micro, j);
                loss_whole[k++] = tm_bt_loss(&bt, theta, h);
                ck_assert_int_eq(drpo_batch_add_key(whole, (uint64_t)h / 3, bt.group[h], h),
                                 DRPO_OK);
            }
        }
        tm_batch_fill(single, &bt, idx, 40, 3);
        for (size_t j = 0; j < 40; j++)
            loss_single[j] = tm_bt_loss(&bt, theta, drpo_batch_host_index(single, j));
        ck_assert_int_eq(drpo_trainer_weights(acc, whole, loss_whole, w_whole, &v1), DRPO_OK);
        ck_assert_int_eq(drpo_trainer_weights(one, single, loss_single, w_single, &v2), DRPO_OK);
        ck_assert_int_eq(drpo_trainer_commit(acc), DRPO_OK);
        ck_assert_int_eq(drpo_trainer_commit(one), DRPO_OK);
        ck_assert_double_eq_tol(v1, v2, 1e-13 * fmax(1.0, fabs(v2)));
        for (size_t j = 0; j < 40; j++) { /* pair j of `single` is idx[j]: in whole at ... */
            size_t pos = (j % 2) * 20 + j / 2;
            ck_assert_int_eq(drpo_batch_host_index(whole, pos), (int64_t)idx[j]);
            ck_assert_double_eq_tol(w_whole[pos], w_single[j], 1e-13 * fmax(1e-3, w_single[j]));
        }
    }
    drpo_trainer_free(acc);
    drpo_trainer_free(one);
    drpo_objective_free(o1);
    drpo_objective_free(o2);
    drpo_batch_free(micro);
    drpo_batch_free(whole);
    drpo_batch_free(single);
    tm_bt_free(&bt);
}
END_TEST

/* Step errors, each leaving the parameters and step count as they were:
 * group mode without groups (at creation), a set without its parameter, a
 * group id >= G, a pair without a group in group mode, group mode with a
 * penalty form, an empty batch, NULL arguments. */
START_TEST(test_step_errors)
{
    tm_bt bt;
    tu_rng r;
    tu_rng_seed(&r, 3);
    three_groups(&bt, &wcases[7], &r);
    drpo_model *model = tm_bt_model(&bt, NULL);
    drpo_batch *b = NULL;
    ck_assert_int_eq(drpo_batch_create(&b), DRPO_OK);
    drpo_trainer *t = NULL;
    drpo_objective *o = tm_objective(DRPO_SET_KL, DRPO_PARAM_RADIUS, 0.1, DRPO_MODE_GROUP, 0.1, 0,
                                     NULL);
    ck_assert_int_eq(drpo_trainer_create(&t, model, o), DRPO_ERR_STATE);
    ck_assert_ptr_null(t);
    ck_assert_int_eq(drpo_trainer_create(&t, model, NULL), DRPO_ERR_NULL);
    ck_assert_int_eq(drpo_trainer_create(NULL, model, o), DRPO_ERR_NULL);
    drpo_objective_free(o);
    static const struct {
        int32_t set, key, mode, groups;
        size_t from, to;
        drpo_status want;
    } cases[] = {
        {DRPO_SET_CHI2, 0, DRPO_MODE_EXACT, 0, 0, 20, DRPO_ERR_PARAM_UNSET},
        {DRPO_SET_CHI2, DRPO_PARAM_RADIUS, DRPO_MODE_EXACT, 2, 60, 100, DRPO_ERR_PARAM_RANGE},
        {DRPO_SET_CHI2, DRPO_PARAM_PENALTY, DRPO_MODE_GROUP, 3, 0, 100, DRPO_ERR_STATE},
        {DRPO_SET_CHI2, DRPO_PARAM_RADIUS, DRPO_MODE_GROUP, 3, 0, 0, DRPO_ERR_SIZE},
        {DRPO_SET_CHI2, DRPO_PARAM_RADIUS, DRPO_MODE_GROUP, 3, 0, 10, DRPO_ERR_PARAM_RANGE},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        o = tm_objective(cases[k].set, cases[k].key, 0.5, cases[k].mode, 0.1, cases[k].groups,
                         NULL);
        ck_assert_int_eq(drpo_trainer_create(&t, model, o), DRPO_OK);
        tm_batch_range(b, &bt, cases[k].from, cases[k].to, 2);
        if (k == 4) /* a pair without a group */
            ck_assert_int_eq(drpo_batch_add_key(b, 999, DRPO_GROUP_NONE, 0), DRPO_OK);
        float before[3];
        memcpy(before, drpo_model_params(model), sizeof before);
        ck_assert_int_eq(drpo_trainer_step(t, b), cases[k].want);
        ck_assert_int_eq(memcmp(before, drpo_model_params(model), sizeof before), 0);
        double v;
        ck_assert_int_eq(drpo_trainer_diag(t, DRPO_TDIAG_STEPS, &v), DRPO_OK);
        ck_assert(v == 0);
        ck_assert_str_ne(drpo_trainer_last_error(t), "");
        ck_assert_int_eq(drpo_trainer_step(t, NULL), DRPO_ERR_NULL);
        ck_assert_int_eq(drpo_trainer_step(NULL, b), DRPO_ERR_NULL);
        drpo_trainer_free(t);
        drpo_objective_free(o);
    }
    drpo_trainer_free(NULL);
    drpo_model_free(model);
    drpo_batch_free(b);
    tm_bt_free(&bt);
}
END_TEST

/* drpo_trainer_evaluate changes no state: between drpo_trainer_weights and
 * drpo_trainer_commit it must not discard or alter what was staged. */
START_TEST(test_evaluate_keeps_staged_weights)
{
    const wcase *c = &wcases[7]; /* group mode */
    tm_bt bt;
    tu_rng r;
    tu_rng_seed(&r, 8);
    three_groups(&bt, c, &r);
    drpo_model *model = tm_bt_model(&bt, NULL);
    drpo_objective *o = tm_objective(c->set, c->key, c->param, c->mode, 0.05, c->groups, NULL);
    drpo_trainer *t = make_trainer(model, o);
    drpo_batch *b = NULL, *full = NULL;
    ck_assert_int_eq(drpo_batch_create(&b), DRPO_OK);
    ck_assert_int_eq(drpo_batch_create(&full), DRPO_OK);
    tm_batch_range(b, &bt, 30, 60, 2);
    tm_batch_range(full, &bt, 0, 120, 2);
    double loss[30], theta[3], v;
    tm_params(model, theta);
    for (size_t j = 0; j < 30; j++)
        loss[j] = tm_bt_loss(&bt, theta, drpo_batch_host_index(b, j));
    ck_assert_int_eq(drpo_trainer_weights(t, b, loss, NULL, NULL), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_evaluate(t, full, &v, NULL), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_commit(t), DRPO_OK);
    double pairs;
    ck_assert_int_eq(drpo_trainer_group_diag(t, 1, DRPO_GDIAG_PAIRS, &pairs), DRPO_OK);
    ck_assert(pairs == 20); /* the committed batch's (points 40..59), not the evaluated one's (40) */
    drpo_trainer_free(t);
    drpo_objective_free(o);
    drpo_model_free(model);
    drpo_batch_free(b);
    drpo_batch_free(full);
    tm_bt_free(&bt);
}
END_TEST

/* ---- optimisers: a model whose gradient the test prescribes ------------ */

/* 19 parameters: the library's 8-wide loops run twice, then its scalar tail
 * (3 elements), so both paths of the update meet the reference formulas */
#define OD 19
typedef struct fixed_model {
    double g[3][OD]; /* the gradient of call k is g[k % 3] (times the weights' sum) */
    long calls;
} fixed_model;

static int fixed_forward(void *user, const float *params, const drpo_batch *b, double *loss)
{
    (void)user;
    (void)params;
    for (size_t j = 0; j < drpo_batch_size(b); j++)
        loss[j] = 1.0 + 0.125 * (double)j; /* constant: the robust value never moves */
    return 0;
}

static int fixed_backward(void *user, const float *params, const drpo_batch *b, const double *w,
                          float *grad)
{
    fixed_model *f = user;
    (void)params;
    double sw = 0.0;
    for (size_t j = 0; j < drpo_batch_size(b); j++)
        sw += w[j];
    const double *g = f->g[f->calls++ % 3];
    for (size_t i = 0; i < OD; i++)
        grad[i] = (float)(g[i] * sw);
    return 0;
}

typedef struct fixed_setup {
    fixed_model fm;
    drpo_model *model;
    drpo_objective *obj;
    drpo_trainer *t;
    drpo_batch *b;
} fixed_setup;

static const float theta0[OD] = {0.5f,   -1.0f,  2.0f,    0.0f,    0.25f, -0.75f, 1.25f,
                                 -2.5f,  0.125f, 3.0f,    -0.5f,   1.0f,  -1.5f,  0.0625f,
                                 0.75f,  -0.25f, 1.75f,   -3.0f,   0.375f};

static void fixed_open(fixed_setup *s)
{
    static const double g[3][OD] = {
        {0.3, -0.2, 1.5, 0.0, 0.05, -0.6, 0.9, 0.0, -1.1, 0.4, 0.2, -0.3, 0.8, 1e-4, -0.05, 0.6,
         -0.7, 0.25, -0.15},
        {-0.1, -0.4, 0.5, 2.0, 0.3, 0.0, -0.2, 0.7, 0.1, -0.9, 0.35, 0.45, -0.05, 0.2, -0.6, 0.0,
         0.15, -0.25, 0.5},
        {0.7, 0.1, -1.0, -0.5, -0.3, 0.2, 0.0, -0.4, 0.6, 0.05, -0.8, 0.1, 0.3, -0.2, 0.9, -0.1,
         0.0, 0.4, -0.6}};
    memset(s, 0, sizeof *s);
    memcpy(s->fm.g, g, sizeof g);
    drpo_model_callbacks cb;
    memset(&cb, 0, sizeof cb);
    cb.struct_size = sizeof cb;
    cb.forward = fixed_forward;
    cb.backward = fixed_backward;
    ck_assert_int_eq(drpo_model_create(&s->model, OD, &cb, &s->fm), DRPO_OK);
    memcpy(drpo_model_params(s->model), theta0, sizeof theta0);
    s->obj = tm_objective(DRPO_SET_NONE, 0, 0, DRPO_MODE_EXACT, 0.1, 0, NULL);
    s->t = make_trainer(s->model, s->obj);
    ck_assert_int_eq(drpo_batch_create(&s->b), DRPO_OK);
    for (uint64_t j = 0; j < 5; j++)
        ck_assert_int_eq(drpo_batch_add_key(s->b, j / 2, DRPO_GROUP_NONE, (int64_t)j), DRPO_OK);
}

static void fixed_close(fixed_setup *s)
{
    drpo_trainer_free(s->t);
    drpo_objective_free(s->obj);
    drpo_model_free(s->model);
    drpo_batch_free(s->b);
}

enum { REF_SGD, REF_MOMENTUM, REF_NESTEROV, REF_ADAMW };

/* Three steps of each optimiser (PyTorch semantics) against the formulas
 * computed here in double: SGD theta -= lr g; momentum b = mu b + g,
 * theta -= lr b; Nesterov theta -= lr (g + mu b); AdamW theta *= 1 - lr wd,
 * m = b1 m + (1-b1) g, v = b2 v + (1-b2) g^2, theta -= lr (m/(1-b1^t)) /
 * (sqrt(v/(1-b2^t)) + eps).  SGD decay is decoupled too (the library's
 * documented choice).  Tolerance 2e-6 (float32 state). */
START_TEST(test_optimisers)
{
    const int kind = _i;
    const double lr = 0.1, mu = 0.8, b1 = 0.7, b2 = 0.9, eps = 1e-3, wd = 0.05;
    fixed_setup s;
    fixed_open(&s);
    int32_t opt = kind == REF_SGD ? DRPO_OPT_SGD : kind == REF_ADAMW ? DRPO_OPT_ADAMW
                                                                     : DRPO_OPT_MOMENTUM;
    ck_assert_int_eq(drpo_trainer_set(s.t, DRPO_TRAIN_OPTIMIZER, opt), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_set(s.t, DRPO_TRAIN_LR, lr), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_set(s.t, DRPO_TRAIN_MOMENTUM, mu), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_set(s.t, DRPO_TRAIN_NESTEROV, kind == REF_NESTEROV), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_set(s.t, DRPO_TRAIN_BETA1, b1), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_set(s.t, DRPO_TRAIN_BETA2, b2), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_set(s.t, DRPO_TRAIN_EPS, eps), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_set(s.t, DRPO_TRAIN_WEIGHT_DECAY, wd), DRPO_OK);
    double th[OD], m[OD] = {0}, v[OD] = {0};
    for (size_t i = 0; i < OD; i++)
        th[i] = theta0[i];
    for (int step = 1; step <= 3; step++) {
        ck_assert_int_eq(drpo_trainer_step(s.t, s.b), DRPO_OK);
        const double *g = s.fm.g[step - 1];
        for (size_t i = 0; i < OD; i++) {
            th[i] *= 1.0 - lr * wd;
            switch (kind) {
            case REF_SGD: th[i] -= lr * g[i]; break;
            case REF_MOMENTUM:
                m[i] = mu * m[i] + g[i];
                th[i] -= lr * m[i];
                break;
            case REF_NESTEROV:
                m[i] = mu * m[i] + g[i];
                th[i] -= lr * (g[i] + mu * m[i]);
                break;
            default:
                m[i] = b1 * m[i] + (1 - b1) * g[i];
                v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
                th[i] -= lr * (m[i] / (1 - pow(b1, step))) / (sqrt(v[i] / (1 - pow(b2, step))) + eps);
                break;
            }
        }
        const float *p = drpo_model_params(s.model);
        for (size_t i = 0; i < OD; i++)
            ck_assert_msg(fabs(p[i] - th[i]) <= 2e-6, "optimiser %d step %d param %zu: %.9g vs %.9g",
                          kind, step, i, (double)p[i], th[i]);
    }
    /* the optimiser cannot change once training has started */
    ck_assert_int_eq(drpo_trainer_set(s.t, DRPO_TRAIN_OPTIMIZER, (opt + 1) % 3), DRPO_ERR_STATE);
    fixed_close(&s);
}
END_TEST

/* Clipping scales the gradient to the clip norm (GRAD_NORM reports the norm
 * before clipping); a gradient below the threshold is untouched. */
START_TEST(test_clipping)
{
    fixed_setup s;
    fixed_open(&s);
    ck_assert_int_eq(drpo_trainer_set(s.t, DRPO_TRAIN_LR, 1.0), DRPO_OK);
    const double *g = s.fm.g[0];
    double gn = 0.0;
    for (size_t i = 0; i < OD; i++)
        gn += g[i] * g[i];
    gn = sqrt(gn);
    ck_assert_int_eq(drpo_trainer_set(s.t, DRPO_TRAIN_CLIP_NORM, 0.5), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_step(s.t, s.b), DRPO_OK);
    double v;
    const float *p = drpo_model_params(s.model);
    for (size_t i = 0; i < OD; i++)
        ck_assert_double_eq_tol(p[i], theta0[i] - g[i] * 0.5 / gn, 1e-6);
    ck_assert_int_eq(drpo_trainer_diag(s.t, DRPO_TDIAG_GRAD_NORM, &v), DRPO_OK);
    ck_assert_double_eq_tol(v, gn, 1e-6);
    ck_assert_int_eq(drpo_trainer_diag(s.t, DRPO_TDIAG_UPDATE_NORM, &v), DRPO_OK);
    ck_assert_double_eq_tol(v, 0.5, 1e-6);
    /* the second gradient has norm ~2.6 < 10: no clipping */
    float before[OD];
    memcpy(before, p, sizeof before);
    ck_assert_int_eq(drpo_trainer_set(s.t, DRPO_TRAIN_CLIP_NORM, 10.0), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_step(s.t, s.b), DRPO_OK);
    for (size_t i = 0; i < OD; i++)
        ck_assert_double_eq_tol(p[i], before[i] - s.fm.g[1][i], 1e-6);
    fixed_close(&s);
}
END_TEST

/* Warm-up and cosine learning rates, step by step (DRPO_TDIAG_LR and the
 * SGD update agree with the formula). */
START_TEST(test_schedules)
{
    const double lr = 0.2;
    for (int sched = DRPO_SCHED_CONSTANT; sched <= DRPO_SCHED_COSINE; sched++) {
        fixed_setup s;
        fixed_open(&s);
        const double warm = 3, total = 10, minf = 0.1;
        ck_assert_int_eq(drpo_trainer_set(s.t, DRPO_TRAIN_LR, lr), DRPO_OK);
        ck_assert_int_eq(drpo_trainer_set(s.t, DRPO_TRAIN_SCHEDULE, sched), DRPO_OK);
        ck_assert_int_eq(drpo_trainer_set(s.t, DRPO_TRAIN_WARMUP, warm), DRPO_OK);
        if (sched == DRPO_SCHED_COSINE) { /* needs total steps > warm-up */
            ck_assert_int_eq(drpo_trainer_step(s.t, s.b), DRPO_ERR_PARAM_RANGE);
            ck_assert_int_eq(memcmp(drpo_model_params(s.model), theta0, sizeof theta0), 0);
        }
        ck_assert_int_eq(drpo_trainer_set(s.t, DRPO_TRAIN_TOTAL_STEPS, total), DRPO_OK);
        ck_assert_int_eq(drpo_trainer_set(s.t, DRPO_TRAIN_MIN_LR, minf), DRPO_OK);
        for (int k = 0; k < 14; k++) {
            double want = lr;
            if (sched != DRPO_SCHED_CONSTANT && k < warm)
                want = lr * (k + 1) / warm;
            else if (sched == DRPO_SCHED_COSINE) {
                double prog = fmin(1.0, (k - warm) / (total - warm));
                want = lr * (minf + (1 - minf) * 0.5 * (1 + cos(3.14159265358979323846 * prog)));
            }
            float before[OD];
            memcpy(before, drpo_model_params(s.model), sizeof before);
            ck_assert_int_eq(drpo_trainer_step(s.t, s.b), DRPO_OK);
            double got;
            ck_assert_int_eq(drpo_trainer_diag(s.t, DRPO_TDIAG_LR, &got), DRPO_OK);
            ck_assert_msg(fabs(got - want) <= 1e-15, "schedule %d step %d: lr %.17g, want %.17g",
                          sched, k, got, want);
            const double *g = s.fm.g[k % 3];
            for (size_t i = 0; i < OD; i++)
                ck_assert_double_eq_tol(drpo_model_params(s.model)[i], before[i] - want * g[i],
                                        2e-6);
        }
        fixed_close(&s);
    }
}
END_TEST

/* Out-of-range values give DRPO_ERR_PARAM_RANGE and change nothing; unknown
 * keys give DRPO_ERR_KEY; defaults as documented. */
START_TEST(test_option_ranges)
{
    fixed_setup s;
    fixed_open(&s);
    static const struct {
        int32_t key;
        double bad[4];
        size_t nbad;
        double def;
    } cases[] = {
        {DRPO_TRAIN_OPTIMIZER, {-1, 3, 0.5, NAN}, 4, DRPO_OPT_SGD},
        {DRPO_TRAIN_LR, {0, -1, INFINITY, NAN}, 4, 1e-3},
        {DRPO_TRAIN_MOMENTUM, {-0.1, 1, 2, NAN}, 4, 0.9},
        {DRPO_TRAIN_NESTEROV, {-1, 2, 0.5, NAN}, 4, 0},
        {DRPO_TRAIN_BETA1, {-0.1, 1, NAN, 0}, 3, 0.9},
        {DRPO_TRAIN_BETA2, {-0.1, 1, NAN, 0}, 3, 0.999},
        {DRPO_TRAIN_EPS, {0, -1, INFINITY, NAN}, 4, 1e-8},
        {DRPO_TRAIN_WEIGHT_DECAY, {-1e-9, INFINITY, NAN, 0}, 3, 0},
        {DRPO_TRAIN_CLIP_NORM, {-1, INFINITY, NAN, 0}, 3, 0},
        {DRPO_TRAIN_SCHEDULE, {-1, 3, 1.5, NAN}, 4, DRPO_SCHED_CONSTANT},
        {DRPO_TRAIN_WARMUP, {-1, 2.5, INFINITY, NAN}, 4, 0},
        {DRPO_TRAIN_TOTAL_STEPS, {-1, 0.5, INFINITY, NAN}, 4, 0},
        {DRPO_TRAIN_MIN_LR, {-0.1, 1.1, NAN, 0}, 3, 0},
        {DRPO_TRAIN_GRAD_TOL, {-1, INFINITY, NAN, 0}, 3, 1e-6},
        {DRPO_TRAIN_REL_TOL, {-1, INFINITY, NAN, 0}, 3, 1e-6},
        {DRPO_TRAIN_WINDOW, {0, 1025, 2.5, NAN}, 4, 10},
        {DRPO_TRAIN_MAX_STEPS, {-1, 1.5, INFINITY, NAN}, 4, 0},
        {DRPO_TRAIN_SMOOTHING, {-0.1, 1, NAN, 2}, 3, 0.9},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        double v;
        ck_assert_int_eq(drpo_trainer_get(s.t, cases[c].key, &v), DRPO_OK);
        ck_assert_msg(v == cases[c].def, "key %d default %g", (int)cases[c].key, v);
        for (size_t k = 0; k < cases[c].nbad; k++) {
            ck_assert_msg(drpo_trainer_set(s.t, cases[c].key, cases[c].bad[k]) ==
                              DRPO_ERR_PARAM_RANGE,
                          "key %d accepts %g", (int)cases[c].key, cases[c].bad[k]);
            ck_assert_int_eq(drpo_trainer_get(s.t, cases[c].key, &v), DRPO_OK);
            ck_assert(v == cases[c].def);
        }
        ck_assert_str_ne(drpo_trainer_last_error(s.t), "");
    }
    /* boundaries that are allowed */
    ck_assert_int_eq(drpo_trainer_set(s.t, DRPO_TRAIN_WINDOW, 1024), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_set(s.t, DRPO_TRAIN_MOMENTUM, 0), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_set(s.t, DRPO_TRAIN_MIN_LR, 1), DRPO_OK);
    double v;
    ck_assert_int_eq(drpo_trainer_set(s.t, 0, 1), DRPO_ERR_KEY);
    ck_assert_int_eq(drpo_trainer_set(s.t, DRPO_TRAIN_SMOOTHING + 1, 0.5), DRPO_ERR_KEY);
    ck_assert_int_eq(drpo_trainer_get(s.t, -3, &v), DRPO_ERR_KEY);
    ck_assert_int_eq(drpo_trainer_get(s.t, DRPO_TRAIN_SMOOTHING + 1, &v), DRPO_ERR_KEY);
    ck_assert_int_eq(drpo_trainer_set(NULL, DRPO_TRAIN_LR, 1), DRPO_ERR_NULL);
    ck_assert_int_eq(drpo_trainer_get(s.t, DRPO_TRAIN_LR, NULL), DRPO_ERR_NULL);
    ck_assert_int_eq(drpo_trainer_diag(s.t, 0, &v), DRPO_ERR_KEY);
    ck_assert_int_eq(drpo_trainer_diag(s.t, DRPO_TDIAG_ROBUST, &v), DRPO_ERR_NO_SOLUTION);
    fixed_close(&s);
}
END_TEST

/* ---- the convergence test ------------------------------------------------- */

static int stop_after(void *user, const drpo_trainer *t)
{
    double steps;
    drpo_trainer_diag(t, DRPO_TDIAG_STEPS, &steps);
    return steps >= *(const double *)user;
}

static drpo_status test_by(drpo_trainer *t, double *by)
{
    drpo_status st = drpo_trainer_test(t);
    ck_assert_int_eq(drpo_trainer_diag(t, DRPO_TDIAG_CONVERGED_BY, by), DRPO_OK);
    return st;
}

START_TEST(test_convergence)
{
    double by;
    /* step limit: losses constant but the window test is off (REL_TOL 0 is
     * still met by an exactly constant objective, so use a moving one) */
    fixed_setup s;
    fixed_open(&s);
    ck_assert_int_eq(drpo_trainer_set(s.t, DRPO_TRAIN_GRAD_TOL, 0), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_set(s.t, DRPO_TRAIN_MAX_STEPS, 3), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_set(s.t, DRPO_TRAIN_WINDOW, 5), DRPO_OK);
    ck_assert_int_eq(test_by(s.t, &by), DRPO_CONTINUE);
    ck_assert(by == 0);
    for (int k = 1; k <= 3; k++) {
        ck_assert_int_eq(drpo_trainer_step(s.t, s.b), DRPO_OK);
        ck_assert_int_eq(test_by(s.t, &by), k < 3 ? DRPO_CONTINUE : DRPO_CONVERGED);
        ck_assert(by == (k < 3 ? 0 : 3));
    }
    /* objective window: the constant objective converges once the history
     * spans the window (5 steps -> after the 6th) */
    ck_assert_int_eq(drpo_trainer_set(s.t, DRPO_TRAIN_MAX_STEPS, 0), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_set(s.t, DRPO_TRAIN_REL_TOL, 1e-12), DRPO_OK);
    ck_assert_int_eq(test_by(s.t, &by), DRPO_CONTINUE);
    for (int k = 4; k <= 6; k++) {
        ck_assert_int_eq(drpo_trainer_step(s.t, s.b), DRPO_OK);
        ck_assert_int_eq(test_by(s.t, &by), k < 6 ? DRPO_CONTINUE : DRPO_CONVERGED);
        ck_assert(by == (k < 6 ? 0 : 2));
    }
    /* a progress callback stops training */
    double limit = 7;
    ck_assert_int_eq(drpo_trainer_set_progress(s.t, stop_after, &limit), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_set(s.t, DRPO_TRAIN_REL_TOL, 0), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_set(s.t, DRPO_TRAIN_WINDOW, 1024), DRPO_OK);
    ck_assert_int_eq(test_by(s.t, &by), DRPO_CONTINUE);
    ck_assert_int_eq(drpo_trainer_step(s.t, s.b), DRPO_OK);
    ck_assert_int_eq(test_by(s.t, &by), DRPO_STOPPED);
    ck_assert(by == 4);
    ck_assert_int_eq(drpo_trainer_set_progress(s.t, NULL, NULL), DRPO_OK);
    fixed_close(&s);

    /* gradient: ||g|| <= tol * max(1, ||theta||), on a model that learns */
    tm_bt bt;
    tm_bt_init(&bt, 3, 50);
    tu_rng r;
    tu_rng_seed(&r, 9);
    const double dir[3] = {1, 1, 0};
    tm_bt_fill(&bt, &r, 0, 50, dir, 1.0, DRPO_GROUP_NONE);
    drpo_model *model = tm_bt_model(&bt, NULL);
    drpo_objective *o = tm_objective(DRPO_SET_KL, DRPO_PARAM_PENALTY, 1.0, DRPO_MODE_EXACT, 0.1, 0,
                                     NULL);
    drpo_trainer *t = make_trainer(model, o);
    drpo_batch *b = NULL;
    ck_assert_int_eq(drpo_batch_create(&b), DRPO_OK);
    tm_batch_range(b, &bt, 0, 50, 1);
    ck_assert_int_eq(drpo_trainer_set(t, DRPO_TRAIN_LR, 0.5), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_set(t, DRPO_TRAIN_REL_TOL, 0), DRPO_OK);
    for (int k = 0; k < 3; k++)
        ck_assert_int_eq(drpo_trainer_step(t, b), DRPO_OK);
    double gn, pn;
    ck_assert_int_eq(drpo_trainer_diag(t, DRPO_TDIAG_GRAD_NORM, &gn), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_diag(t, DRPO_TDIAG_PARAM_NORM, &pn), DRPO_OK);
    ck_assert_double_gt(gn, 0);
    ck_assert_int_eq(drpo_trainer_set(t, DRPO_TRAIN_GRAD_TOL, 0.99 * gn / fmax(1.0, pn)), DRPO_OK);
    ck_assert_int_eq(test_by(t, &by), DRPO_CONTINUE);
    ck_assert_int_eq(drpo_trainer_set(t, DRPO_TRAIN_GRAD_TOL, 1.01 * gn / fmax(1.0, pn)), DRPO_OK);
    ck_assert_int_eq(test_by(t, &by), DRPO_CONVERGED);
    ck_assert(by == 1);
    ck_assert_int_eq(drpo_trainer_test(NULL), DRPO_ERR_NULL);
    drpo_trainer_free(t);
    drpo_objective_free(o);
    drpo_model_free(model);
    drpo_batch_free(b);
    tm_bt_free(&bt);
}
END_TEST

/* ---- diagnostics ------------------------------------------------------------ */

/* After an exact step, every diagnostic recomputed from its definition: the
 * robust value and duals of the same solve, mean pair loss, ESS, max weight
 * and divergence of the unit weights (from the recorded pair weights), the
 * gradient, update and parameter norms, and per-group mean loss, weight
 * share and pair count. */
START_TEST(test_diagnostics)
{
    const size_t d = 3, n = 36, G = 3;
    tm_bt bt;
    tm_bt_init(&bt, d, n);
    tu_rng r;
    tu_rng_seed(&r, 31);
    const double dir[3] = {1, -1, 0.5};
    tm_bt_fill(&bt, &r, 0, 24, dir, 1.0, 0);
    tm_bt_fill(&bt, &r, 24, 30, dir, 1.0, 2);
    tm_bt_fill(&bt, &r, 30, 36, dir, 1.0, DRPO_GROUP_NONE);
    drpo_model *model = tm_bt_model(&bt, NULL);
    drpo_objective *o = tm_objective(DRPO_SET_CHI2, DRPO_PARAM_RADIUS, 0.4, DRPO_MODE_EXACT, 0.1,
                                     (int32_t)G, NULL);
    drpo_objective *ref = tm_objective(DRPO_SET_CHI2, DRPO_PARAM_RADIUS, 0.4, DRPO_MODE_EXACT,
                                       0.1, 0, NULL);
    drpo_trainer *t = make_trainer(model, o);
    ck_assert_int_eq(drpo_trainer_set(t, DRPO_TRAIN_LR, 0.3), DRPO_OK);
    float *p = drpo_model_params(model);
    p[0] = 0.3f;
    p[1] = -0.2f;
    p[2] = 0.1f;
    drpo_batch *b = NULL;
    ck_assert_int_eq(drpo_batch_create(&b), DRPO_OK);
    tm_batch_range(b, &bt, 0, n, 4);
    double theta[3], ul[TM_MAX_PAIRS], base[TM_MAX_PAIRS], q[TM_MAX_PAIRS], value, eta, lambda;
    tm_params(model, theta);
    size_t U = unit_losses(&bt, b, theta, ul, base);
    ck_assert_int_eq(drpo_objective_solve(ref, U, ul, base, q, &value), DRPO_OK);
    ck_assert_int_eq(drpo_objective_diag(ref, DRPO_DIAG_ETA, &eta), DRPO_OK);
    ck_assert_int_eq(drpo_objective_diag(ref, DRPO_DIAG_LAMBDA, &lambda), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_step(t, b), DRPO_OK);
    double v;
#define DIAG(key, want, tol)                                                            \
    do {                                                                                \
        ck_assert_int_eq(drpo_trainer_diag(t, key, &v), DRPO_OK);                       \
        ck_assert_msg(fabs(v - (want)) <= (tol), #key ": %.17g, want %.17g", v, (double)(want)); \
    } while (0)
    DIAG(DRPO_TDIAG_ROBUST, value, 1e-12);
    DIAG(DRPO_TDIAG_ETA, eta, 1e-12);
    DIAG(DRPO_TDIAG_LAMBDA, lambda, 1e-12);
    DIAG(DRPO_TDIAG_MEAN_LOSS, tm_bt_mean_loss(&bt, theta, 0, n), 1e-12);
    DIAG(DRPO_TDIAG_UNITS, (double)U, 0);
    DIAG(DRPO_TDIAG_STEPS, 1, 0);
    DIAG(DRPO_TDIAG_LR, 0.3, 0);
    DIAG(DRPO_TDIAG_SMOOTHED, value, 1e-12); /* the first value starts the EMA */
    DIAG(DRPO_TDIAG_CALLBACK_CODE, 0, 0);
    /* unit weights from the pair weights backward received */
    double qu[TM_MAX_PAIRS] = {0}, g[3] = {0}, gsum[3] = {0}, wsum[3] = {0}, lsum[3] = {0},
           total = 0.0;
    size_t gp[3] = {0};
    for (size_t j = 0; j < n; j++) {
        int64_t h = drpo_batch_host_index(b, j);
        qu[drpo_batch_unit_of(b, j)] += bt.rec_w[j];
        total += bt.rec_w[j];
        tm_bt_add_grad(&bt, theta, h, bt.rec_w[j], g);
        int32_t grp = drpo_batch_group(b, j);
        if (grp >= 0) {
            wsum[grp] += bt.rec_w[j];
            lsum[grp] += tm_bt_loss(&bt, theta, h);
            gp[grp]++;
        }
    }
    ck_assert_double_eq_tol(total, 1.0, 1e-12);
    double q2 = 0.0, qmax = 0.0;
    for (size_t u = 0; u < U; u++) {
        ck_assert_double_eq_tol(qu[u], q[u], 1e-12); /* the weights are the solve's q */
        q2 += qu[u] * qu[u];
        qmax = fmax(qmax, qu[u]);
    }
    DIAG(DRPO_TDIAG_ESS, 1.0 / q2, 1e-9);
    DIAG(DRPO_TDIAG_MAX_WEIGHT, qmax, 1e-12);
    DIAG(DRPO_TDIAG_DIVERGENCE, tu_divergence(DRPO_SET_CHI2, U, qu, base), 1e-10);
    double gn = sqrt(g[0] * g[0] + g[1] * g[1] + g[2] * g[2]);
    DIAG(DRPO_TDIAG_GRAD_NORM, gn, 1e-6 * fmax(1.0, gn));
    double un = 0.0, pn = 0.0;
    for (size_t i = 0; i < d; i++) {
        un += (p[i] - theta[i]) * (p[i] - theta[i]);
        pn += (double)p[i] * p[i];
        gsum[i] = theta[i] - 0.3 * g[i]; /* the SGD step, to float precision */
        ck_assert_double_eq_tol(p[i], gsum[i], 1e-6);
    }
    DIAG(DRPO_TDIAG_UPDATE_NORM, sqrt(un), 1e-12);
    DIAG(DRPO_TDIAG_PARAM_NORM, sqrt(pn), 1e-12);
    /* per group: mean loss, share of the weight, pairs; group 1 is absent */
    for (int32_t grp = 0; grp < (int32_t)G; grp++) {
        ck_assert_int_eq(drpo_trainer_group_diag(t, grp, DRPO_GDIAG_PAIRS, &v), DRPO_OK);
        ck_assert(v == (double)gp[grp]);
        ck_assert_int_eq(drpo_trainer_group_diag(t, grp, DRPO_GDIAG_MEAN_LOSS, &v), DRPO_OK);
        if (gp[grp])
            ck_assert_double_eq_tol(v, lsum[grp] / (double)gp[grp], 1e-12);
        else
            ck_assert(isnan(v));
        ck_assert_int_eq(drpo_trainer_group_diag(t, grp, DRPO_GDIAG_WEIGHT, &v), DRPO_OK);
        ck_assert_double_eq_tol(v, wsum[grp], 1e-12);
    }
    ck_assert_int_eq(drpo_trainer_group_diag(t, 3, DRPO_GDIAG_WEIGHT, &v), DRPO_ERR_PARAM_RANGE);
    ck_assert_int_eq(drpo_trainer_group_diag(t, 0, 9, &v), DRPO_ERR_KEY);
    /* exact mode has no dual gradient */
    ck_assert_int_eq(drpo_trainer_diag(t, DRPO_TDIAG_DUAL_GRAD, &v), DRPO_ERR_UNAVAILABLE);
#undef DIAG
    drpo_trainer_free(t);
    drpo_objective_free(o);
    drpo_objective_free(ref);
    drpo_model_free(model);
    drpo_batch_free(b);
    tm_bt_free(&bt);
}
END_TEST

/* The unit-weight diagnostics (ESS, max weight) in every mode, with one
 * pair a unit and with four (an exact step reads them off its solve, the
 * others sum them from the pairs): from the pair weights backward
 * received, normalised. */
START_TEST(test_unit_weight_diagnostics)
{
    const size_t d = 3, n = 24;
    const int32_t modes[] = {DRPO_MODE_EXACT, DRPO_MODE_STOCHASTIC, DRPO_MODE_GROUP};
    for (int mi = 0; mi < 3; mi++) {
        for (size_t per_unit = 1; per_unit <= 4; per_unit += 3) {
            tm_bt bt;
            tm_bt_init(&bt, d, n);
            tu_rng r;
            tu_rng_seed(&r, 32);
            const double dir[3] = {1, -1, 0.5};
            tm_bt_fill(&bt, &r, 0, 12, dir, 1.0, 0);
            tm_bt_fill(&bt, &r, 12, n, dir, 0.5, 1);
            drpo_model *model = tm_bt_model(&bt, NULL);
            drpo_objective *o = tm_objective(DRPO_SET_KL, DRPO_PARAM_RADIUS, 0.3, modes[mi],
                                             0.1, modes[mi] == DRPO_MODE_GROUP ? 2 : 0, NULL);
            drpo_trainer *t = make_trainer(model, o);
            drpo_batch *b = NULL;
            ck_assert_int_eq(drpo_batch_create(&b), DRPO_OK);
            tm_batch_range(b, &bt, 0, n, per_unit);
            size_t U = drpo_batch_units(b);
            ck_assert_uint_eq(U, n / per_unit);
            for (int step = 0; step < 2; step++) { /* (the stochastic duals start on the first) */
                ck_assert_int_eq(drpo_trainer_step(t, b), DRPO_OK);
                double qu[TM_MAX_PAIRS] = {0}, total = 0.0, q2 = 0.0, qmax = 0.0, v;
                for (size_t j = 0; j < n; j++) {
                    qu[drpo_batch_unit_of(b, j)] += bt.rec_w[j];
                    total += bt.rec_w[j];
                }
                for (size_t u = 0; u < U; u++) {
                    q2 += (qu[u] / total) * (qu[u] / total);
                    qmax = fmax(qmax, qu[u] / total);
                }
                ck_assert_int_eq(drpo_trainer_diag(t, DRPO_TDIAG_ESS, &v), DRPO_OK);
                ck_assert_msg(fabs(v - 1.0 / q2) <= 1e-9 * v, "mode %d, %zu a unit: ESS %.17g, "
                              "want %.17g", modes[mi], per_unit, v, 1.0 / q2);
                ck_assert_int_eq(drpo_trainer_diag(t, DRPO_TDIAG_MAX_WEIGHT, &v), DRPO_OK);
                ck_assert_msg(fabs(v - qmax) <= 1e-12, "mode %d, %zu a unit: max weight %.17g, "
                              "want %.17g", modes[mi], per_unit, v, qmax);
            }
            drpo_trainer_free(t);
            drpo_objective_free(o);
            drpo_model_free(model);
            drpo_batch_free(b);
            tm_bt_free(&bt);
        }
    }
}
END_TEST

Suite *suite_trainer(void)
{
    Suite *s = suite_create("trainer");
    TCase *tc = tcase_create("gradient");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_finite_differences);
    tcase_add_loop_test(tc, test_weights_only_matches_step, 0,
                        (int)(sizeof wcases / sizeof wcases[0]));
    tcase_add_loop_test(tc, test_gradient_accumulation, 0, (int)(sizeof wcases / sizeof wcases[0]));
    tcase_add_test(tc, test_step_errors);
    tcase_add_test(tc, test_evaluate_keeps_staged_weights);
    suite_add_tcase(s, tc);
    tc = tcase_create("optimiser");
    tcase_set_timeout(tc, 10);
    tcase_add_loop_test(tc, test_optimisers, REF_SGD, REF_ADAMW + 1);
    tcase_add_test(tc, test_clipping);
    tcase_add_test(tc, test_schedules);
    tcase_add_test(tc, test_option_ranges);
    tcase_add_test(tc, test_convergence);
    tcase_add_test(tc, test_diagnostics);
    tcase_add_test(tc, test_unit_weight_diagnostics);
    suite_add_tcase(s, tc);
    return s;
}

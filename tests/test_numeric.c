/* test_numeric.c - numerical safety (issue 7): every public function that
 * takes a double or float (losses, base weights, parameters, options,
 * callback outputs, model parameters) is given NaN, +-Inf, denormals and
 * +-1e300; it must return a defined status, write nothing on error and leave
 * its handle's state bitwise as it was; a step detects a non-finite
 * gradient (or update) from the host before applying it. */
#include "check_util.h"
#include "suites.h"
#include "test_model.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const double specials[] = {NAN, -NAN, INFINITY, -INFINITY, 4.9406564584124654e-324,
                                  -4.9406564584124654e-324, 2.2250738585072009e-308, 1e300,
                                  -1e300, DBL_MAX, -0.0};
#define NSPEC (sizeof specials / sizeof specials[0])

static int nonfinite(double x) { return !isfinite(x); }

static int known(drpo_status s) { return s >= DRPO_ERR_INCOMPATIBLE && s <= DRPO_STOPPED; }

/* ---- the objective --------------------------------------------------------- */

START_TEST(test_objective_parameters)
{
    static const int32_t sets[] = {DRPO_SET_KL, DRPO_SET_CHI2, DRPO_SET_CVAR, DRPO_SET_TV};
    for (size_t si = 0; si < 4; si++)
        for (int32_t key = DRPO_PARAM_RADIUS; key <= DRPO_PARAM_GROUPS; key++)
            for (size_t i = 0; i < NSPEC; i++) {
                drpo_objective *o = NULL;
                ck_assert_int_eq(drpo_objective_create(&o, sets[si]), DRPO_OK);
                double x = specials[i], before, after;
                drpo_status gb = drpo_objective_get(o, key, &before);
                drpo_status st = drpo_objective_set(o, key, x);
                ck_assert(known(st));
                if (nonfinite(x))
                    ck_assert_msg(st != DRPO_OK, "set %d key %d accepted %g", (int)sets[si],
                                  (int)key, x);
                if (st != DRPO_OK) {
                    ck_assert_int_eq(drpo_objective_get(o, key, &after), gb);
                    ck_assert(gb != DRPO_OK || memcmp(&before, &after, sizeof after) == 0);
                } else if (key <= DRPO_PARAM_LEVEL) {
                    /* accepted (a denormal, 1e300, -0): the solve stays defined */
                    double loss[5] = {1, -2, 3e5, 0.5, 0.5}, q[5], v;
                    st = drpo_objective_solve(o, 5, loss, NULL, q, &v);
                    ck_assert(known(st));
                    if (st == DRPO_OK) {
                        ck_assert(isfinite(v));
                        for (int j = 0; j < 5; j++)
                            ck_assert(isfinite(q[j]) && q[j] >= 0.0);
                    }
                }
                drpo_objective_free(o);
            }
}
END_TEST

START_TEST(test_objective_losses_and_base)
{
    drpo_objective *o = NULL;
    ck_assert_int_eq(drpo_objective_create(&o, DRPO_SET_CHI2), DRPO_OK);
    ck_assert_int_eq(drpo_objective_set(o, DRPO_PARAM_RADIUS, 0.3), DRPO_OK);
    double loss[6] = {0.1, 2, -1, 0.5, 0.5, 3}, base[6] = {0.1, 0.2, 0.3, 0.1, 0.2, 0.1};
    double q[6], v, prev;
    ck_assert_int_eq(drpo_objective_solve(o, 6, loss, base, q, &v), DRPO_OK);
    prev = v;
    for (size_t i = 0; i < NSPEC; i++)
        for (size_t at = 0; at < 6; at += 5)
            for (int which = 0; which < 2; which++) {
                double l[6], p[6];
                memcpy(l, loss, sizeof l);
                memcpy(p, base, sizeof p);
                (which ? p : l)[at] = specials[i];
                tu_fill_sentinel(q, 6);
                tu_fill_sentinel(&v, 1);
                drpo_status st = drpo_objective_solve(o, 6, l, p, q, &v);
                ck_assert(known(st));
                if (st != DRPO_OK) {
                    ck_assert(tu_is_sentinel(q, 6) && tu_is_sentinel(&v, 1));
                    double d;
                    ck_assert_int_eq(drpo_objective_diag(o, DRPO_DIAG_VALUE, &d), DRPO_OK);
                    ck_assert(memcmp(&d, &prev, sizeof d) == 0); /* the last good solve */
                    if (!which)
                        ck_assert_int_eq(st, DRPO_ERR_LOSS_NONFINITE);
                    continue;
                }
                ck_assert_msg(!nonfinite(specials[i]) || which == 1,
                              "a non-finite loss was accepted");
                ck_assert(isfinite(v));
                double s = 0.0;
                for (int j = 0; j < 6; j++) {
                    ck_assert(isfinite(q[j]) && q[j] >= 0.0);
                    s += q[j];
                }
                ck_assert(fabs(s - 1.0) < 1e-9);
                ck_assert_int_eq(drpo_objective_diag(o, DRPO_DIAG_VALUE, &prev), DRPO_OK);
            }
    /* non-finite base weights are refused as such */
    double p[6];
    memcpy(p, base, sizeof p);
    p[2] = NAN;
    ck_assert_int_eq(drpo_objective_solve(o, 6, loss, p, q, &v), DRPO_ERR_BASE_NEGATIVE);
    p[2] = INFINITY;
    ck_assert_int_eq(drpo_objective_solve(o, 6, loss, p, q, &v), DRPO_ERR_BASE_NEGATIVE);
    drpo_objective_free(o);
}
END_TEST

/* ---- losses and built-in models ------------------------------------------- */

START_TEST(test_losses_and_models)
{
    for (int32_t kind = DRPO_LOSS_BT; kind <= DRPO_LOSS_CDPO; kind++)
        for (size_t i = 0; i < NSPEC; i++) {
            double x = specials[i], m[3] = {0.5, x, -1}, l[3], dl[3];
            tu_fill_sentinel(l, 3);
            tu_fill_sentinel(dl, 3);
            drpo_status st = drpo_loss_from_margins(kind, 3, m, 1.0, 0.1, l, dl);
            if (nonfinite(x)) {
                ck_assert_int_eq(st, DRPO_ERR_LOSS_NONFINITE);
                ck_assert(tu_is_sentinel(l, 3) && tu_is_sentinel(dl, 3));
            } else {
                ck_assert_int_eq(st, DRPO_OK);
                for (int j = 0; j < 3; j++) /* never NaN; +inf where the true loss overflows */
                    ck_assert(!isnan(l[j]) && l[j] >= 0.0 && !isnan(dl[j]));
            }
            /* beta and smoothing */
            m[1] = 0.25;
            tu_fill_sentinel(l, 3);
            st = drpo_loss_from_margins(kind, 3, m, x, 0.1, l, dl);
            ck_assert(known(st));
            if (nonfinite(x) && kind != DRPO_LOSS_BT)
                ck_assert_int_eq(st, DRPO_ERR_PARAM_RANGE);
            if (st != DRPO_OK)
                ck_assert(tu_is_sentinel(l, 3));
            else
                for (int j = 0; j < 3; j++)
                    ck_assert(!isnan(l[j]) && !isnan(dl[j]));
            st = drpo_loss_from_margins(kind, 3, m, 1.0, x, l, dl);
            ck_assert(known(st));
            if (kind == DRPO_LOSS_CDPO && nonfinite(x))
                ck_assert_int_eq(st, DRPO_ERR_PARAM_RANGE);
            /* log-probabilities: a NaN or infinite one, or two 1e300 whose
             * difference overflows */
            double pc[1] = {x}, pr[1] = {-x}, rc[1] = {0}, rr[1] = {0};
            st = drpo_loss_from_logps(kind, 1, pc, pr, rc, rr, 1.0, 0.1, l, dl);
            ck_assert(known(st));
            if (!isfinite(x - -x))
                ck_assert_int_eq(st, DRPO_ERR_LOSS_NONFINITE);
        }
    /* built-in models refuse non-finite loss parameters */
    float diff[8] = {1, 0, 0, 1, 1, 1, 0, 0};
    size_t off[3] = {0, 2, 4};
    double rew[4] = {1, 0, 0.5, 0.25};
    for (size_t i = 0; i < NSPEC; i++) {
        double x = specials[i];
        drpo_model *m = NULL;
        drpo_status st = drpo_pairwise_linear_create(&m, 2, 4, diff, DRPO_LOSS_DPO, x, 0.0, NULL);
        ck_assert(known(st));
        ck_assert((st == DRPO_OK) == (m != NULL));
        if (nonfinite(x) || !(x > 0.0))
            ck_assert_int_eq(st, DRPO_ERR_PARAM_RANGE);
        drpo_model_free(m);
        m = NULL;
        st = drpo_softmax_policy_create(&m, 2, 2, off, diff, rew, NULL, x);
        ck_assert(known(st));
        ck_assert((st == DRPO_OK) == (m != NULL));
        if (nonfinite(x) || x < 0.0)
            ck_assert_int_eq(st, DRPO_ERR_PARAM_RANGE);
        drpo_model_free(m);
    }
    /* scores of non-finite parameters: defined (the dot products), never a crash */
    float th[2] = {NAN, INFINITY};
    double sc[4];
    ck_assert_int_eq(drpo_linear_scores(th, 2, 4, diff, sc), DRPO_OK);
}
END_TEST

/* ---- the trainer ------------------------------------------------------------- */

/* A callback model whose outputs a test sets: loss[bad_pair] and grad[0] are
 * replaced by the given values when set. */
typedef struct special_model {
    tm_bt bt;
    int bad_loss, bad_grad;
    double loss_value;
    float grad_value;
} special_model;

static int sp_fwd(void *user, const float *params, const drpo_batch *b, double *loss)
{
    special_model *m = user;
    int rc = tm_bt_callbacks().forward(&m->bt, params, b, loss);
    if (m->bad_loss)
        loss[drpo_batch_size(b) / 2] = m->loss_value;
    return rc;
}

static int sp_bwd(void *user, const float *params, const drpo_batch *b, const double *w,
                  float *grad)
{
    special_model *m = user;
    int rc = tm_bt_callbacks().backward(&m->bt, params, b, w, grad);
    if (m->bad_grad)
        grad[0] = m->grad_value;
    return rc;
}

typedef struct trig {
    special_model sm;
    drpo_model *m;
    drpo_objective *o;
    drpo_trainer *t;
    drpo_batch *b;
    char dir[TM_PATH];
} trig;

static void trig_open(trig *r, int32_t mode)
{
    memset(r, 0, sizeof *r);
    tm_bt_init(&r->sm.bt, 4, 32);
    tu_rng rng;
    tu_rng_seed(&rng, 77);
    const double dir[4] = {1, -1, 0.5, 0.2};
    tm_bt_fill(&r->sm.bt, &rng, 0, 32, dir, 1.0, 1);
    drpo_model_callbacks cb = {sizeof cb, sp_fwd, sp_bwd, NULL};
    ck_assert_int_eq(drpo_model_create(&r->m, 4, &cb, &r->sm), DRPO_OK);
    r->o = tm_objective(DRPO_SET_KL, DRPO_PARAM_RADIUS, 0.2, mode, 0.1, 2, NULL);
    ck_assert_int_eq(drpo_trainer_create(&r->t, r->m, r->o), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_set(r->t, DRPO_TRAIN_OPTIMIZER, DRPO_OPT_ADAMW), DRPO_OK);
    ck_assert_int_eq(drpo_batch_create(&r->b), DRPO_OK);
    tm_batch_range(r->b, &r->sm.bt, 0, 32, 2);
    tm_tmpdir(r->dir);
    for (int s = 0; s < 3; s++)
        ck_assert_int_eq(drpo_trainer_step(r->t, r->b), DRPO_OK);
}

static void trig_close(trig *r)
{
    drpo_trainer_free(r->t);
    drpo_objective_free(r->o);
    drpo_model_free(r->m);
    drpo_batch_free(r->b);
    tm_bt_free(&r->sm.bt);
    tm_rmdir(r->dir);
}

typedef struct tsnap {
    unsigned char *bytes;
    size_t len;
    float params[4];
} tsnap;

static void tsnap_take(trig *r, tsnap *s)
{
    s->bytes = tm_state_bytes(r->t, r->dir, &s->len);
    memcpy(s->params, drpo_model_params(r->m), sizeof s->params);
}

static void tsnap_same(trig *r, tsnap *s, const char *what, double x)
{
    tsnap now;
    tsnap_take(r, &now);
    ck_assert_msg(now.len == s->len && memcmp(now.bytes, s->bytes, s->len) == 0 &&
                      memcmp(now.params, s->params, sizeof s->params) == 0,
                  "%s %g: a failed call changed the state", what, x);
    free(now.bytes);
}

START_TEST(test_trainer_options)
{
    trig r;
    trig_open(&r, DRPO_MODE_EXACT);
    for (int32_t key = DRPO_TRAIN_OPTIMIZER; key <= DRPO_TRAIN_SMOOTHING; key++)
        for (size_t i = 0; i < NSPEC; i++) {
            double x = specials[i], before, after;
            ck_assert_int_eq(drpo_trainer_get(r.t, key, &before), DRPO_OK);
            drpo_status st = drpo_trainer_set(r.t, key, x);
            ck_assert(known(st));
            if (nonfinite(x))
                ck_assert_int_eq(st, DRPO_ERR_PARAM_RANGE);
            if (st != DRPO_OK) {
                ck_assert_int_eq(drpo_trainer_get(r.t, key, &after), DRPO_OK);
                ck_assert(memcmp(&before, &after, sizeof after) == 0);
                continue;
            }
            /* accepted (denormals, 1e300 ...): a step is defined, and a
             * failed one changes nothing */
            tsnap s;
            tsnap_take(&r, &s);
            st = drpo_trainer_step(r.t, r.b);
            ck_assert(known(st));
            if (st != DRPO_OK)
                tsnap_same(&r, &s, "option", x);
            else
                for (int j = 0; j < 4; j++)
                    ck_assert(isfinite(drpo_model_params(r.m)[j]));
            free(s.bytes);
            ck_assert_int_eq(drpo_trainer_set(r.t, key, before), DRPO_OK);
        }
    trig_close(&r);
}
END_TEST

/* Callback outputs: NaN / infinite losses and gradients fail the step with
 * DRPO_ERR_NONFINITE before anything is applied; denormals, 1e300 losses and
 * the largest float gradient give a defined status and never non-finite
 * parameters. */
START_TEST(test_callback_outputs)
{
    static const int32_t modes[] = {DRPO_MODE_EXACT, DRPO_MODE_STOCHASTIC, DRPO_MODE_GROUP};
    trig r;
    trig_open(&r, modes[_i]);
    for (size_t i = 0; i < NSPEC; i++)
        for (int what = 0; what < 2; what++) {
            double x = specials[i];
            tsnap s;
            tsnap_take(&r, &s);
            r.sm.bad_loss = what == 0;
            r.sm.bad_grad = what == 1;
            r.sm.loss_value = x;
            r.sm.grad_value = (float)x; /* 1e300 -> inf, DBL_MAX -> inf */
            drpo_status st = drpo_trainer_step(r.t, r.b);
            r.sm.bad_loss = r.sm.bad_grad = 0;
            ck_assert(known(st));
            int bad = what == 0 ? nonfinite(x) : !isfinite((float)x);
            if (bad)
                ck_assert_msg(st == DRPO_ERR_NONFINITE, "%s %g: status %d",
                              what ? "gradient" : "loss", x, (int)st);
            if (st != DRPO_OK)
                tsnap_same(&r, &s, what ? "gradient" : "loss", x);
            else
                for (int j = 0; j < 4; j++)
                    ck_assert(isfinite(drpo_model_params(r.m)[j]));
            free(s.bytes);
            /* the same losses through the weights-only path */
            if (what == 0) {
                double loss[32], w[32], v;
                for (int j = 0; j < 32; j++)
                    loss[j] = 0.1 * j;
                loss[7] = x;
                tsnap_take(&r, &s);
                tu_fill_sentinel(w, 32);
                st = drpo_trainer_weights(r.t, r.b, loss, w, &v);
                ck_assert(known(st));
                if (nonfinite(x))
                    ck_assert_int_eq(st, DRPO_ERR_NONFINITE);
                if (st != DRPO_OK) {
                    ck_assert(tu_is_sentinel(w, 32));
                    tsnap_same(&r, &s, "weights loss", x);
                } else {
                    for (int j = 0; j < 32; j++)
                        ck_assert(isfinite(w[j]) && w[j] >= 0.0);
                    ck_assert(isfinite(v));
                }
                free(s.bytes);
            }
        }
    trig_close(&r);
}
END_TEST

/* Parameters the host wrote (NaN, Inf, denormal, the largest float): a step
 * either fails with DRPO_ERR_NONFINITE and keeps them, or succeeds with
 * finite parameters; an update that would overflow is refused. */
START_TEST(test_model_parameters)
{
    trig r;
    trig_open(&r, DRPO_MODE_EXACT);
    static const float fx[] = {NAN, INFINITY, -INFINITY, 1e-45f, FLT_MIN, FLT_MAX, -FLT_MAX};
    for (size_t i = 0; i < sizeof fx / sizeof fx[0]; i++) {
        float keep[4];
        memcpy(keep, drpo_model_params(r.m), sizeof keep);
        drpo_model_params(r.m)[1] = fx[i];
        tsnap s;
        tsnap_take(&r, &s);
        drpo_status st = drpo_trainer_step(r.t, r.b);
        ck_assert(known(st));
        if (!isfinite(fx[i]))
            ck_assert_int_eq(st, DRPO_ERR_NONFINITE);
        if (st != DRPO_OK)
            tsnap_same(&r, &s, "parameter", fx[i]);
        else
            for (int j = 0; j < 4; j++)
                ck_assert(isfinite(drpo_model_params(r.m)[j]));
        free(s.bytes);
        memcpy(drpo_model_params(r.m), keep, sizeof keep);
    }
    /* a finite gradient whose update overflows a float: lr 1e300 */
    ck_assert_int_eq(drpo_trainer_set(r.t, DRPO_TRAIN_OPTIMIZER, DRPO_OPT_ADAMW), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_set(r.t, DRPO_TRAIN_LR, 1e300), DRPO_OK);
    tsnap s;
    tsnap_take(&r, &s);
    ck_assert_int_eq(drpo_trainer_step(r.t, r.b), DRPO_ERR_NONFINITE);
    tsnap_same(&r, &s, "lr", 1e300);
    free(s.bytes);
    trig_close(&r);
}
END_TEST

/* fuzz_api: stochastic chi-square with a denormal penalty gave +inf pair
 * weights with DRPO_OK from the weights-only path; now DRPO_ERR_NONFINITE,
 * nothing written or staged. */
START_TEST(test_denormal_penalty_weights)
{
    drpo_objective *o = tm_objective(DRPO_SET_CHI2, DRPO_PARAM_PENALTY, 1.4e-309,
                                     DRPO_MODE_STOCHASTIC, 0.1, 0, NULL);
    drpo_trainer *t = NULL;
    drpo_batch *b = NULL;
    ck_assert_int_eq(drpo_trainer_create(&t, NULL, o), DRPO_OK);
    ck_assert_int_eq(drpo_batch_create(&b), DRPO_OK);
    for (int j = 0; j < 4; j++)
        ck_assert_int_eq(drpo_batch_add_key(b, (uint64_t)j, DRPO_GROUP_NONE, j), DRPO_OK);
    double loss[4] = {1.2, 0.3, 2.5, 0.1}, w[4], v;
    tu_fill_sentinel(w, 4);
    drpo_status st = drpo_trainer_weights(t, b, loss, w, &v);
    ck_assert(st == DRPO_OK || st == DRPO_ERR_NONFINITE);
    if (st == DRPO_OK)
        for (int j = 0; j < 4; j++)
            ck_assert(isfinite(w[j]) && w[j] >= 0.0);
    else {
        ck_assert(tu_is_sentinel(w, 4));
        ck_assert_int_eq(drpo_trainer_commit(t), DRPO_ERR_STATE);
    }
    drpo_batch_free(b);
    drpo_trainer_free(t);
    drpo_objective_free(o);
}
END_TEST

Suite *suite_numeric(void)
{
    Suite *s = suite_create("numeric");
    TCase *tc = tcase_create("numeric");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_objective_parameters);
    tcase_add_test(tc, test_objective_losses_and_base);
    tcase_add_test(tc, test_losses_and_models);
    tcase_add_test(tc, test_trainer_options);
    tcase_add_loop_test(tc, test_callback_outputs, 0, 3);
    tcase_add_test(tc, test_model_parameters);
    tcase_add_test(tc, test_denormal_penalty_weights);
    suite_add_tcase(s, tc);
    return s;
}

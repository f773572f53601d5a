/* test_stochastic.c - the stochastic dual mode reaches the full-data robust
 * optimum on a convex problem, and group mode protects a hard minority
 * group (issue 3). */
#include "check_util.h"
#include "suites.h"
#include "test_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define SD 5
#define SN 400
#define PER_UNIT 2 /* pairs per prompt: 200 units of 2 pairs */

typedef struct scase {
    const char *name;
    int32_t set, key;
    double param;
    double dual_lr; /* stochastic mode */
    double lr;      /* stochastic mode, cosine-decayed to 0 */
    int steps;
} scase;

static const scase scases[] = {
    {"cvar 0.3", DRPO_SET_CVAR, DRPO_PARAM_LEVEL, 0.3, 0.05, 0.5, 3000},
    {"kl penalty 0.5", DRPO_SET_KL, DRPO_PARAM_PENALTY, 0.5, 0.05, 0.5, 3000},
    {"kl radius 0.3", DRPO_SET_KL, DRPO_PARAM_RADIUS, 0.3, 0.05, 0.5, 3000},
    {"chi2 penalty 0.5", DRPO_SET_CHI2, DRPO_PARAM_PENALTY, 0.5, 0.05, 0.5, 3000},
    {"chi2 radius 0.5", DRPO_SET_CHI2, DRPO_PARAM_RADIUS, 0.5, 0.05, 0.5, 3000},
};

static void make_data(tm_bt *bt)
{
    tm_bt_init(bt, SD, SN);
    tu_rng r;
    tu_rng_seed(&r, 400);
    const double dir[SD] = {0.6, -0.4, 0.5, 0.3, -0.2};
    tm_bt_fill(bt, &r, 0, SN, dir, 5.0, DRPO_GROUP_NONE);
}

/* The exact full-data robust optimum: full-batch exact steps (AdamW with a
 * cosine schedule), keeping the best value drpo_trainer_evaluate reports. */
static double exact_optimum(const scase *c, tm_bt *bt, drpo_batch *full)
{
    drpo_model *model = tm_bt_model(bt, NULL);
    drpo_objective *o = tm_objective(c->set, c->key, c->param, DRPO_MODE_EXACT, 0.1, 0, NULL);
    drpo_trainer *t = NULL;
    ck_assert_int_eq(drpo_trainer_create(&t, model, o), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_set(t, DRPO_TRAIN_OPTIMIZER, DRPO_OPT_ADAMW), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_set(t, DRPO_TRAIN_LR, 0.05), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_set(t, DRPO_TRAIN_SCHEDULE, DRPO_SCHED_COSINE), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_set(t, DRPO_TRAIN_TOTAL_STEPS, 1500), DRPO_OK);
    double best = INFINITY, v;
    for (int k = 0; k < 1500; k++) {
        ck_assert_int_eq(drpo_trainer_step(t, full), DRPO_OK);
        if (k % 50 == 49 || k > 1450) {
            ck_assert_int_eq(drpo_trainer_evaluate(t, full, &v, NULL), DRPO_OK);
            best = fmin(best, v);
        }
    }
    drpo_trainer_free(t);
    drpo_objective_free(o);
    drpo_model_free(model);
    return best;
}

START_TEST(test_stochastic_reaches_optimum)
{
    const scase *c = &scases[_i];
    tm_bt bt;
    make_data(&bt);
    drpo_batch *full = NULL, *mb = NULL;
    ck_assert_int_eq(drpo_batch_create(&full), DRPO_OK);
    ck_assert_int_eq(drpo_batch_create(&mb), DRPO_OK);
    tm_batch_range(full, &bt, 0, SN, PER_UNIT);
    double opt = exact_optimum(c, &bt, full);

    drpo_model *model = tm_bt_model(&bt, NULL);
    drpo_objective *o = tm_objective(c->set, c->key, c->param, DRPO_MODE_STOCHASTIC, c->dual_lr,
                                     0, NULL);
    drpo_trainer *t = NULL;
    ck_assert_int_eq(drpo_trainer_create(&t, model, o), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_set(t, DRPO_TRAIN_LR, c->lr), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_set(t, DRPO_TRAIN_SCHEDULE, DRPO_SCHED_COSINE), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_set(t, DRPO_TRAIN_TOTAL_STEPS, c->steps), DRPO_OK);
    tu_rng r;
    tu_rng_seed(&r, 1234);
    const size_t units = 20; /* minibatch: 20 prompts sampled with replacement, all their pairs */
    for (int k = 0; k < c->steps; k++) {
        size_t idx[units * PER_UNIT];
        for (size_t u = 0; u < units; u++) {
            size_t unit = tu_below(&r, SN / PER_UNIT);
            for (size_t i = 0; i < PER_UNIT; i++)
                idx[u * PER_UNIT + i] = unit * PER_UNIT + i;
        }
        /* a prompt drawn twice is one unit with its pairs twice: still its mean */
        tm_batch_fill(mb, &bt, idx, units * PER_UNIT, PER_UNIT);
        ck_assert_int_eq(drpo_trainer_step(t, mb), DRPO_OK);
    }
    double v, dg;
    ck_assert_int_eq(drpo_trainer_evaluate(t, full, &v, NULL), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_diag(t, DRPO_TDIAG_DUAL_GRAD, &dg), DRPO_OK);
    if (getenv("DRPO_TEST_VERBOSE"))
        fprintf(stderr, "%s: exact optimum %.6f, stochastic %.6f (%+.3f%%)\n", c->name, opt, v,
                100.0 * (v - opt) / opt);
    ck_assert_msg(v <= opt + 0.01 * fabs(opt),
                  "%s: stochastic mode reached %.6f, exact optimum %.6f (%+.2f%%)", c->name, v,
                  opt, 100.0 * (v - opt) / opt);
    drpo_trainer_free(t);
    drpo_objective_free(o);
    drpo_model_free(model);
    drpo_batch_free(full);
    drpo_batch_free(mb);
    tm_bt_free(&bt);
}
END_TEST

/* ---- group DRO ------------------------------------------------------------ */

#define GN0 320 /* majority group 0: points [0, GN0) */
#define GN 400  /* minority group 1: points [GN0, GN), another optimal direction */

static double worst_group_loss(const tm_bt *bt, drpo_model *model, double *l0, double *l1)
{
    double theta[SD];
    tm_params(model, theta);
    *l0 = tm_bt_mean_loss(bt, theta, 0, GN0);
    *l1 = tm_bt_mean_loss(bt, theta, GN0, GN);
    return fmax(*l0, *l1);
}

/* Trains ERM (exact, no set) or group DRO (group mode) on minibatches of the
 * same random pairs; returns the trainer's model. */
static drpo_model *train_groups(tm_bt *bt, int32_t set, int32_t key, double param, int32_t mode,
                                drpo_batch *full, double *eval)
{
    drpo_model *model = tm_bt_model(bt, NULL);
    drpo_objective *o = tm_objective(set, key, param, mode, 0.5, 2, NULL);
    drpo_trainer *t = NULL;
    ck_assert_int_eq(drpo_trainer_create(&t, model, o), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_set(t, DRPO_TRAIN_LR, 0.5), DRPO_OK);
    drpo_batch *mb = NULL;
    ck_assert_int_eq(drpo_batch_create(&mb), DRPO_OK);
    tu_rng r;
    tu_rng_seed(&r, 99);
    for (int k = 0; k < 1500; k++) {
        size_t idx[40];
        for (size_t i = 0; i < 40; i++)
            idx[i] = tu_below(&r, GN);
        tm_batch_fill(mb, bt, idx, 40, 1);
        ck_assert_int_eq(drpo_trainer_step(t, mb), DRPO_OK);
    }
    ck_assert_int_eq(drpo_trainer_evaluate(t, full, eval, NULL), DRPO_OK);
    drpo_trainer_free(t);
    drpo_objective_free(o);
    drpo_batch_free(mb);
    return model;
}

/* A minority group (20% of the pairs) whose preferences follow another
 * direction: group mode (no set: the worst group; and a KL ball) ends with a
 * lower worst-group loss than ERM, trading majority loss for it; group
 * mode's evaluation is the worst group's mean loss. */
START_TEST(test_group_mode_protects_minority)
{
    tm_bt bt;
    tm_bt_init(&bt, SD, GN);
    tu_rng r;
    tu_rng_seed(&r, 4242);
    const double a[SD] = {1, 0.5, 0, 0, 0.2}, b[SD] = {-0.6, 0.5, 0.8, 0, 0.2};
    tm_bt_fill(&bt, &r, 0, GN0, a, 4.0, 0);
    tm_bt_fill(&bt, &r, GN0, GN, b, 4.0, 1);
    drpo_batch *full = NULL;
    ck_assert_int_eq(drpo_batch_create(&full), DRPO_OK);
    tm_batch_range(full, &bt, 0, GN, 1);
    double e_erm, e_grp, e_kl, erm0, erm1, grp0, grp1, kl0, kl1;
    drpo_model *erm = train_groups(&bt, DRPO_SET_NONE, 0, 0, DRPO_MODE_EXACT, full, &e_erm);
    drpo_model *grp = train_groups(&bt, DRPO_SET_NONE, 0, 0, DRPO_MODE_GROUP, full, &e_grp);
    drpo_model *kl = train_groups(&bt, DRPO_SET_KL, DRPO_PARAM_RADIUS, 0.02, DRPO_MODE_GROUP, full,
                                  &e_kl);
    double w_erm = worst_group_loss(&bt, erm, &erm0, &erm1);
    double w_grp = worst_group_loss(&bt, grp, &grp0, &grp1);
    double w_kl = worst_group_loss(&bt, kl, &kl0, &kl1);
    if (getenv("DRPO_TEST_VERBOSE"))
        fprintf(stderr,
                "groups: ERM %.4f / %.4f, group DRO %.4f / %.4f, KL-ball group DRO %.4f / %.4f\n",
                erm0, erm1, grp0, grp1, kl0, kl1);
    ck_assert_double_gt(erm1, erm0);          /* ERM neglects the minority */
    ck_assert_double_lt(w_grp, w_erm - 0.05); /* group DRO protects it (final iterates: not balanced exactly) */
    ck_assert_double_lt(w_kl, w_erm - 0.05);  /* and so does a (binding) KL ball */
    ck_assert_double_gt(grp0, erm0); /* at the majority's expense */
    ck_assert_double_eq_tol(e_grp, w_grp, 1e-6); /* evaluate: the worst group's mean loss */
    ck_assert_double_eq_tol(e_erm, (GN0 * erm0 + (GN - GN0) * erm1) / GN, 1e-6);
    drpo_model_free(erm);
    drpo_model_free(grp);
    drpo_model_free(kl);
    drpo_batch_free(full);
    tm_bt_free(&bt);
}
END_TEST

Suite *suite_stochastic(void)
{
    Suite *s = suite_create("stochastic");
    TCase *tc = tcase_create("optimum");
    tcase_set_timeout(tc, 20);
    tcase_add_loop_test(tc, test_stochastic_reaches_optimum, 0,
                        (int)(sizeof scases / sizeof scases[0]));
    tcase_add_test(tc, test_group_mode_protects_minority);
    suite_add_tcase(s, tc);
    return s;
}

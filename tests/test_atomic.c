/* test_atomic.c - a failing step changes nothing (callbacks failing, NaN
 * losses and gradients, allocations failing), and steady-state steps make
 * no allocation (issue 3). */
#include "check_util.h"
#include "suites.h"
#include "test_model.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const tm_cfg acfgs[] = {
    {DRPO_SET_CHI2, DRPO_PARAM_RADIUS, 0.5, DRPO_MODE_EXACT, 0, DRPO_OPT_ADAMW,
     DRPO_SCHED_COSINE, "exact chi2 radius, AdamW"},
    {DRPO_SET_KL, DRPO_PARAM_RADIUS, 0.2, DRPO_MODE_STOCHASTIC, 0, DRPO_OPT_MOMENTUM,
     DRPO_SCHED_WARMUP, "stochastic KL radius, Nesterov"},
    {DRPO_SET_CVAR, DRPO_PARAM_LEVEL, 0.5, DRPO_MODE_GROUP, 3, DRPO_OPT_ADAMW,
     DRPO_SCHED_CONSTANT, "group CVaR, AdamW"},
    {DRPO_SET_CHI2, DRPO_PARAM_PENALTY, 0.5, DRPO_MODE_STOCHASTIC, 2, DRPO_OPT_SGD,
     DRPO_SCHED_CONSTANT, "stochastic chi2 penalty with groups, SGD"},
};
#define NACFG (sizeof acfgs / sizeof acfgs[0])

enum { INJ_FWD_FAIL, INJ_BWD_FAIL, INJ_NAN_LOSS, INJ_NAN_GRAD, INJ_COUNT };

typedef struct snapshot {
    unsigned char *bytes;
    size_t len;
    float params[TM_RUN_D];
    double robust, steps;
} snapshot;

static void take(tm_run *r, const char *dir, snapshot *s)
{
    s->bytes = tm_state_bytes(r->t, dir, &s->len);
    memcpy(s->params, drpo_model_params(r->model), sizeof s->params);
    ck_assert_int_eq(drpo_trainer_diag(r->t, DRPO_TDIAG_ROBUST, &s->robust), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_diag(r->t, DRPO_TDIAG_STEPS, &s->steps), DRPO_OK);
}

/* The trainer's whole state (checkpoint bytes: parameters, moments, duals,
 * group weights, step count, history) and its diagnostics are as in s. */
static void unchanged(tm_run *r, const char *dir, const snapshot *s, const char *what)
{
    snapshot now;
    take(r, dir, &now);
    ck_assert_msg(now.len == s->len && memcmp(now.bytes, s->bytes, s->len) == 0,
                  "%s: the trainer state changed", what);
    ck_assert_msg(memcmp(now.params, s->params, sizeof s->params) == 0, "%s: parameters changed",
                  what);
    ck_assert_msg(memcmp(&now.robust, &s->robust, sizeof now.robust) == 0 &&
                      now.steps == s->steps,
                  "%s: diagnostics changed", what);
    free(now.bytes);
}

/* Runs 8 steps (the batch of step 3 is larger, a new shape); with `inject`,
 * every failure is tried before the real step: at step 3 every allocation
 * of the step in turn (trainer, objective and model share the counting
 * allocator), at step 5 each callback failure and NaN.  Returns the final
 * state bytes. */
static unsigned char *replay(const tm_cfg *c, int inject, const char *dir, size_t *len)
{
    tm_run r;
    tm_run_open(&r, c);
    for (int step = 0; step < 8; step++) {
        size_t units = step == 3 ? 24 : 8;
        tm_run_batch(&r, step, units);
        if (inject && step == 3) {
            snapshot s;
            take(&r, dir, &s);
            int failures = 0;
            for (long k = 1;; k++) {
                r.st.fail_at = r.st.mallocs + r.st.reallocs + k;
                drpo_status st = drpo_trainer_step(r.t, r.b);
                r.st.fail_at = 0;
                if (st == DRPO_OK) {
                    /* undo by replaying from the snapshot is impossible: the
                     * step succeeded, which is the real step 3 */
                    break;
                }
                ck_assert_int_eq(st, DRPO_ERR_NOMEM);
                unchanged(&r, dir, &s, "allocation failure");
                failures++;
            }
            ck_assert_int_ge(failures, 1); /* the new shape needed scratch */
            free(s.bytes);
            continue;
        }
        if (inject && step == 5) {
            snapshot s;
            take(&r, dir, &s);
            for (int kind = 0; kind < INJ_COUNT; kind++) {
                long f = r.bt.fwd_calls + 1, b = r.bt.bwd_calls + 1;
                r.bt.fail_code = kind == INJ_FWD_FAIL ? 7 : -42;
                if (kind == INJ_FWD_FAIL)
                    r.bt.fail_fwd_at = f;
                if (kind == INJ_BWD_FAIL)
                    r.bt.fail_bwd_at = b;
                if (kind == INJ_NAN_LOSS)
                    r.bt.nan_fwd_at = f;
                if (kind == INJ_NAN_GRAD)
                    r.bt.nan_bwd_at = b;
                drpo_status st = drpo_trainer_step(r.t, r.b);
                double code;
                ck_assert_int_eq(drpo_trainer_diag(r.t, DRPO_TDIAG_CALLBACK_CODE, &code), DRPO_OK);
                switch (kind) {
                case INJ_FWD_FAIL:
                    ck_assert_int_eq(st, DRPO_ERR_CALLBACK);
                    ck_assert(code == 7);
                    ck_assert_ptr_nonnull(strstr(drpo_trainer_last_error(r.t), "forward"));
                    break;
                case INJ_BWD_FAIL:
                    ck_assert_int_eq(st, DRPO_ERR_CALLBACK);
                    ck_assert(code == -42);
                    ck_assert_ptr_nonnull(strstr(drpo_trainer_last_error(r.t), "backward"));
                    break;
                default:
                    ck_assert_int_eq(st, DRPO_ERR_NONFINITE);
                    ck_assert(code == -42); /* the last failing callback's code is kept */
                    break;
                }
                r.bt.fail_fwd_at = r.bt.fail_bwd_at = r.bt.nan_fwd_at = r.bt.nan_bwd_at = 0;
                unchanged(&r, dir, &s, kind == INJ_FWD_FAIL   ? "forward failure"
                                       : kind == INJ_BWD_FAIL ? "backward failure"
                                       : kind == INJ_NAN_LOSS ? "NaN loss"
                                                              : "NaN gradient");
            }
            free(s.bytes);
        }
        ck_assert_int_eq(drpo_trainer_step(r.t, r.b), DRPO_OK);
    }
    /* every backward, after successes, failures and refusals alike, began
     * from a zeroed gradient (the update clears it for the next one) */
    ck_assert_int_eq(r.bt.dirty_grads, 0);
    unsigned char *bytes = tm_state_bytes(r.t, dir, len);
    tm_run_close(&r);
    return bytes;
}

/* After every kind of failure the state is bitwise unchanged, and training
 * continues exactly as a run that never failed. */
START_TEST(test_failed_steps_change_nothing)
{
    char dir[TM_PATH];
    tm_tmpdir(dir);
    size_t la, lb;
    unsigned char *a = replay(&acfgs[_i], 1, dir, &la);
    unsigned char *b = replay(&acfgs[_i], 0, dir, &lb);
    ck_assert_msg(la == lb && memcmp(a, b, la) == 0,
                  "%s: the run with failures diverged from the run without", acfgs[_i].name);
    free(a);
    free(b);
    tm_rmdir(dir);
}
END_TEST

/* The first allocation of a fresh trainer's first step (its moments or
 * scratch) failing: nothing changes, the next step works. */
START_TEST(test_first_step_allocation_failure)
{
    tm_run r;
    tm_run_open(&r, &acfgs[0]);
    tm_run_batch(&r, 0, 8);
    float before[TM_RUN_D];
    memcpy(before, drpo_model_params(r.model), sizeof before);
    r.st.fail_at = r.st.mallocs + r.st.reallocs + 1;
    ck_assert_int_eq(drpo_trainer_step(r.t, r.b), DRPO_ERR_NOMEM);
    r.st.fail_at = 0;
    double v;
    ck_assert_int_eq(drpo_trainer_diag(r.t, DRPO_TDIAG_STEPS, &v), DRPO_OK);
    ck_assert(v == 0);
    ck_assert_int_eq(memcmp(before, drpo_model_params(r.model), sizeof before), 0);
    ck_assert_int_eq(drpo_trainer_step(r.t, r.b), DRPO_OK);
    tm_run_close(&r);
}
END_TEST

/* ---- steady state ---------------------------------------------------------- */

/* After the first step of a batch shape, refilling the batch and stepping
 * (and the weights-only path) make no allocation, in every mode with every
 * optimiser. */
START_TEST(test_steady_state_no_allocation)
{
    static const int32_t opts[] = {DRPO_OPT_SGD, DRPO_OPT_MOMENTUM, DRPO_OPT_ADAMW};
    static const tm_cfg modes[] = {
        {DRPO_SET_NONE, 0, 0, DRPO_MODE_EXACT, 0, 0, DRPO_SCHED_CONSTANT, "erm"},
        {DRPO_SET_KL, DRPO_PARAM_RADIUS, 0.3, DRPO_MODE_EXACT, 2, 0, DRPO_SCHED_COSINE, "exact"},
        {DRPO_SET_TV, DRPO_PARAM_PENALTY, 0.3, DRPO_MODE_EXACT, 0, 0, DRPO_SCHED_WARMUP, "tv"},
        {DRPO_SET_CHI2, DRPO_PARAM_RADIUS, 0.3, DRPO_MODE_STOCHASTIC, 0, 0, DRPO_SCHED_COSINE,
         "stochastic"},
        {DRPO_SET_CVAR, DRPO_PARAM_LEVEL, 0.4, DRPO_MODE_GROUP, 3, 0, DRPO_SCHED_CONSTANT,
         "group"},
    };
    tm_cfg c = modes[_i % 5];
    c.opt = opts[_i / 5];
    tm_run r;
    tm_run_open(&r, &c);
    tm_run_batch(&r, 0, 12);
    ck_assert_int_eq(drpo_trainer_step(r.t, r.b), DRPO_OK);
    double loss[24], w[24], v;
    for (size_t j = 0; j < 24; j++)
        loss[j] = 0.1 * (double)j;
    long before = r.st.mallocs + r.st.reallocs;
    for (int step = 1; step < 10; step++) {
        tm_run_batch(&r, step, 12);
        ck_assert_int_eq(drpo_trainer_step(r.t, r.b), DRPO_OK);
        ck_assert_int_eq(drpo_trainer_weights(r.t, r.b, loss, w, &v), DRPO_OK);
        ck_assert_int_eq(drpo_trainer_commit(r.t), DRPO_OK);
        ck_assert_int_eq(drpo_trainer_test(r.t) > 0, 1);
    }
    ck_assert_msg(r.st.mallocs + r.st.reallocs == before, "%s, optimiser %d: %ld allocations",
                  c.name, (int)c.opt, r.st.mallocs + r.st.reallocs - before);
    tm_run_close(&r);
}
END_TEST

/* ---- updates that would overflow ------------------------------------------ */

/* The optimiser applies its update in one pass when bounds prove every new
 * value finite, and measures it first otherwise: after the first steps
 * (moments known), an update that overflows (a huge learning rate) or a
 * parameter the host made infinite or NaN is refused with nothing
 * written, and the run then continues as if it had not happened. */
START_TEST(test_overflowing_update_refused)
{
    static const int32_t opts[] = {DRPO_OPT_SGD, DRPO_OPT_MOMENTUM, DRPO_OPT_ADAMW};
    tm_cfg c = acfgs[0];
    c.opt = opts[_i];
    c.sched = DRPO_SCHED_CONSTANT;
    char dir[TM_PATH];
    tm_tmpdir(dir);
    tm_run r;
    tm_run_open(&r, &c);
    for (int step = 0; step < 3; step++) {
        tm_run_batch(&r, step, 8);
        ck_assert_int_eq(drpo_trainer_step(r.t, r.b), DRPO_OK);
    }
    tm_run_batch(&r, 3, 8);
    float *p = drpo_model_params(r.model);
    double lr;
    ck_assert_int_eq(drpo_trainer_get(r.t, DRPO_TRAIN_LR, &lr), DRPO_OK);
    for (int kind = 0; kind < 4; kind++) {
        float keep = p[1];
        if (kind == 0)
            ck_assert_int_eq(drpo_trainer_set(r.t, DRPO_TRAIN_LR, 1e300), DRPO_OK);
        else
            p[1] = kind == 1 ? INFINITY : kind == 2 ? NAN : FLT_MAX;
        snapshot s;
        take(&r, dir, &s);
        drpo_status st = drpo_trainer_step(r.t, r.b);
        if (kind < 3) {
            ck_assert_int_eq(st, DRPO_ERR_NONFINITE);
            unchanged(&r, dir, &s, kind == 0 ? "huge learning rate" : "non-finite parameter");
        } else if (st == DRPO_ERR_NONFINITE) { /* FLT_MAX: refused or finite, never inf */
            unchanged(&r, dir, &s, "parameter at FLT_MAX");
        } else {
            ck_assert_int_eq(st, DRPO_OK);
            for (int i = 0; i < TM_RUN_D; i++)
                ck_assert(isfinite(p[i]));
        }
        free(s.bytes);
        ck_assert_int_eq(drpo_trainer_set(r.t, DRPO_TRAIN_LR, lr), DRPO_OK);
        if (kind < 3)
            p[1] = keep;
    }
    double value, norm; /* an evaluation's gradient is never applied: it stays too */
    ck_assert_int_eq(drpo_trainer_evaluate(r.t, r.b, &value, &norm), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_step(r.t, r.b), DRPO_OK);
    ck_assert_int_eq(r.bt.dirty_grads, 0); /* (nor a refused update's) */
    tm_run_close(&r);
    tm_rmdir(dir);
}
END_TEST

/* A model of `d` parameters (enough for the vector loops and a tail) whose
 * backward counts gradients that were not zeroed on entry and writes a
 * gradient that changes with every call; backward call `fail_at` writes,
 * then fails. */
typedef struct zero_model {
    size_t d;
    long calls, dirty, fail_at;
} zero_model;

static int zm_forward(void *user, const float *params, const drpo_batch *b, double *loss)
{
    (void)user, (void)params;
    for (size_t j = 0; j < drpo_batch_size(b); j++)
        loss[j] = 0.1 * (double)(j + 1);
    return 0;
}

static int zm_backward(void *user, const float *params, const drpo_batch *b, const double *w,
                       float *grad)
{
    zero_model *z = user;
    (void)params, (void)b, (void)w;
    z->calls++;
    for (size_t i = 0; i < z->d; i++)
        if (grad[i] != 0.0f) {
            z->dirty++;
            break;
        }
    for (size_t i = 0; i < z->d; i++)
        grad[i] = 0.01f * (float)((long)(i % 7) - 3 + z->calls);
    return z->calls == z->fail_at ? 5 : 0;
}

/* The library zeroes the gradient before every backward (the callback
 * contract); the update clears it as it reads it, so this holds after
 * steps, failed steps, refused updates and evaluations, on every
 * optimiser's loop (the vector one and its tail). */
START_TEST(test_backward_gets_zeroed_gradient)
{
    static const int32_t opts[] = {DRPO_OPT_SGD, DRPO_OPT_MOMENTUM, DRPO_OPT_ADAMW};
    zero_model z = {37, 0, 0, 4};
    drpo_model_callbacks cb = {sizeof cb, zm_forward, zm_backward, NULL};
    drpo_model *m;
    drpo_objective *o;
    drpo_trainer *t;
    drpo_batch *b;
    ck_assert_int_eq(drpo_model_create(&m, z.d, &cb, &z), DRPO_OK);
    ck_assert_int_eq(drpo_objective_create(&o, DRPO_SET_KL), DRPO_OK);
    ck_assert_int_eq(drpo_objective_set(o, DRPO_PARAM_RADIUS, 0.1), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_create(&t, m, o), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_set(t, DRPO_TRAIN_OPTIMIZER, opts[_i]), DRPO_OK);
    ck_assert_int_eq(drpo_batch_create(&b), DRPO_OK);
    for (int j = 0; j < 6; j++)
        ck_assert_int_eq(drpo_batch_add_key(b, (uint64_t)j / 2, DRPO_GROUP_NONE, j), DRPO_OK);
    double lr, value, norm;
    ck_assert_int_eq(drpo_trainer_get(t, DRPO_TRAIN_LR, &lr), DRPO_OK);
    for (int step = 0; step < 9; step++) {
        drpo_status st = drpo_trainer_step(t, b), want = DRPO_OK;
        if (z.calls == z.fail_at)
            want = DRPO_ERR_CALLBACK;
        else if (step == 6)
            want = DRPO_ERR_NONFINITE;
        ck_assert_int_eq(st, want);
        if (step == 5) /* a refused update: its gradient was never applied */
            ck_assert_int_eq(drpo_trainer_set(t, DRPO_TRAIN_LR, 1e300), DRPO_OK);
        if (step == 6) {
            ck_assert_int_eq(drpo_trainer_set(t, DRPO_TRAIN_LR, lr), DRPO_OK);
            ck_assert_int_eq(drpo_trainer_evaluate(t, b, &value, &norm), DRPO_OK);
        }
    }
    ck_assert_int_eq(z.calls, 10); /* (one of them the evaluation's) */
    ck_assert_int_eq(z.dirty, 0);
    drpo_trainer_free(t);
    drpo_objective_free(o);
    drpo_model_free(m);
    drpo_batch_free(b);
}
END_TEST

Suite *suite_atomic(void)
{
    Suite *s = suite_create("atomic");
    TCase *tc = tcase_create("atomic");
    tcase_set_timeout(tc, 20);
    tcase_add_loop_test(tc, test_failed_steps_change_nothing, 0, (int)NACFG);
    tcase_add_test(tc, test_first_step_allocation_failure);
    tcase_add_loop_test(tc, test_steady_state_no_allocation, 0, 15);
    tcase_add_loop_test(tc, test_overflowing_update_refused, 0, 3);
    tcase_add_loop_test(tc, test_backward_gets_zeroed_gradient, 0, 3);
    suite_add_tcase(s, tc);
    return s;
}

/* test_threads.c - threads (issue 7): N threads, each with its own
 * objective, model and trainer, train concurrently on one finished batch
 * that they all read, and end bitwise where one thread alone ends.  Run the
 * suite under ThreadSanitizer as docs/reliability.md describes. */
#include "check_util.h"
#include "suites.h"
#include "test_model.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NTHREADS 4
#define TD 8
#define TROWS 64
#define TSTEPS 25

typedef struct shared {
    const float *diff;      /* TROWS x TD, read by every built-in model */
    const drpo_batch *b;    /* finished: read by every thread */
    const tm_bt *bt;        /* the callback model's data, read only */
    char dir[TM_PATH];
} shared;

typedef struct result {
    int32_t set, mode;
    int builtin;
    int id;
    const shared *sh;
    drpo_status st;
    int where;
    float params[TD];
    double robust, eta, ess;
    unsigned char *state;
    size_t len;
} result;

/* The callbacks of tm_bt count their calls in the (shared) tm_bt: a copy
 * per thread keeps that state private; the data arrays stay shared. */
static void *train(void *arg)
{
    result *r = arg;
    const shared *sh = r->sh;
    tm_bt bt = *sh->bt;
    drpo_model *m = NULL;
    drpo_objective *o = NULL;
    drpo_trainer *t = NULL;
    drpo_status st;
    r->where = 1;
    if (r->builtin)
        st = drpo_pairwise_linear_create(&m, TD, TROWS, sh->diff, DRPO_LOSS_DPO, 0.5, 0.0, NULL);
    else {
        drpo_model_callbacks cb = tm_bt_callbacks();
        st = drpo_model_create(&m, TD, &cb, &bt);
    }
    if (st == DRPO_OK && (st = drpo_objective_create(&o, r->set)) == DRPO_OK) {
        r->where = 2;
        int32_t key = r->set == DRPO_SET_CVAR ? DRPO_PARAM_LEVEL : DRPO_PARAM_RADIUS;
        if (r->set != DRPO_SET_NONE)
            st = drpo_objective_set(o, key, r->set == DRPO_SET_CVAR ? 0.4 : 0.2);
        if (st == DRPO_OK)
            st = drpo_objective_set(o, DRPO_PARAM_GROUPS, 3);
        if (st == DRPO_OK)
            st = drpo_objective_set(o, DRPO_PARAM_MODE, r->mode);
        if (st == DRPO_OK)
            st = drpo_trainer_create(&t, m, o);
        if (st == DRPO_OK)
            st = drpo_trainer_set(t, DRPO_TRAIN_OPTIMIZER, DRPO_OPT_ADAMW);
        if (st == DRPO_OK)
            st = drpo_trainer_set(t, DRPO_TRAIN_LR, 0.05);
    }
    double loss[2 * TROWS], w[2 * TROWS], v, g;
    for (size_t j = 0; j < drpo_batch_size(sh->b); j++)
        loss[j] = 0.01 * (double)(j % 13);
    for (int s = 0; st == DRPO_OK && s < TSTEPS; s++) {
        r->where = 10 + s;
        st = drpo_trainer_step(t, sh->b);
        if (st == DRPO_OK && s % 5 == 4) {
            st = drpo_trainer_weights(t, sh->b, loss, w, &v);
            if (st == DRPO_OK)
                st = drpo_trainer_commit(t);
            if (st == DRPO_OK)
                st = drpo_trainer_evaluate(t, sh->b, &v, &g);
        }
    }
    if (st == DRPO_OK) {
        r->where = 100;
        memcpy(r->params, drpo_model_params(m), sizeof r->params);
        st = drpo_trainer_diag(t, DRPO_TDIAG_ROBUST, &r->robust);
        if (st == DRPO_OK)
            st = drpo_trainer_diag(t, DRPO_TDIAG_ESS, &r->ess);
        if (drpo_trainer_diag(t, DRPO_TDIAG_ETA, &r->eta) != DRPO_OK)
            r->eta = 0.0;
    }
    if (st == DRPO_OK) {
        r->where = 101;
        char path[TM_PATH + 32];
        snprintf(path, sizeof path, "%s/state-%d", sh->dir, r->id);
        st = drpo_trainer_save(t, path);
        if (st == DRPO_OK) {
            r->state = tm_read_file(path, &r->len);
            remove(path);
        }
    }
    r->st = st;
    drpo_trainer_free(t);
    drpo_objective_free(o);
    drpo_model_free(m);
    return NULL;
}

static const struct {
    int32_t set, mode;
    int builtin;
} tcfgs[] = {
    {DRPO_SET_KL, DRPO_MODE_EXACT, 1},      {DRPO_SET_CHI2, DRPO_MODE_STOCHASTIC, 0},
    {DRPO_SET_CVAR, DRPO_MODE_GROUP, 1},    {DRPO_SET_TV, DRPO_MODE_EXACT, 0},
    {DRPO_SET_KL, DRPO_MODE_STOCHASTIC, 1}, {DRPO_SET_NONE, DRPO_MODE_EXACT, 1},
};

START_TEST(test_threads_match_one_thread)
{
    tm_bt bt;
    tm_bt_init(&bt, TD, TROWS);
    tu_rng rng;
    tu_rng_seed(&rng, 5150);
    const double dir[TD] = {1, -1, 0.5, 0.25, 0, 0.7, -0.3, 0.1};
    tm_bt_fill(&bt, &rng, 0, TROWS, dir, 1.5, DRPO_GROUP_NONE);
    float diff[TROWS * TD];
    for (size_t i = 0; i < TROWS * TD; i++)
        diff[i] = (float)bt.x[i];
    drpo_batch *b = NULL;
    ck_assert_int_eq(drpo_batch_create(&b), DRPO_OK);
    for (size_t h = 0; h < TROWS; h++) {
        bt.group[h] = (int32_t)(h % 3);
        char prompt[16];
        int len = snprintf(prompt, sizeof prompt, "p%zu", h / 3);
        ck_assert_int_eq(drpo_batch_add(b, prompt, (size_t)len, bt.group[h], (int64_t)h), DRPO_OK);
    }
    shared sh = {diff, b, &bt, ""};
    tm_tmpdir(sh.dir);
    /* every configuration on NTHREADS threads at once, mixed */
    size_t ncfg = sizeof tcfgs / sizeof tcfgs[0];
    result ref[sizeof tcfgs / sizeof tcfgs[0]];
    for (size_t c = 0; c < ncfg; c++) {
        memset(&ref[c], 0, sizeof ref[c]);
        ref[c].set = tcfgs[c].set;
        ref[c].mode = tcfgs[c].mode;
        ref[c].builtin = tcfgs[c].builtin;
        ref[c].id = (int)c;
        ref[c].sh = &sh;
        train(&ref[c]); /* one thread: the reference */
        ck_assert_msg(ref[c].st == DRPO_OK, "config %zu: status %d at %d", c, (int)ref[c].st,
                      ref[c].where);
    }
    enum { N = NTHREADS * 6 };
    result rs[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        rs[i] = ref[(size_t)i % ncfg];
        rs[i].id = 100 + i;
        rs[i].state = NULL;
        rs[i].st = DRPO_ERR_STATE;
        ck_assert_int_eq(pthread_create(&th[i], NULL, train, &rs[i]), 0);
    }
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < N; i++) {
        const result *a = &ref[(size_t)i % ncfg], *r = &rs[i];
        ck_assert_msg(r->st == DRPO_OK, "thread %d: status %d at %d", i, (int)r->st, r->where);
        ck_assert_msg(memcmp(a->params, r->params, sizeof a->params) == 0 &&
                          memcmp(&a->robust, &r->robust, sizeof a->robust) == 0 &&
                          memcmp(&a->eta, &r->eta, sizeof a->eta) == 0 &&
                          memcmp(&a->ess, &r->ess, sizeof a->ess) == 0,
                      "thread %d: results differ from one thread's", i);
        ck_assert_msg(a->len == r->len && memcmp(a->state, r->state, a->len) == 0,
                      "thread %d: trainer state differs from one thread's", i);
        free(rs[i].state);
    }
    for (size_t c = 0; c < ncfg; c++)
        free(ref[c].state);
    ck_assert_uint_eq(drpo_batch_size(b), TROWS); /* read only: unchanged */
    drpo_batch_free(b);
    tm_bt_free(&bt);
    tm_rmdir(sh.dir);
}
END_TEST

Suite *suite_threads(void)
{
    Suite *s = suite_create("threads");
    TCase *tc = tcase_create("threads");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_threads_match_one_thread);
    suite_add_tcase(s, tc);
    return s;
}

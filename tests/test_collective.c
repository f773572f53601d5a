/* test_collective.c - data parallelism through a host-supplied collective
 * (drpo_objective_set_collective).  R ranks are simulated by R threads that
 * share a fake collective built on a pthread barrier.  Each rank holds a
 * shard of a global batch whose prompts span ranks; the weights every rank
 * computes for its pairs must equal the single-process weights of the union
 * batch (1e-12 relative), for every set and form, in exact, stochastic and
 * group modes, and a failing collective must fail the step with
 * DRPO_ERR_CALLBACK and change nothing.
 *
 * Nothing in the rank threads calls ck_assert: they record, the test's own
 * thread checks. */
#include "check_util.h"
#include "suites.h"
#include "test_model.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define CR 4          /* ranks */
#define CN 40         /* pairs in a global batch */
#define CP 12         /* prompts a global batch draws from */
#define CSTEPS 4      /* steps (weights + commit) per case */
#define CGROUPS 3
#define CFAIL_CODE 42

/* ---- the fake collective ------------------------------------------------ */

typedef struct fake_world {
    int size;
    pthread_barrier_t bar;
    uint64_t u64[CR];
    const void *send[CR];
    uint64_t send_bytes[CR];
    double *vals[CR];
    long fail_at;  /* each rank fails its call with this number (1-based); 0: never */
    int mismatch;  /* a rank was told other byte counts than the senders sent */
} fake_world;

typedef struct fake_rank {
    fake_world *w;
    int rank;
    long calls;
} fake_rank;

/* Every rank makes the same sequence of calls, so all ranks fail the same
 * call and none is left waiting at the barrier. */
static int injected(fake_rank *r)
{
    r->calls++;
    return r->w->fail_at && r->calls == r->w->fail_at ? CFAIL_CODE : 0;
}

static int fk_allgather_u64(void *user, uint64_t value, uint64_t *values)
{
    fake_rank *r = user;
    fake_world *w = r->w;
    if (injected(r))
        return CFAIL_CODE;
    w->u64[r->rank] = value;
    pthread_barrier_wait(&w->bar);
    memcpy(values, w->u64, (size_t)w->size * sizeof *values);
    pthread_barrier_wait(&w->bar);
    return 0;
}

static int fk_allgatherv(void *user, const void *send, uint64_t send_bytes, void *recv,
                         const uint64_t *recv_bytes)
{
    fake_rank *r = user;
    fake_world *w = r->w;
    if (injected(r))
        return CFAIL_CODE;
    w->send[r->rank] = send;
    w->send_bytes[r->rank] = send_bytes;
    pthread_barrier_wait(&w->bar);
    size_t off = 0;
    for (int k = 0; k < w->size; k++) {
        if (recv_bytes[k] != w->send_bytes[k])
            w->mismatch = 1;
        else
            memcpy((unsigned char *)recv + off, w->send[k], (size_t)recv_bytes[k]);
        off += (size_t)recv_bytes[k];
    }
    pthread_barrier_wait(&w->bar);
    return 0;
}

/* Sums in rank order, so every rank gets the same bits. */
static int fk_allreduce_sum(void *user, double *values, uint64_t n)
{
    fake_rank *r = user;
    fake_world *w = r->w;
    if (injected(r))
        return CFAIL_CODE;
    double *sum = malloc((size_t)n * sizeof *sum + 1);
    if (!sum)
        return 99; /* the same on no rank: the test then fails on a timeout */
    w->vals[r->rank] = values;
    pthread_barrier_wait(&w->bar);
    for (uint64_t i = 0; i < n; i++) {
        double s = 0.0;
        for (int k = 0; k < w->size; k++)
            s += w->vals[k][i];
        sum[i] = s;
    }
    pthread_barrier_wait(&w->bar); /* everyone has read every rank's input */
    memcpy(values, sum, (size_t)n * sizeof *sum);
    free(sum);
    return 0;
}

static void world_open(fake_world *w, fake_rank *ranks, int size)
{
    memset(w, 0, sizeof *w);
    w->size = size;
    ck_assert_int_eq(pthread_barrier_init(&w->bar, NULL, (unsigned)size), 0);
    for (int k = 0; k < size; k++) {
        ranks[k].w = w;
        ranks[k].rank = k;
        ranks[k].calls = 0;
    }
}

static void attach(drpo_objective *o, fake_rank *r)
{
    drpo_collective c;
    memset(&c, 0, sizeof c);
    c.struct_size = sizeof c;
    c.rank = r->rank;
    c.size = r->w->size;
    c.allgather_u64 = fk_allgather_u64;
    c.allgatherv = fk_allgatherv;
    c.allreduce_sum = fk_allreduce_sum;
    ck_assert_int_eq(drpo_objective_set_collective(o, &c, r), DRPO_OK);
}

/* Run fn(arg_k) on `size` threads and wait for all. */
static void run_ranks(int size, void *(*fn)(void *), void *args, size_t arg_size)
{
    pthread_t th[CR];
    for (int k = 0; k < size; k++)
        ck_assert_int_eq(pthread_create(&th[k], NULL, fn, (char *)args + (size_t)k * arg_size), 0);
    for (int k = 0; k < size; k++)
        ck_assert_int_eq(pthread_join(th[k], NULL), 0);
}

/* ---- global batches and their shards ----------------------------------- */

typedef struct gbatch {
    uint64_t key[CN];
    int32_t group[CN];
    double loss[CN];
    int rank[CN]; /* the rank holding pair i */
} gbatch;

/* Pairs draw their prompt from CP prompts, so most prompts have pairs on
 * several ranks; the first R pairs go to ranks 0..R-1 so no shard is empty
 * (with `empty`, the last rank gets none: its shard is empty). */
static void make_gbatch(gbatch *g, tu_rng *r, int size, int empty)
{
    size -= empty;
    for (size_t i = 0; i < CN; i++) {
        size_t p = tu_below(r, CP);
        g->key[i] = 0x1000 + p * 7919;
        g->group[i] = (int32_t)(p % CGROUPS);
        g->loss[i] = 6.0 * tu_unif(r) - 3.0;
        g->rank[i] = i < (size_t)size ? (int)i : (int)tu_below(r, (size_t)size);
    }
}

static int close_rel(double a, double b, double rel)
{
    if (a == b)
        return 1;
    return fabs(a - b) <= rel * fmax(fabs(a), fabs(b));
}

/* Weights are probabilities: 1e-12 relative, or below the rounding of 1
 * (a unit emptied by subtraction may keep 1e-18 on one side, 0 on the
 * other).  Duals and values are in loss units: 1e-12 relative to the loss
 * scale (3) when they are near 0. */
static int close_weight(double a, double b)
{
    return a == b || fabs(a - b) <= 1e-12 * fmax(fabs(a), fabs(b)) + 1e-16;
}

static int close_loss_units(double a, double b) /* a == b: infinite lambda of a zero radius */
{
    return a == b || fabs(a - b) <= 1e-12 * fmax(fmax(fabs(a), fabs(b)), 3.0);
}

/* An objective of one set, form and mode; NULL if the set refuses the mode
 * (stochastic TV). */
static drpo_objective *make_objective(int32_t set, int32_t key, double param, int32_t mode,
                                      int32_t groups)
{
    drpo_objective *o = NULL;
    ck_assert_int_eq(drpo_objective_create(&o, set), DRPO_OK);
    if (key)
        ck_assert_int_eq(drpo_objective_set(o, key, param), DRPO_OK);
    ck_assert_int_eq(drpo_objective_set(o, DRPO_PARAM_GROUPS, groups), DRPO_OK);
    ck_assert_int_eq(drpo_objective_set(o, DRPO_PARAM_DUAL_LR, 0.1), DRPO_OK);
    if (drpo_objective_set(o, DRPO_PARAM_MODE, mode) != DRPO_OK) {
        drpo_objective_free(o);
        return NULL;
    }
    return o;
}

/* ---- weights of every set and mode -------------------------------------- */

typedef struct wjob {
    fake_rank *me;
    drpo_trainer *t;
    const gbatch *g; /* [CSTEPS] */
    /* out, per step */
    drpo_status st[CSTEPS];
    double w[CSTEPS][CN]; /* by global index; NaN where not this rank's */
    double value[CSTEPS], eta[CSTEPS], lambda[CSTEPS], units[CSTEPS], mean[CSTEPS];
    int has_eta[CSTEPS], has_lambda[CSTEPS];
} wjob;

/* The diagnostics of the last commit. */
static void read_diags(const drpo_trainer *t, double *eta, int *has_eta, double *lambda,
                       int *has_lambda, double *units, double *mean)
{
    *has_eta = drpo_trainer_diag(t, DRPO_TDIAG_ETA, eta) == DRPO_OK;
    *has_lambda = drpo_trainer_diag(t, DRPO_TDIAG_LAMBDA, lambda) == DRPO_OK;
    if (drpo_trainer_diag(t, DRPO_TDIAG_UNITS, units) != DRPO_OK)
        *units = -1.0;
    if (drpo_trainer_diag(t, DRPO_TDIAG_MEAN_LOSS, mean) != DRPO_OK)
        *mean = NAN;
}

static void *weights_rank(void *arg)
{
    wjob *j = arg;
    drpo_batch *b = NULL;
    if (drpo_batch_create(&b) != DRPO_OK)
        return NULL;
    for (int s = 0; s < CSTEPS; s++) {
        double loss[CN], w[CN];
        size_t map[CN], n = 0;
        drpo_batch_clear(b);
        for (size_t i = 0; i < CN; i++) { /* shard() asserts; do it by hand here */
            j->w[s][i] = NAN;
            if (j->g[s].rank[i] != j->me->rank)
                continue;
            drpo_batch_add_key(b, j->g[s].key[i], j->g[s].group[i], (int64_t)i);
            loss[n] = j->g[s].loss[i];
            map[n++] = i;
        }
        j->st[s] = drpo_trainer_weights(j->t, b, loss, w, &j->value[s]);
        if (j->st[s] == DRPO_OK)
            j->st[s] = drpo_trainer_commit(j->t);
        if (j->st[s] != DRPO_OK)
            break;
        for (size_t k = 0; k < n; k++)
            j->w[s][map[k]] = w[k];
        read_diags(j->t, &j->eta[s], &j->has_eta[s], &j->lambda[s], &j->has_lambda[s],
                   &j->units[s], &j->mean[s]);
    }
    drpo_batch_free(b);
    return NULL;
}

typedef struct wcase_c {
    int32_t set, key;
    double param;
    int32_t mode;
} wcase_c;

/* One case: R ranks against the single-process union batch. */
static void weights_case(const wcase_c *c, uint64_t seed, int empty_last)
{
    int32_t groups = c->mode == DRPO_MODE_GROUP ? CGROUPS : 0;
    drpo_objective *ref_o = make_objective(c->set, c->key, c->param, c->mode, groups);
    if (!ref_o)
        return;
    drpo_trainer *ref = NULL;
    ck_assert_int_eq(drpo_trainer_create(&ref, NULL, ref_o), DRPO_OK);

    gbatch g[CSTEPS];
    tu_rng r;
    tu_rng_seed(&r, seed);
    for (int s = 0; s < CSTEPS; s++)
        make_gbatch(&g[s], &r, CR, empty_last);

    fake_world w;
    fake_rank ranks[CR];
    world_open(&w, ranks, CR);
    drpo_objective *o[CR];
    wjob jobs[CR];
    memset(jobs, 0, sizeof jobs);
    for (int k = 0; k < CR; k++) {
        o[k] = make_objective(c->set, c->key, c->param, c->mode, groups);
        attach(o[k], &ranks[k]);
        jobs[k].me = &ranks[k];
        jobs[k].g = g;
        ck_assert_int_eq(drpo_trainer_create(&jobs[k].t, NULL, o[k]), DRPO_OK);
    }
    run_ranks(CR, weights_rank, jobs, sizeof jobs[0]);
    ck_assert_msg(!w.mismatch, "allgatherv: receive counts differ from the sent ones");

    drpo_batch *ub = NULL;
    ck_assert_int_eq(drpo_batch_create(&ub), DRPO_OK);
    for (int s = 0; s < CSTEPS; s++) {
        /* the union batch, in global order (interleaving the ranks' pairs) */
        drpo_batch_clear(ub);
        for (size_t i = 0; i < CN; i++)
            ck_assert_int_eq(drpo_batch_add_key(ub, g[s].key[i], g[s].group[i], (int64_t)i),
                             DRPO_OK);
        double rw[CN], rv, eta = 0, lambda = 0, units, mean;
        int has_eta, has_lambda;
        /* a step the single process cannot take (a non-finite robust value
         * of a zero penalty in stochastic mode) fails alike on every rank */
        drpo_status rst = drpo_trainer_weights(ref, ub, g[s].loss, rw, &rv);
        if (rst == DRPO_OK)
            ck_assert_int_eq(drpo_trainer_commit(ref), DRPO_OK);
        for (int k = 0; k < CR; k++)
            ck_assert_msg(jobs[k].st[s] == rst, "%s %g mode %d: rank %d step %d: status %d (%s), "
                          "single process %d (%s)", drpo_status_string(rst), c->param,
                          (int)c->mode, k, s, (int)jobs[k].st[s],
                          drpo_trainer_last_error(jobs[k].t), (int)rst,
                          drpo_trainer_last_error(ref));
        if (rst != DRPO_OK)
            break;
        read_diags(ref, &eta, &has_eta, &lambda, &has_lambda, &units, &mean);
        for (int k = 0; k < CR; k++) {
            const wjob *j = &jobs[k];
            for (size_t i = 0; i < CN; i++)
                if (g[s].rank[i] == k)
                    ck_assert_msg(close_weight(j->w[s][i], rw[i]),
                                  "set %d %g mode %d: rank %d step %d pair %zu: weight %.17g, "
                                  "single process %.17g",
                                  (int)c->set, c->param, (int)c->mode, k, s, i, j->w[s][i], rw[i]);
            /* the stochastic KL-radius value eta + lambda (E exp(z) - 1) rounds
             * its mean to 1e-16 and scales that by lambda (1e8 at radius 0) */
            double vtol = c->mode == DRPO_MODE_STOCHASTIC && has_lambda && isfinite(lambda)
                              ? 4e-16 * lambda
                              : 0.0;
            ck_assert_msg(close_loss_units(j->value[s], rv) || fabs(j->value[s] - rv) <= vtol,
                          "set %d %g mode %d: rank %d step %d: value %.17g vs %.17g",
                          (int)c->set, c->param, (int)c->mode, k, s, j->value[s], rv);
            ck_assert_int_eq(j->has_eta[s], has_eta);
            ck_assert_int_eq(j->has_lambda[s], has_lambda);
            if (has_eta)
                ck_assert_msg(close_loss_units(j->eta[s], eta),
                              "set %d %g mode %d: rank %d step %d: eta %.17g vs %.17g",
                              (int)c->set, c->param, (int)c->mode, k, s, j->eta[s], eta);
            if (has_lambda)
                ck_assert_msg(close_loss_units(j->lambda[s], lambda),
                              "set %d %g mode %d: rank %d step %d: lambda %.17g vs %.17g",
                              (int)c->set, c->param, (int)c->mode, k, s, j->lambda[s], lambda);
            ck_assert_msg(j->units[s] == units, "rank %d step %d: %g units, single process %g",
                          k, s, j->units[s], units);
            ck_assert_msg(close_loss_units(j->mean[s], mean), "rank %d: mean loss", k);
        }
    }
    for (int k = 0; k < CR; k++) {
        drpo_trainer_free(jobs[k].t);
        drpo_objective_free(o[k]);
    }
    drpo_batch_free(ub);
    drpo_trainer_free(ref);
    drpo_objective_free(ref_o);
    pthread_barrier_destroy(&w.bar);
}

static const int32_t cmodes[] = {DRPO_MODE_EXACT, DRPO_MODE_STOCHASTIC, DRPO_MODE_GROUP};

/* _i: the form; every parameter of the form, every mode. */
START_TEST(test_weights_match_single_process)
{
    const tu_form *f = &tu_forms[_i];
    double params[TU_MAXPARAMS];
    size_t np = tu_params(f, params);
    for (size_t m = 0; m < sizeof cmodes / sizeof cmodes[0]; m++)
        for (size_t p = 0; p < np; p++) {
            if (cmodes[m] == DRPO_MODE_GROUP && f->key == DRPO_PARAM_PENALTY)
                continue; /* group mode keeps its weights in a ball */
            wcase_c c = {f->set, f->key, params[p], cmodes[m]};
            weights_case(&c, 1000 + 31 * (uint64_t)_i + 7 * p + m, 0);
        }
}
END_TEST

/* A rank whose shard is empty takes part in the collectives: the other
 * ranks get the single-process weights of the union batch, no one waits. */
START_TEST(test_empty_shard)
{
    const wcase_c cases[] = {{DRPO_SET_KL, DRPO_PARAM_RADIUS, 0.2, DRPO_MODE_EXACT},
                             {DRPO_SET_CVAR, DRPO_PARAM_LEVEL, 0.3, DRPO_MODE_STOCHASTIC},
                             {DRPO_SET_CHI2, DRPO_PARAM_RADIUS, 0.5, DRPO_MODE_GROUP}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
        weights_case(&cases[k], 77 + k, 1);
}
END_TEST

/* ---- full steps with a model, and failing collectives ------------------ */

#define CD 3 /* model dimension */

/* The test model of test_model.h; backward all-reduces its double gradient
 * through the fake collective (rank NULL: single process) before writing
 * floats, as a data-parallel host must. */
typedef struct cmodel {
    tm_bt *bt;
    fake_rank *rank;
} cmodel;

static int cm_forward(void *user, const float *params, const drpo_batch *b, double *loss)
{
    const cmodel *m = user;
    double theta[CD];
    for (size_t i = 0; i < CD; i++)
        theta[i] = params[i];
    for (size_t j = 0; j < drpo_batch_size(b); j++)
        loss[j] = tm_bt_loss(m->bt, theta, drpo_batch_host_index(b, j));
    return 0;
}

static int cm_backward(void *user, const float *params, const drpo_batch *b, const double *w,
                       float *grad)
{
    cmodel *m = user;
    double theta[CD], g[CD] = {0};
    for (size_t i = 0; i < CD; i++)
        theta[i] = params[i];
    for (size_t j = 0; j < drpo_batch_size(b); j++)
        tm_bt_add_grad(m->bt, theta, drpo_batch_host_index(b, j), w[j], g);
    if (m->rank) {
        int rc = fk_allreduce_sum(m->rank, g, CD);
        if (rc)
            return rc;
    }
    for (size_t i = 0; i < CD; i++)
        grad[i] = (float)g[i];
    return 0;
}

static drpo_model *cm_model(cmodel *m)
{
    drpo_model_callbacks cb;
    memset(&cb, 0, sizeof cb);
    cb.struct_size = sizeof cb;
    cb.forward = cm_forward;
    cb.backward = cm_backward;
    drpo_model *model = NULL;
    ck_assert_int_eq(drpo_model_create(&model, CD, &cb, m), DRPO_OK);
    return model;
}

/* The global batch of step s over the data points: pair i is point
 * (7 s + 5 i) mod n_data, its prompt (point / 3) mod CP. */
static void step_gbatch(gbatch *g, int s, tu_rng *r, size_t n_data)
{
    make_gbatch(g, r, CR, 0);
    for (size_t i = 0; i < CN; i++) {
        size_t h = (7 * (size_t)s + 5 * i) % n_data;
        g->key[i] = 0x2000 + (h / 3) % CP;
        g->group[i] = (int32_t)(g->key[i] % CGROUPS);
        g->loss[i] = (double)h; /* the host index, for shard() */
    }
}

typedef struct sjob {
    fake_rank *me;
    drpo_trainer *t;
    const gbatch *g;
    drpo_status st;
} sjob;

static void *step_rank(void *arg)
{
    sjob *j = arg;
    drpo_batch *b = NULL;
    j->st = drpo_batch_create(&b);
    if (j->st != DRPO_OK)
        return NULL;
    for (size_t i = 0; i < CN; i++)
        if (j->g->rank[i] == j->me->rank)
            drpo_batch_add_key(b, j->g->key[i], j->g->group[i], (int64_t)j->g->loss[i]);
    j->st = drpo_trainer_step(j->t, b);
    drpo_batch_free(b);
    return NULL;
}

typedef struct scase_c {
    const char *name;
    int32_t set, key;
    double param;
    int32_t mode;
} scase_c;

static const scase_c scases_c[] = {
    {"kl radius exact", DRPO_SET_KL, DRPO_PARAM_RADIUS, 0.3, DRPO_MODE_EXACT},
    {"cvar exact", DRPO_SET_CVAR, DRPO_PARAM_LEVEL, 0.3, DRPO_MODE_EXACT},
    {"cvar stochastic", DRPO_SET_CVAR, DRPO_PARAM_LEVEL, 0.3, DRPO_MODE_STOCHASTIC},
    {"chi2 penalty stochastic", DRPO_SET_CHI2, DRPO_PARAM_PENALTY, 0.5, DRPO_MODE_STOCHASTIC},
    {"tv radius group", DRPO_SET_TV, DRPO_PARAM_RADIUS, 0.3, DRPO_MODE_GROUP},
};

/* Steps of R ranks with a model track the single-process steps on the union
 * batches; before each step after the first, the collective fails at each
 * of its calls in turn (every rank alike), and each such step must fail with
 * DRPO_ERR_CALLBACK, the code kept, leaving parameters, step count and duals
 * as they were (the later steps would otherwise drift from the reference). */
START_TEST(test_steps_and_failing_collective)
{
    const scase_c *c = &scases_c[_i];
    int32_t groups = c->mode == DRPO_MODE_GROUP ? CGROUPS : 0;
    const double dir[CD] = {1.0, -0.5, 0.25};
    tu_rng r;
    tu_rng_seed(&r, 4242 + (uint64_t)_i);
    tm_bt bt;
    tm_bt_init(&bt, CD, 90);
    tm_bt_fill(&bt, &r, 0, 90, dir, 2.0, DRPO_GROUP_NONE);

    cmodel ref_m = {&bt, NULL};
    drpo_model *ref_model = cm_model(&ref_m);
    drpo_objective *ref_o = make_objective(c->set, c->key, c->param, c->mode, groups);
    drpo_trainer *ref = NULL;
    ck_assert_int_eq(drpo_trainer_create(&ref, ref_model, ref_o), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_set(ref, DRPO_TRAIN_LR, 0.2), DRPO_OK);

    fake_world w;
    fake_rank ranks[CR];
    world_open(&w, ranks, CR);
    cmodel ms[CR];
    drpo_model *models[CR];
    drpo_objective *o[CR];
    sjob jobs[CR];
    for (int k = 0; k < CR; k++) {
        ms[k].bt = &bt; /* read only in the callbacks */
        ms[k].rank = &ranks[k];
        models[k] = cm_model(&ms[k]);
        o[k] = make_objective(c->set, c->key, c->param, c->mode, groups);
        attach(o[k], &ranks[k]);
        jobs[k].me = &ranks[k];
        ck_assert_int_eq(drpo_trainer_create(&jobs[k].t, models[k], o[k]), DRPO_OK);
        ck_assert_int_eq(drpo_trainer_set(jobs[k].t, DRPO_TRAIN_LR, 0.2), DRPO_OK);
    }
    drpo_batch *ub = NULL;
    ck_assert_int_eq(drpo_batch_create(&ub), DRPO_OK);
    int failures = 0;
    for (int s = 0; s < 6; s++) {
        gbatch g;
        step_gbatch(&g, s, &r, bt.n_data);
        for (int k = 0; k < CR; k++)
            jobs[k].g = &g;
        for (long at = 1; s > 0; at++) { /* inject at call `at` of this step */
            float before[CR][CD];
            double steps_before;
            for (int k = 0; k < CR; k++)
                memcpy(before[k], drpo_model_params(models[k]), sizeof before[k]);
            ck_assert_int_eq(drpo_trainer_diag(jobs[0].t, DRPO_TDIAG_STEPS, &steps_before),
                             DRPO_OK);
            w.fail_at = ranks[0].calls + at;
            run_ranks(CR, step_rank, jobs, sizeof jobs[0]);
            w.fail_at = 0;
            if (jobs[0].st == DRPO_OK) { /* past the last call: the step went through */
                for (int k = 0; k < CR; k++)
                    ck_assert_int_eq(jobs[k].st, DRPO_OK);
                goto stepped;
            }
            failures++;
            for (int k = 0; k < CR; k++) {
                double code, steps;
                ck_assert_msg(jobs[k].st == DRPO_ERR_CALLBACK,
                              "%s: rank %d, collective failing at call %ld: status %d (%s)",
                              c->name, k, at, (int)jobs[k].st, drpo_trainer_last_error(jobs[k].t));
                ck_assert_int_eq(drpo_trainer_diag(jobs[k].t, DRPO_TDIAG_CALLBACK_CODE, &code),
                                 DRPO_OK);
                ck_assert_int_eq((int)code, CFAIL_CODE);
                ck_assert_int_eq(drpo_trainer_diag(jobs[k].t, DRPO_TDIAG_STEPS, &steps),
                                 DRPO_OK);
                ck_assert(steps == steps_before);
                ck_assert_msg(memcmp(before[k], drpo_model_params(models[k]),
                                     sizeof before[k]) == 0,
                              "%s: rank %d: parameters changed by a failed step", c->name, k);
            }
            ck_assert_int_lt(at, 20);
        }
        run_ranks(CR, step_rank, jobs, sizeof jobs[0]);
        for (int k = 0; k < CR; k++)
            ck_assert_msg(jobs[k].st == DRPO_OK, "%s: rank %d step %d: %s", c->name, k, s,
                          drpo_trainer_last_error(jobs[k].t));
    stepped:
        ck_assert_msg(!w.mismatch, "allgatherv: receive counts differ from the sent ones");
        drpo_batch_clear(ub);
        for (size_t i = 0; i < CN; i++)
            ck_assert_int_eq(drpo_batch_add_key(ub, g.key[i], g.group[i], (int64_t)g.loss[i]),
                             DRPO_OK);
        ck_assert_int_eq(drpo_trainer_step(ref, ub), DRPO_OK);
        const float *rp = drpo_model_params(ref_model);
        for (int k = 0; k < CR; k++) {
            const float *p = drpo_model_params(models[k]);
            /* the same global gradient bits on every rank */
            ck_assert(memcmp(p, drpo_model_params(models[0]), CD * sizeof *p) == 0);
            for (size_t i = 0; i < CD; i++)
                ck_assert_msg(close_rel(p[i], rp[i], 1e-6),
                              "%s: rank %d step %d param %zu: %.9g, single process %.9g",
                              c->name, k, s, i, (double)p[i], (double)rp[i]);
            double e1, e2;
            if (drpo_trainer_diag(ref, DRPO_TDIAG_ETA, &e1) == DRPO_OK) {
                ck_assert_int_eq(drpo_trainer_diag(jobs[k].t, DRPO_TDIAG_ETA, &e2), DRPO_OK);
                ck_assert_msg(close_rel(e1, e2, 1e-9), "%s: eta %.17g vs %.17g", c->name, e2, e1);
            }
        }
    }
    ck_assert_int_ge(failures, 5 * 3); /* every step had its collective calls to fail */

    for (int k = 0; k < CR; k++) {
        drpo_trainer_free(jobs[k].t);
        drpo_objective_free(o[k]);
        drpo_model_free(models[k]);
    }
    drpo_batch_free(ub);
    drpo_trainer_free(ref);
    drpo_objective_free(ref_o);
    drpo_model_free(ref_model);
    tm_bt_free(&bt);
    pthread_barrier_destroy(&w.bar);
}
END_TEST

/* A collective of size 1 is the single-process path; bad collectives are
 * refused and leave the objective as it was. */
START_TEST(test_collective_arguments)
{
    drpo_objective *o = tm_objective(DRPO_SET_KL, DRPO_PARAM_RADIUS, 0.2, DRPO_MODE_EXACT, 0.1, 0,
                                     NULL);
    fake_world w;
    fake_rank ranks[1];
    world_open(&w, ranks, 1);
    drpo_collective c;
    memset(&c, 0, sizeof c);
    c.struct_size = sizeof c;
    c.rank = 0;
    c.size = 1;
    c.allgather_u64 = fk_allgather_u64;
    c.allgatherv = fk_allgatherv;
    c.allreduce_sum = fk_allreduce_sum;
    ck_assert_int_eq(drpo_objective_set_collective(NULL, &c, NULL), DRPO_ERR_NULL);
    drpo_collective bad = c;
    bad.struct_size = 4;
    ck_assert_int_eq(drpo_objective_set_collective(o, &bad, NULL), DRPO_ERR_SIZE);
    bad = c;
    bad.rank = 1;
    ck_assert_int_eq(drpo_objective_set_collective(o, &bad, NULL), DRPO_ERR_PARAM_RANGE);
    bad = c;
    bad.allgatherv = NULL;
    ck_assert_int_eq(drpo_objective_set_collective(o, &bad, NULL), DRPO_ERR_PARAM_RANGE);
    ck_assert_int_eq(drpo_objective_set_collective(o, &c, &ranks[0]), DRPO_OK);

    drpo_trainer *t = NULL;
    ck_assert_int_eq(drpo_trainer_create(&t, NULL, o), DRPO_OK);
    drpo_batch *b = NULL;
    ck_assert_int_eq(drpo_batch_create(&b), DRPO_OK);
    const double loss[3] = {0.5, 2.0, -1.0};
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(drpo_batch_add_key(b, (uint64_t)i, DRPO_GROUP_NONE, i), DRPO_OK);
    double wgt[3];
    ck_assert_int_eq(drpo_trainer_weights(t, b, loss, wgt, NULL), DRPO_OK);
    ck_assert_int_eq(ranks[0].calls, 0); /* size 1: no collective calls */
    ck_assert_int_eq(drpo_objective_set_collective(o, NULL, NULL), DRPO_OK); /* detach */
    drpo_batch_free(b);
    drpo_trainer_free(t);
    drpo_objective_free(o);
    pthread_barrier_destroy(&w.bar);
}
END_TEST

Suite *suite_collective(void)
{
    Suite *s = suite_create("collective");
    TCase *tc = tcase_create("collective");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_weights_match_single_process, 0, (int)tu_nforms);
    tcase_add_loop_test(tc, test_steps_and_failing_collective, 0,
                        (int)(sizeof scases_c / sizeof scases_c[0]));
    tcase_add_test(tc, test_collective_arguments);
    tcase_add_test(tc, test_empty_shard);
    suite_add_tcase(s, tc);
    return s;
}

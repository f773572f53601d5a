/* test_faults.c - faults injected into a whole training scenario (issue 7):
 *  - allocation failure: for every k, the k-th allocation of a full scenario
 *    (create objectives, models, trainers and batches; solve; train steps in
 *    exact, stochastic and group mode with callback and built-in models;
 *    weights only; evaluate; save; load) fails.  The call that made it must
 *    return DRPO_ERR_NOMEM (creation: and no handle), leave its state
 *    bitwise as it was, and succeed when retried; the run must then end
 *    bitwise as the run without a failure, and with every handle freed no
 *    allocation may be live;
 *  - a process killed (SIGKILL) while it saves checkpoints in a loop: the
 *    file at the path is always absent or a valid checkpoint equal to one of
 *    the saved states, and at most the killed save's temporary file is left;
 *  - regressions of what the fuzzers found (tests/fuzz). */
#define _GNU_SOURCE /* mkdtemp */
#include "check_util.h"
#include "suites.h"
#include "test_model.h"

#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

/* ---- an allocator that fails the k-th allocation ------------------------- */

typedef struct inj {
    long count;   /* allocations counted so far */
    long fail_at; /* fail this one (0: never) */
    long live;
    int paused;   /* the test's own snapshots: neither counted nor failed */
} inj;

static void *inj_malloc(void *user, size_t size)
{
    inj *a = user;
    if (!a->paused && ++a->count == a->fail_at)
        return NULL;
    void *p = malloc(size);
    a->live += p != NULL;
    return p;
}

static void *inj_realloc(void *user, void *ptr, size_t size)
{
    inj *a = user;
    if (!a->paused && ++a->count == a->fail_at)
        return NULL;
    void *p = realloc(ptr, size);
    a->live += p && !ptr;
    return p;
}

static void inj_free(void *user, void *ptr)
{
    inj *a = user;
    ck_assert_ptr_nonnull(ptr); /* the library never frees NULL */
    a->live--;
    free(ptr);
}

/* A scratch directory on tmpfs where there is one (snapshots fsync). */
static void fast_tmpdir(char *buf)
{
    struct stat sb;
    if (stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) && access("/dev/shm", W_OK) == 0) {
        snprintf(buf, TM_PATH, "/dev/shm/drpo-faults-XXXXXX");
        if (mkdtemp(buf))
            return;
    }
    tm_tmpdir(buf);
}

/* ---- the scenario ------------------------------------------------------------ */

#define NTR 5 /* trainers: exact, stochastic, group (callbacks), two built-in */
#define MAXOPS 512
#define NSOLVE 40
#define D 4
#define NDATA 96
#define SP_PROMPTS 6
#define SP_K 3

typedef struct scen {
    inj a;
    drpo_allocator al;
    long k;                /* the allocation to fail; 0: none (the reference run) */
    int op;                /* index of the current call */
    long ref_end[MAXOPS];  /* the reference run: allocations counted after each call */
    int record;
    int failures;
    char dir[TM_PATH];
    /* data */
    tm_bt bt;
    float diff[NDATA * D];
    size_t sp_off[SP_PROMPTS + 1];
    float sp_feat[SP_PROMPTS * SP_K * D];
    double sp_rew[SP_PROMPTS * SP_K];
    /* handles */
    drpo_objective *solo;
    drpo_batch *b, *bsp;
    drpo_model *cbm, *plm, *spm;
    drpo_objective *o[NTR];
    drpo_trainer *t[NTR];
    drpo_trainer *loaded;
    drpo_objective *loaded_o;
    double q[NSOLVE], value;
} scen;

/* Whether the current call is the one whose allocations include the k-th. */
static int hits(const scen *s)
{
    return s->k > 0 && !s->record && s->a.count < s->k && s->ref_end[s->op] >= s->k;
}

static void end_call(scen *s)
{
    if (s->record)
        s->ref_end[s->op] = s->a.count;
    s->op++;
    ck_assert_int_lt(s->op, MAXOPS);
}

/* The trainer's state (its checkpoint bytes), taken without counting. */
static unsigned char *state_of(scen *s, const drpo_trainer *t, size_t *len)
{
    s->a.paused = 1;
    unsigned char *bytes = tm_state_bytes(t, s->dir, len);
    s->a.paused = 0;
    return bytes;
}

/* Creation: on an injected failure NOMEM, no handle, nothing live more. */
#define CREATE(s, out, call)                                                                    \
    do {                                                                                        \
        int hit_ = hits(s);                                                                     \
        long live_ = (s)->a.live;                                                               \
        drpo_status st_ = (call);                                                               \
        if (hit_) {                                                                             \
            ck_assert_msg(st_ == DRPO_ERR_NOMEM, "k=%ld op %d (%s): status %d", (s)->k,         \
                          (s)->op, #call, (int)st_);                                            \
            ck_assert_ptr_null(out);                                                            \
            ck_assert_int_eq((s)->a.live, live_);                                               \
            (s)->failures++;                                                                    \
            st_ = (call);                                                                       \
        }                                                                                       \
        ck_assert_msg(st_ == DRPO_OK, "op %d (%s): status %d", (s)->op, #call, (int)st_);       \
        end_call(s);                                                                            \
    } while (0)

/* A call on a trainer: on an injected failure NOMEM, its state and the
 * model's parameters bitwise unchanged. */
#define ON_TRAINER(s, t, model, call)                                                           \
    do {                                                                                        \
        int hit_ = hits(s);                                                                     \
        unsigned char *before_ = NULL;                                                          \
        size_t blen_ = 0;                                                                       \
        float pbefore_[64];                                                                     \
        size_t np_ = (model) ? drpo_model_n_params(model) : 0;                                  \
        if (hit_) {                                                                             \
            before_ = state_of(s, t, &blen_);                                                   \
            memcpy(pbefore_, drpo_model_params(model), np_ * sizeof(float));                    \
        }                                                                                       \
        drpo_status st_ = (call);                                                               \
        if (hit_) {                                                                             \
            ck_assert_msg(st_ == DRPO_ERR_NOMEM, "k=%ld op %d (%s): status %d", (s)->k,         \
                          (s)->op, #call, (int)st_);                                            \
            size_t alen_;                                                                       \
            unsigned char *after_ = state_of(s, t, &alen_);                                     \
            ck_assert_msg(alen_ == blen_ && memcmp(after_, before_, blen_) == 0,                \
                          "k=%ld op %d (%s): the state changed", (s)->k, (s)->op, #call);                    \
            ck_assert_msg(memcmp(pbefore_, drpo_model_params(model), np_ * sizeof(float)) == 0, \
                          "k=%ld (%s): parameters changed", (s)->k, #call);                     \
            free(before_);                                                                      \
            free(after_);                                                                       \
            (s)->failures++;                                                                    \
            st_ = (call);                                                                       \
        }                                                                                       \
        ck_assert_msg(st_ == DRPO_OK, "op %d (%s): status %d", (s)->op, #call, (int)st_);       \
        end_call(s);                                                                            \
    } while (0)

static void make_data(scen *s)
{
    tm_bt_init(&s->bt, D, NDATA);
    tu_rng r;
    tu_rng_seed(&r, 7);
    const double dir[D] = {1.0, -0.5, 0.25, 0.8};
    tm_bt_fill(&s->bt, &r, 0, NDATA, dir, 2.0, DRPO_GROUP_NONE);
    for (size_t h = 0; h < NDATA; h++) {
        s->bt.group[h] = (int32_t)(h % 3);
        for (size_t i = 0; i < D; i++)
            s->diff[h * D + i] = (float)s->bt.x[h * D + i];
    }
    for (size_t i = 0; i <= SP_PROMPTS; i++)
        s->sp_off[i] = i * SP_K;
    for (size_t i = 0; i < SP_PROMPTS * SP_K * D; i++)
        s->sp_feat[i] = (float)(tu_unif(&r) * 2.0 - 1.0);
    for (size_t i = 0; i < SP_PROMPTS * SP_K; i++)
        s->sp_rew[i] = tu_unif(&r) * 3.0;
}

/* A batch of `units` prompts of two pairs from step `step`, by prompt bytes. */
static void fill_batch(scen *s, int step, size_t units)
{
    drpo_batch_clear(s->b);
    for (size_t u = 0; u < units; u++) {
        size_t unit = ((size_t)step * 11 + u * 5) % (NDATA / 2);
        char prompt[32];
        int len = snprintf(prompt, sizeof prompt, "prompt %zu", unit);
        for (size_t j = 0; j < 2; j++) {
            size_t h = 2 * unit + j;
            /* batch_add may grow the batch: a failure leaves it unchanged */
            int hit = hits(s);
            size_t n0 = drpo_batch_size(s->b), u0 = drpo_batch_units(s->b);
            drpo_status st = drpo_batch_add(s->b, prompt, (size_t)len, s->bt.group[h], (int64_t)h);
            if (hit) {
                ck_assert_int_eq(st, DRPO_ERR_NOMEM);
                ck_assert_uint_eq(drpo_batch_size(s->b), n0);
                ck_assert_uint_eq(drpo_batch_units(s->b), u0);
                s->failures++;
                st = drpo_batch_add(s->b, prompt, (size_t)len, s->bt.group[h], (int64_t)h);
            }
            ck_assert_int_eq(st, DRPO_OK);
            end_call(s);
        }
    }
}

static const struct {
    int32_t set, key;
    double param;
    int32_t mode, groups, opt;
} tcfg[NTR] = {
    {DRPO_SET_CHI2, DRPO_PARAM_RADIUS, 0.5, DRPO_MODE_EXACT, 0, DRPO_OPT_ADAMW},
    {DRPO_SET_KL, DRPO_PARAM_RADIUS, 0.2, DRPO_MODE_STOCHASTIC, 0, DRPO_OPT_MOMENTUM},
    {DRPO_SET_CVAR, DRPO_PARAM_LEVEL, 0.5, DRPO_MODE_GROUP, 3, DRPO_OPT_ADAMW},
    {DRPO_SET_KL, DRPO_PARAM_PENALTY, 0.5, DRPO_MODE_EXACT, 3, DRPO_OPT_ADAMW},
    {DRPO_SET_CHI2, DRPO_PARAM_PENALTY, 0.5, DRPO_MODE_STOCHASTIC, 0, DRPO_OPT_SGD},
};

static void open_trainer(scen *s, int i, drpo_model *m)
{
    CREATE(s, s->o[i], drpo_objective_create_with_allocator(&s->o[i], tcfg[i].set, &s->al));
    ck_assert_int_eq(drpo_objective_set(s->o[i], tcfg[i].key, tcfg[i].param), DRPO_OK);
    ck_assert_int_eq(drpo_objective_set(s->o[i], DRPO_PARAM_GROUPS, tcfg[i].groups), DRPO_OK);
    ck_assert_int_eq(drpo_objective_set(s->o[i], DRPO_PARAM_MODE, tcfg[i].mode), DRPO_OK);
    CREATE(s, s->t[i], drpo_trainer_create_with_allocator(&s->t[i], m, s->o[i], &s->al));
    ck_assert_int_eq(drpo_trainer_set(s->t[i], DRPO_TRAIN_OPTIMIZER, tcfg[i].opt), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_set(s->t[i], DRPO_TRAIN_LR, 0.05), DRPO_OK);
}

/* The whole scenario; returns the final state: every trainer's checkpoint
 * bytes and every model's parameters, concatenated (malloc'd). */
static unsigned char *scenario(scen *s, size_t *out_len)
{
    s->a.count = s->a.live = 0;
    s->a.fail_at = s->k;
    s->op = 0;
    s->failures = 0;
    s->al = (drpo_allocator){sizeof(drpo_allocator), inj_malloc, inj_realloc, inj_free, &s->a};

    /* an objective on its own: create, solve twice (scratch grows), diag */
    CREATE(s, s->solo, drpo_objective_create_with_allocator(&s->solo, DRPO_SET_TV, &s->al));
    ck_assert_int_eq(drpo_objective_set(s->solo, DRPO_PARAM_RADIUS, 0.3), DRPO_OK);
    double loss[NSOLVE];
    for (size_t i = 0; i < NSOLVE; i++)
        loss[i] = sin((double)i);
    for (size_t n = 10; n <= NSOLVE; n += 30) {
        int hit = hits(s);
        double q[NSOLVE], v, before;
        tu_fill_sentinel(q, NSOLVE);
        tu_fill_sentinel(&v, 1);
        drpo_status prev = drpo_objective_diag(s->solo, DRPO_DIAG_VALUE, &before);
        drpo_status st = drpo_objective_solve(s->solo, n, loss, NULL, q, &v);
        if (hit) {
            ck_assert_int_eq(st, DRPO_ERR_NOMEM);
            ck_assert(tu_is_sentinel(q, NSOLVE) && tu_is_sentinel(&v, 1));
            double after;
            ck_assert_int_eq(drpo_objective_diag(s->solo, DRPO_DIAG_VALUE, &after), prev);
            ck_assert(prev != DRPO_OK || memcmp(&after, &before, sizeof after) == 0);
            s->failures++;
            st = drpo_objective_solve(s->solo, n, loss, NULL, q, &v);
        }
        ck_assert_int_eq(st, DRPO_OK);
        end_call(s);
        memcpy(s->q, q, sizeof q);
        s->value = v;
    }

    /* batches and models */
    CREATE(s, s->b, drpo_batch_create_with_allocator(&s->b, &s->al));
    CREATE(s, s->bsp, drpo_batch_create_with_allocator(&s->bsp, &s->al));
    for (size_t i = 0; i < 2 * SP_PROMPTS; i++) {
        int hit = hits(s);
        size_t n0 = drpo_batch_size(s->bsp);
        drpo_status st = drpo_batch_add_key(s->bsp, i % SP_PROMPTS, DRPO_GROUP_NONE,
                                            (int64_t)(i % SP_PROMPTS));
        if (hit) {
            ck_assert_int_eq(st, DRPO_ERR_NOMEM);
            ck_assert_uint_eq(drpo_batch_size(s->bsp), n0);
            s->failures++;
            st = drpo_batch_add_key(s->bsp, i % SP_PROMPTS, DRPO_GROUP_NONE,
                                    (int64_t)(i % SP_PROMPTS));
        }
        ck_assert_int_eq(st, DRPO_OK);
        end_call(s);
    }
    drpo_model_callbacks cb = tm_bt_callbacks();
    CREATE(s, s->cbm, drpo_model_create_with_allocator(&s->cbm, D, &cb, &s->bt, &s->al));
    CREATE(s, s->plm,
           drpo_pairwise_linear_create_with_allocator(&s->plm, D, NDATA, s->diff, DRPO_LOSS_BT,
                                                      1.0, 0.0, NULL, &s->al));
    CREATE(s, s->spm,
           drpo_softmax_policy_create_with_allocator(&s->spm, D, SP_PROMPTS, s->sp_off,
                                                     s->sp_feat, s->sp_rew, NULL, 0.1, &s->al));

    /* trainers: three modes on the callback model, two built-in models */
    drpo_model *models[NTR] = {s->cbm, s->cbm, s->cbm, s->plm, s->spm};
    for (int i = 0; i < NTR; i++)
        open_trainer(s, i, models[i]);
    for (int step = 0; step < 4; step++) {
        fill_batch(s, step, step == 2 ? 20 : 6); /* a larger batch at step 2 */
        for (int i = 0; i < NTR; i++) {
            const drpo_batch *b = i == 4 ? s->bsp : s->b;
            ON_TRAINER(s, s->t[i], models[i], drpo_trainer_step(s->t[i], b));
        }
    }
    /* weights only, evaluate */
    double pl[64], pw[64], v, g;
    for (size_t j = 0; j < drpo_batch_size(s->b); j++)
        pl[j] = 0.25 * (double)(j % 7);
    for (int i = 0; i < 3; i++) {
        ON_TRAINER(s, s->t[i], models[i], drpo_trainer_weights(s->t[i], s->b, pl, pw, &v));
        ON_TRAINER(s, s->t[i], models[i], drpo_trainer_commit(s->t[i]));
    }
    fill_batch(s, 9, 30); /* larger again: evaluate needs more scratch */
    for (int i = 0; i < 4; i++)
        ON_TRAINER(s, s->t[i], models[i], drpo_trainer_evaluate(s->t[i], s->b, &v, &g));

    /* save (a failure leaves the old file or none, and no temporary file),
     * then load into a fresh trainer of the same configuration */
    char path[TM_PATH + 16];
    snprintf(path, sizeof path, "%s/ckpt", s->dir);
    unlink(path);
    {
        int hit = hits(s);
        drpo_status st = drpo_trainer_save(s->t[2], path);
        if (hit) {
            ck_assert_int_eq(st, DRPO_ERR_NOMEM);
            ck_assert_int_ne(access(path, F_OK), 0);
            ck_assert_uint_eq(tm_count_files(s->dir), 0);
            s->failures++;
            st = drpo_trainer_save(s->t[2], path);
        }
        ck_assert_int_eq(st, DRPO_OK);
        end_call(s);
    }
    CREATE(s, s->loaded_o, drpo_objective_create_with_allocator(&s->loaded_o, tcfg[2].set, &s->al));
    ck_assert_int_eq(drpo_objective_set(s->loaded_o, DRPO_PARAM_GROUPS, 3), DRPO_OK);
    ck_assert_int_eq(drpo_objective_set(s->loaded_o, tcfg[2].key, 0.9), DRPO_OK);
    CREATE(s, s->loaded,
           drpo_trainer_create_with_allocator(&s->loaded, s->cbm, s->loaded_o, &s->al));
    ck_assert_int_eq(drpo_trainer_set(s->loaded, DRPO_TRAIN_OPTIMIZER, DRPO_OPT_ADAMW), DRPO_OK);
    ON_TRAINER(s, s->loaded, s->cbm, drpo_trainer_step(s->loaded, s->b)); /* moments exist */
    ON_TRAINER(s, s->loaded, s->cbm, drpo_trainer_load(s->loaded, path));
    ON_TRAINER(s, s->loaded, s->cbm, drpo_trainer_step(s->loaded, s->b));
    unlink(path);

    /* the final state */
    size_t cap = 1 << 16, len = 0;
    unsigned char *out = malloc(cap);
    drpo_trainer *all[NTR + 1];
    memcpy(all, s->t, sizeof s->t);
    all[NTR] = s->loaded;
    for (int i = 0; i <= NTR; i++) {
        size_t n;
        unsigned char *bytes = state_of(s, all[i], &n);
        ck_assert_uint_le(len + n, cap);
        memcpy(out + len, bytes, n);
        len += n;
        free(bytes);
    }
    drpo_model *ms[3] = {s->cbm, s->plm, s->spm};
    for (int i = 0; i < 3; i++) {
        memcpy(out + len, drpo_model_params(ms[i]), D * sizeof(float));
        len += D * sizeof(float);
    }
    memcpy(out + len, s->q, sizeof s->q);
    len += sizeof s->q;
    *out_len = len;

    for (int i = 0; i < NTR; i++) {
        drpo_trainer_free(s->t[i]);
        drpo_objective_free(s->o[i]);
    }
    drpo_trainer_free(s->loaded);
    drpo_objective_free(s->loaded_o);
    drpo_model_free(s->cbm);
    drpo_model_free(s->plm);
    drpo_model_free(s->spm);
    drpo_batch_free(s->b);
    drpo_batch_free(s->bsp);
    drpo_objective_free(s->solo);
    ck_assert_msg(s->a.live == 0, "k=%ld: %ld allocations leaked", s->k, s->a.live);
    return out;
}

START_TEST(test_every_allocation_fails_once)
{
    static scen s; /* large; and the tests' own snapshots go through `paused` */
    memset(&s, 0, sizeof s);
    make_data(&s);
    fast_tmpdir(s.dir);
    s.record = 1;
    size_t ref_len;
    unsigned char *ref = scenario(&s, &ref_len);
    s.record = 0;
    long total = s.a.count;
    ck_assert_int_gt(total, 30);
    for (long k = 1; k <= total; k++) {
        s.k = k;
        size_t len;
        unsigned char *got = scenario(&s, &len);
        ck_assert_msg(s.failures == 1, "k=%ld: %d calls saw the failure", k, s.failures);
        ck_assert_msg(len == ref_len && memcmp(got, ref, len) == 0,
                      "k=%ld: the run with a failed allocation ended differently", k);
        free(got);
    }
    free(ref);
    tm_bt_free(&s.bt);
    tm_rmdir(s.dir);
}
END_TEST

/* ---- a process killed while saving ------------------------------------------- */

#define KILL_PARAMS (1u << 20) /* 4 MiB of parameters: a save takes a while */

static int noop_fwd(void *u, const float *p, const drpo_batch *b, double *l)
{
    (void)u, (void)p, (void)b, (void)l;
    return 0;
}
static int noop_bwd(void *u, const float *p, const drpo_batch *b, const double *w, float *g)
{
    (void)u, (void)p, (void)b, (void)w, (void)g;
    return 0;
}

/* Parameters of save number v: p[i] = v + i / 2^20 (exact in float for v < 8). */
static float kill_value(uint32_t v, size_t i) { return (float)v + (float)i * 0x1p-20f; }

/* The trainer both sides use: KILL_PARAMS parameters, KL radius 0.1. */
static drpo_status kill_setup(drpo_model **m, drpo_objective **o, drpo_trainer **t)
{
    drpo_model_callbacks cb = {sizeof cb, noop_fwd, noop_bwd, NULL};
    drpo_status st = drpo_model_create(m, KILL_PARAMS, &cb, NULL);
    if (st == DRPO_OK)
        st = drpo_objective_create(o, DRPO_SET_KL);
    if (st == DRPO_OK)
        st = drpo_objective_set(*o, DRPO_PARAM_RADIUS, 0.1);
    if (st == DRPO_OK)
        st = drpo_trainer_create(t, *m, *o);
    return st;
}

static void kill_child(const char *path)
{
    drpo_model *m = NULL;
    drpo_objective *o = NULL;
    drpo_trainer *t = NULL;
    if (kill_setup(&m, &o, &t) != DRPO_OK)
        _exit(2);
    for (uint32_t v = 1;; v = v % 7 + 1) {
        float *p = drpo_model_params(m);
        for (size_t i = 0; i < KILL_PARAMS; i++)
            p[i] = kill_value(v, i);
        if (drpo_trainer_save(t, path) != DRPO_OK)
            _exit(3);
    }
}

START_TEST(test_killed_mid_save)
{
    char dir[TM_PATH], path[TM_PATH + 16];
    tm_tmpdir(dir); /* a real file system: the fsync and rename matter here */
    snprintf(path, sizeof path, "%s/ckpt", dir);
    drpo_model *m = NULL;
    drpo_objective *o = NULL;
    drpo_trainer *t = NULL;
    ck_assert_int_eq(kill_setup(&m, &o, &t), DRPO_OK);
    unsigned seed = 12345; /* the kill times still vary with the machine's speed */
    for (int round = 0; round < 12; round++) {
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0)
            kill_child(path);
        /* a random moment: 0 .. 150 ms (a save of 4 MiB takes a few ms to
         * tens of ms, so kills land before, inside and between saves) */
        struct timespec ts = {0, (long)(rand_r(&seed) % 150) * 1000000L};
        nanosleep(&ts, NULL);
        ck_assert_int_eq(kill(pid, SIGKILL), 0);
        int wst;
        ck_assert_int_eq(waitpid(pid, &wst, 0), pid);
        ck_assert_msg(WIFSIGNALED(wst), "the saving child failed by itself (status %d)", wst);
        /* the file: absent, or valid and one of the saved states */
        drpo_status st = drpo_trainer_load(t, path);
        if (!(st == DRPO_ERR_IO && access(path, F_OK) != 0)) { /* absent is fine */
            ck_assert_msg(st == DRPO_OK, "round %d: a killed save left a file that loads with %d",
                          round, (int)st);
            const float *p = drpo_model_params(m);
            uint32_t v = (uint32_t)p[0];
            ck_assert(v >= 1 && v <= 7);
            for (size_t i = 0; i < KILL_PARAMS; i++)
                if (p[i] != kill_value(v, i))
                    ck_abort_msg("round %d: the loaded file mixes states (param %zu)", round, i);
        }
        /* only the killed save's temporary file may be left (its name is
         * <path>.tmp.XXXXXX); remove it, as a restarting program would */
        DIR *d = opendir(dir);
        struct dirent *e;
        int temps = 0;
        while ((e = readdir(d)) != NULL) {
            if (strncmp(e->d_name, "ckpt.tmp.", 9) == 0) {
                char tp[2 * TM_PATH];
                snprintf(tp, sizeof tp, "%s/%s", dir, e->d_name);
                unlink(tp);
                temps++;
            } else {
                ck_assert(!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
                          !strcmp(e->d_name, "ckpt"));
            }
        }
        closedir(d);
        ck_assert_int_le(temps, 1);
    }
    drpo_trainer_free(t);
    drpo_objective_free(o);
    drpo_model_free(m);
    tm_rmdir(dir);
}
END_TEST

/* ---- regressions of fuzzer findings ---------------------------------------- */

/* fuzz_checkpoint: a file saved before the set's parameter was set loaded as
 * valid into an objective with a parameter, which kept its own: refused now
 * (DRPO_ERR_INCOMPATIBLE, nothing changed); it still loads into an objective
 * without one. */
START_TEST(test_load_unset_parameter)
{
    char dir[TM_PATH], path[TM_PATH + 16];
    tm_tmpdir(dir);
    snprintf(path, sizeof path, "%s/ckpt", dir);
    tm_bt bt;
    tm_bt_init(&bt, D, 8);
    drpo_model *m = tm_bt_model(&bt, NULL);
    drpo_objective *unset = NULL, *set = NULL;
    drpo_trainer *tu = NULL, *ts = NULL;
    ck_assert_int_eq(drpo_objective_create(&unset, DRPO_SET_CHI2), DRPO_OK);
    ck_assert_int_eq(drpo_objective_create(&set, DRPO_SET_CHI2), DRPO_OK);
    ck_assert_int_eq(drpo_objective_set(set, DRPO_PARAM_RADIUS, 0.25), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_create(&tu, m, unset), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_create(&ts, m, set), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_save(tu, path), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_load(ts, path), DRPO_ERR_INCOMPATIBLE);
    double v;
    ck_assert_int_eq(drpo_objective_get(set, DRPO_PARAM_RADIUS, &v), DRPO_OK);
    ck_assert(v == 0.25);
    ck_assert_int_eq(drpo_trainer_load(tu, path), DRPO_OK);
    ck_assert_int_eq(drpo_objective_get(unset, DRPO_PARAM_RADIUS, &v), DRPO_ERR_PARAM_UNSET);
    drpo_trainer_free(tu);
    drpo_trainer_free(ts);
    drpo_objective_free(unset);
    drpo_objective_free(set);
    drpo_model_free(m);
    tm_bt_free(&bt);
    tm_rmdir(dir);
}
END_TEST

/* fuzz_checkpoint (UBSan): a file with a valid checksum whose optimiser
 * option is -1e87 was converted to int32_t before the options were
 * checked; now DRPO_ERR_CORRUPT and nothing changed. */
START_TEST(test_load_bad_optimizer_value)
{
    char dir[TM_PATH], path[TM_PATH + 16];
    tm_tmpdir(dir);
    snprintf(path, sizeof path, "%s/ckpt", dir);
    tm_cfg c = {DRPO_SET_CHI2, DRPO_PARAM_RADIUS, 0.1, DRPO_MODE_EXACT, 0, DRPO_OPT_ADAMW,
                DRPO_SCHED_CONSTANT, "adamw"};
    tm_run r;
    tm_run_open(&r, &c);
    tm_run_batch(&r, 0, 6);
    ck_assert_int_eq(drpo_trainer_step(r.t, r.b), DRPO_OK);
    size_t len;
    unsigned char *bytes = tm_state_bytes(r.t, dir, &len);
    /* header 16 bytes, objective 32: option 1 (the optimiser) at 48 */
    const double bad[] = {-1.013344660907246e+87, 1e300, NAN, -1.0, 2.5, 3.0};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t u;
        memcpy(&u, &bad[i], 8);
        for (int b = 0; b < 8; b++)
            bytes[48 + b] = (unsigned char)(u >> (8 * b));
        XXH64_canonical_t h;
        XXH64_canonicalFromHash(&h, XXH3_64bits(bytes, len - 8));
        memcpy(bytes + len - 8, h.digest, 8);
        FILE *f = fopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(bytes, 1, len, f), len);
        ck_assert_int_eq(fclose(f), 0);
        float before[TM_RUN_D];
        memcpy(before, drpo_model_params(r.model), sizeof before);
        ck_assert_int_eq(drpo_trainer_load(r.t, path), DRPO_ERR_CORRUPT);
        ck_assert(memcmp(before, drpo_model_params(r.model), sizeof before) == 0);
    }
    free(bytes);
    tm_run_close(&r);
    tm_rmdir(dir);
}
END_TEST

/* A FIFO (or anything not a regular file) at the path: refused at once,
 * without blocking in open() for a writer. */
START_TEST(test_load_fifo)
{
    char dir[TM_PATH], path[TM_PATH + 16];
    tm_tmpdir(dir);
    snprintf(path, sizeof path, "%s/fifo", dir);
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    drpo_objective *o = NULL;
    drpo_trainer *t = NULL;
    ck_assert_int_eq(drpo_objective_create(&o, DRPO_SET_NONE), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_create(&t, NULL, o), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_load(t, path), DRPO_ERR_CORRUPT);
    ck_assert_int_eq(drpo_trainer_load(t, dir), DRPO_ERR_CORRUPT); /* a directory */
    drpo_trainer_free(t);
    drpo_objective_free(o);
    unlink(path);
    tm_rmdir(dir);
}
END_TEST

Suite *suite_faults(void)
{
    Suite *s = suite_create("faults");
    TCase *tc = tcase_create("faults");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_every_allocation_fails_once);
    tcase_add_test(tc, test_killed_mid_save);
    tcase_add_test(tc, test_load_unset_parameter);
    tcase_add_test(tc, test_load_fifo);
    tcase_add_test(tc, test_load_bad_optimizer_value);
    suite_add_tcase(s, tc);
    return s;
}

/* test_model.c - the linear Bradley-Terry test model (see test_model.h). */
#define _DEFAULT_SOURCE /* mkdtemp */
#include "test_model.h"

#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void tm_bt_init(tm_bt *m, size_t d, size_t n)
{
    memset(m, 0, sizeof *m);
    m->d = d;
    m->n_data = n;
    m->x = calloc(n * d, sizeof *m->x);
    m->group = malloc(n * sizeof *m->group);
    ck_assert(m->x && m->group);
    for (size_t h = 0; h < n; h++)
        m->group[h] = DRPO_GROUP_NONE;
    m->fail_code = 7;
}

static double gauss(tu_rng *r)
{
    double u = tu_unif(r), v = tu_unif(r);
    return sqrt(-2.0 * log(1.0 - u)) * cos(6.283185307179586 * v);
}

static double sigmoid(double z)
{
    return z >= 0.0 ? 1.0 / (1.0 + exp(-z)) : exp(z) / (1.0 + exp(z));
}

void tm_bt_fill(tm_bt *m, tu_rng *r, size_t from, size_t to, const double *dir, double sharp,
                int32_t group)
{
    for (size_t h = from; h < to; h++) {
        double *x = m->x + h * m->d, z = 0.0;
        for (size_t i = 0; i < m->d; i++) {
            x[i] = gauss(r);
            z += dir[i] * x[i];
        }
        double y = tu_unif(r) < sigmoid(sharp * z) ? 1.0 : -1.0;
        for (size_t i = 0; i < m->d; i++)
            x[i] *= y;
        m->group[h] = group;
    }
}

void tm_bt_free(tm_bt *m)
{
    free(m->x);
    free(m->group);
    m->x = NULL;
    m->group = NULL;
}

static double dot(const tm_bt *m, const double *theta, int64_t h)
{
    const double *x = m->x + (size_t)h * m->d;
    double z = 0.0;
    for (size_t i = 0; i < m->d; i++)
        z += theta[i] * x[i];
    return z;
}

/* -log sigmoid(z) = log(1 + exp(-z)), stable for either sign */
static double softplus_neg(double z) { return (z < 0.0 ? -z : 0.0) + log1p(exp(-fabs(z))); }

double tm_bt_loss(const tm_bt *m, const double *theta, int64_t h)
{
    return softplus_neg(dot(m, theta, h));
}

void tm_bt_add_grad(const tm_bt *m, const double *theta, int64_t h, double w, double *g)
{
    double s = -sigmoid(-dot(m, theta, h)) * w; /* d/dz -log sigmoid(z) = -sigmoid(-z) */
    const double *x = m->x + (size_t)h * m->d;
    for (size_t i = 0; i < m->d; i++)
        g[i] += s * x[i];
}

double tm_bt_mean_loss(const tm_bt *m, const double *theta, size_t from, size_t to)
{
    double s = 0.0;
    for (size_t h = from; h < to; h++)
        s += tm_bt_loss(m, theta, (int64_t)h);
    return s / (double)(to - from);
}

#define TM_MAXD 16

static void params_to_double(const tm_bt *m, const float *params, double *theta)
{
    for (size_t i = 0; i < m->d; i++)
        theta[i] = params[i];
}

static int cb_forward(void *user, const float *params, const drpo_batch *b, double *loss)
{
    tm_bt *m = user;
    long call = ++m->fwd_calls;
    if (call == m->fail_fwd_at)
        return m->fail_code;
    double theta[TM_MAXD];
    params_to_double(m, params, theta);
    for (size_t j = 0; j < drpo_batch_size(b); j++)
        loss[j] = tm_bt_loss(m, theta, drpo_batch_host_index(b, j));
    if (call == m->nan_fwd_at)
        loss[drpo_batch_size(b) / 2] = NAN;
    return 0;
}

static int cb_backward(void *user, const float *params, const drpo_batch *b, const double *w,
                       float *grad)
{
    tm_bt *m = user;
    long call = ++m->bwd_calls;
    for (size_t i = 0; i < m->d; i++)
        if (grad[i] != 0.0f) {
            m->dirty_grads++;
            break;
        }
    if (call == m->fail_bwd_at) { /* failing half-way: what it wrote must not last */
        grad[0] = 1.0f;
        return m->fail_code;
    }
    double theta[TM_MAXD], g[TM_MAXD] = {0};
    params_to_double(m, params, theta);
    size_t n = drpo_batch_size(b);
    for (size_t j = 0; j < n; j++) {
        tm_bt_add_grad(m, theta, drpo_batch_host_index(b, j), w[j], g);
        if (j < TM_MAX_PAIRS)
            m->rec_w[j] = w[j];
    }
    m->rec_n = n < TM_MAX_PAIRS ? n : TM_MAX_PAIRS;
    for (size_t i = 0; i < m->d; i++)
        grad[i] += (float)g[i];
    if (call == m->nan_bwd_at)
        grad[m->d - 1] = NAN;
    return 0;
}

drpo_model_callbacks tm_bt_callbacks(void)
{
    drpo_model_callbacks cb;
    memset(&cb, 0, sizeof cb);
    cb.struct_size = sizeof cb;
    cb.forward = cb_forward;
    cb.backward = cb_backward;
    return cb;
}

drpo_model *tm_bt_model(tm_bt *m, const drpo_allocator *alloc)
{
    ck_assert_uint_le(m->d, TM_MAXD);
    drpo_model_callbacks cb = tm_bt_callbacks();
    drpo_model *model = NULL;
    ck_assert_int_eq(drpo_model_create_with_allocator(&model, m->d, &cb, m, alloc), DRPO_OK);
    return model;
}

void tm_params(drpo_model *model, double *theta)
{
    const float *p = drpo_model_params(model);
    for (size_t i = 0; i < drpo_model_n_params(model); i++)
        theta[i] = p[i];
}

void tm_batch_fill(drpo_batch *b, const tm_bt *m, const size_t *idx, size_t n, size_t per_unit)
{
    drpo_batch_clear(b);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(drpo_batch_add_key(b, (uint64_t)(idx[i] / per_unit), m->group[idx[i]],
                                            (int64_t)idx[i]),
                         DRPO_OK);
}

void tm_batch_range(drpo_batch *b, const tm_bt *m, size_t from, size_t to, size_t per_unit)
{
    drpo_batch_clear(b);
    for (size_t h = from; h < to; h++)
        ck_assert_int_eq(drpo_batch_add_key(b, (uint64_t)(h / per_unit), m->group[h], (int64_t)h),
                         DRPO_OK);
}

drpo_objective *tm_objective(int32_t set, int32_t key, double param, int32_t mode,
                             double dual_lr, int32_t groups, const drpo_allocator *alloc)
{
    drpo_objective *o = NULL;
    ck_assert_int_eq(drpo_objective_create_with_allocator(&o, set, alloc), DRPO_OK);
    if (key)
        ck_assert_int_eq(drpo_objective_set(o, key, param), DRPO_OK);
    ck_assert_int_eq(drpo_objective_set(o, DRPO_PARAM_GROUPS, groups), DRPO_OK);
    ck_assert_int_eq(drpo_objective_set(o, DRPO_PARAM_MODE, mode), DRPO_OK);
    ck_assert_int_eq(drpo_objective_set(o, DRPO_PARAM_DUAL_LR, dual_lr), DRPO_OK);
    return o;
}

unsigned char *tm_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 14, n = 0;
    unsigned char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap)
            buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    *len = n;
    return buf;
}

unsigned char *tm_state_bytes(const drpo_trainer *t, const char *dir, size_t *len)
{
    char path[TM_PATH + 16];
    snprintf(path, sizeof path, "%s/state", dir);
    ck_assert_int_eq(drpo_trainer_save(t, path), DRPO_OK);
    unsigned char *bytes = tm_read_file(path, len);
    ck_assert_ptr_nonnull(bytes);
    unlink(path);
    return bytes;
}

void tm_tmpdir(char *buf)
{
    snprintf(buf, TM_PATH, "%s/drpo-test-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(buf));
}

void tm_rmdir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char path[2 * TM_PATH];
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) != 0)
            rmdir(path);
    }
    closedir(d);
    rmdir(dir);
}

size_t tm_count_files(const char *dir)
{
    DIR *d = opendir(dir);
    size_t k = 0;
    struct dirent *e;
    if (!d)
        return 0;
    while ((e = readdir(d)) != NULL)
        k += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return k;
}

/* ---- a whole training setup -------------------------------------------------- */

static void run_trainer(tm_run *r, const tm_cfg *c)
{
    r->obj = tm_objective(c->set, c->key, c->param, c->mode, 0.05, c->groups, &r->a);
    ck_assert_int_eq(drpo_trainer_create_with_allocator(&r->t, r->model, r->obj, &r->a), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_set(r->t, DRPO_TRAIN_OPTIMIZER, c->opt), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_set(r->t, DRPO_TRAIN_LR, 0.05), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_set(r->t, DRPO_TRAIN_NESTEROV, 1), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_set(r->t, DRPO_TRAIN_WEIGHT_DECAY, 0.01), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_set(r->t, DRPO_TRAIN_SCHEDULE, c->sched), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_set(r->t, DRPO_TRAIN_WARMUP, 3), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_set(r->t, DRPO_TRAIN_TOTAL_STEPS, 40), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_set(r->t, DRPO_TRAIN_CLIP_NORM, 5), DRPO_OK);
}

void tm_run_open(tm_run *r, const tm_cfg *c)
{
    memset(r, 0, sizeof *r);
    r->a = tu_counting_allocator(&r->st);
    tm_bt_init(&r->bt, TM_RUN_D, TM_RUN_N);
    tu_rng rng;
    tu_rng_seed(&rng, 96);
    const double dir[TM_RUN_D] = {1.0, -0.7, 0.4, 0.2};
    tm_bt_fill(&r->bt, &rng, 0, TM_RUN_N, dir, 2.0, DRPO_GROUP_NONE);
    for (size_t h = 0; c->groups > 0 && h < TM_RUN_N; h++)
        r->bt.group[h] = (int32_t)(h % (size_t)c->groups);
    r->model = tm_bt_model(&r->bt, &r->a);
    ck_assert_int_eq(drpo_batch_create_with_allocator(&r->b, &r->a), DRPO_OK);
    run_trainer(r, c);
}

void tm_run_renew(tm_run *r, const tm_cfg *c)
{
    drpo_trainer_free(r->t);
    drpo_objective_free(r->obj);
    r->t = NULL;
    run_trainer(r, c);
}

void tm_run_batch(tm_run *r, int step, size_t units)
{
    size_t idx[TM_MAX_PAIRS], n_units = TM_RUN_N / 2;
    size_t first = ((size_t)step * 7919u) % n_units;
    for (size_t u = 0; u < units; u++) {
        size_t unit = (first + u * 5) % n_units; /* 5 is prime to 48: distinct */
        idx[2 * u] = 2 * unit;
        idx[2 * u + 1] = 2 * unit + 1;
    }
    tm_batch_fill(r->b, &r->bt, idx, 2 * units, 2);
}

void tm_run_close(tm_run *r)
{
    drpo_trainer_free(r->t);
    drpo_objective_free(r->obj);
    drpo_model_free(r->model);
    drpo_batch_free(r->b);
    tm_bt_free(&r->bt);
    ck_assert_int_eq(r->st.live, 0);
}

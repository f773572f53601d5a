/* checkpoint.c - the trainer's whole state in a versioned binary file.
 *
 * Layout (all integers little-endian, floats and doubles as their IEEE bit
 * patterns):
 *   "DRPOCKPT"  u32 format version  u32 reserved (0)
 *   objective:  i32 set, i32 form, f64 param, i32 mode, f64 dual_lr, i32 groups
 *   options:    f64 value of every trainer option, keys 1..DRPO__NOPT-1
 *   state:      u64 steps, u64 n_params, u32 moments k,
 *               f32 params[n], f32 m1[n] (k >= 1), f32 m2[n] (k >= 2),
 *               u32 duals.init, f64 eta, f64 aux, f64 group_w[groups],
 *               f64 smoothed, u32 hist_len, u32 hist_pos, f64 history[DRPO__MAX_WINDOW+1]
 *   u64 XXH3-64 of every byte before it, stored big-endian (canonical form).
 * Written to a temporary file in the same directory, fsync'd, renamed over
 * the target and the directory fsync'd: a reader sees the old file or the
 * new one, never a mix.  Loading reads and checks everything into staging
 * buffers before it changes anything. */
#define XXH_STATIC_LINKING_ONLY
#include "trainer.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#define MAGIC "DRPOCKPT"
#define FORMAT_VERSION 1u
#define HIST_SIZE (DRPO__MAX_WINDOW + 1)

/* ---- writing -------------------------------------------------------------- */

typedef struct writer {
    FILE *f;
    XXH3_state_t hash;
    int failed;
} writer;

static void put(writer *w, const void *p, size_t n)
{
    if (w->failed)
        return;
    XXH3_64bits_update(&w->hash, p, n);
    if (fwrite(p, 1, n, w->f) != n)
        w->failed = 1;
}

static void put_u32(writer *w, uint32_t v)
{
    unsigned char b[4];
    for (int i = 0; i < 4; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    put(w, b, 4);
}

static void put_u64(writer *w, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    put(w, b, 8);
}

static void put_f64(writer *w, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    put_u64(w, u);
}

static void put_f32s(writer *w, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        put_u32(w, u);
    }
}

static void write_state(writer *w, const drpo_trainer *t)
{
    drpo_objective_config cfg;
    drpo__objective_config(t->obj, &cfg);
    put(w, MAGIC, 8);
    put_u32(w, FORMAT_VERSION);
    put_u32(w, 0);
    put_u32(w, (uint32_t)cfg.set);
    put_u32(w, (uint32_t)cfg.form);
    put_f64(w, cfg.param);
    put_u32(w, (uint32_t)cfg.mode);
    put_f64(w, cfg.dual_lr);
    put_u32(w, (uint32_t)cfg.groups);
    for (int32_t k = 1; k < DRPO__NOPT; k++)
        put_f64(w, drpo__trainer_read_option(t, k));
    size_t n = t->model ? t->model->n_params : 0;
    uint32_t k = (uint32_t)(t->m2 ? 2 : t->m1 ? 1 : 0);
    put_u64(w, t->steps);
    put_u64(w, (uint64_t)n);
    put_u32(w, k);
    if (n)
        put_f32s(w, t->model->params, n);
    if (k >= 1)
        put_f32s(w, t->m1, n);
    if (k >= 2)
        put_f32s(w, t->m2, n);
    put_u32(w, (uint32_t)t->duals.init);
    put_f64(w, t->duals.eta);
    put_f64(w, t->duals.aux);
    for (size_t g = 0; g < t->G; g++)
        put_f64(w, t->group_w[g]);
    put_f64(w, t->smoothed);
    put_u32(w, t->hist_len);
    put_u32(w, t->hist_pos);
    for (size_t i = 0; i < HIST_SIZE; i++)
        put_f64(w, t->history[i]);
}

/* fsync the directory holding path, so the rename itself is durable. */
static int sync_parent(const char *path, char *tmp)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        strcpy(tmp, ".");
    else if (slash == path)
        strcpy(tmp, "/");
    else {
        memcpy(tmp, path, (size_t)(slash - path));
        tmp[slash - path] = '\0';
    }
    int fd = open(tmp, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

drpo_status drpo_trainer_save(const drpo_trainer *tc, const char *path)
{
    if (!tc || !path)
        return DRPO_ERR_NULL;
    drpo_trainer *t = (drpo_trainer *)tc; /* only its error buffer is written */
    size_t len = strlen(path);
    char *tmp = drpo__malloc(&t->alloc, len + 16);
    if (!tmp)
        return drpo__fail(t->err, DRPO_ERR_NOMEM, "cannot allocate a file name");
    memcpy(tmp, path, len);
    memcpy(tmp + len, ".tmp.XXXXXX", 12);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        drpo_status st = drpo__fail(t->err, DRPO_ERR_IO, "cannot create %s: %s", tmp,
                                    strerror(errno));
        drpo__free(&t->alloc, tmp);
        return st;
    }
    writer w;
    memset(&w, 0, sizeof w);
    w.f = fdopen(fd, "wb");
    if (!w.f) {
        close(fd);
        w.failed = 1;
    } else {
        XXH3_64bits_reset(&w.hash);
        write_state(&w, t);
        XXH64_canonical_t c;
        XXH64_canonicalFromHash(&c, XXH3_64bits_digest(&w.hash));
        if (!w.failed && fwrite(c.digest, 1, 8, w.f) != 8)
            w.failed = 1;
        if (fflush(w.f) != 0 || fsync(fileno(w.f)) != 0)
            w.failed = 1;
        if (fclose(w.f) != 0)
            w.failed = 1;
    }
    int err = errno;
    if (!w.failed && rename(tmp, path) != 0) {
        w.failed = 1;
        err = errno;
    }
    drpo_status st = DRPO_OK;
    if (w.failed) {
        unlink(tmp);
        st = drpo__fail(t->err, DRPO_ERR_IO, "cannot write %s: %s", path, strerror(err));
    } else {
        sync_parent(path, tmp); /* best effort: the data itself is already durable */
    }
    drpo__free(&t->alloc, tmp);
    return st;
}

/* ---- reading -------------------------------------------------------------- */

typedef struct reader {
    FILE *f;
    XXH3_state_t hash;
    int short_read;
} reader;

static void get(reader *r, void *p, size_t n)
{
    if (r->short_read || fread(p, 1, n, r->f) != n) {
        r->short_read = 1;
        memset(p, 0, n);
        return;
    }
    XXH3_64bits_update(&r->hash, p, n);
}

static uint32_t get_u32(reader *r)
{
    unsigned char b[4];
    get(r, b, 4);
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static uint64_t get_u64(reader *r)
{
    uint64_t lo = get_u32(r);
    return lo | (uint64_t)get_u32(r) << 32;
}

static double get_f64(reader *r)
{
    uint64_t u = get_u64(r);
    double v;
    memcpy(&v, &u, 8);
    return v;
}

static void get_f32s(reader *r, float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u = get_u32(r);
        memcpy(&x[i], &u, 4);
    }
}

/* Everything a file holds, read before anything is applied. */
typedef struct staged_state {
    drpo_objective_config cfg;
    double options[DRPO__NOPT];
    uint64_t steps;
    uint32_t k;
    float *params, *m1, *m2; /* [n] each, from one block */
    drpo_duals duals;
    double *group_w;         /* [G], in the same block */
    double smoothed;
    uint32_t hist_len, hist_pos;
    double history[HIST_SIZE];
} staged_state;

static int config_valid(const drpo_objective_config *c)
{
    const drpo_set_ops *ops = drpo__set_ops(c->set);
    if (!ops || c->form < 0 || c->form > DRPO__FORM_LEVEL)
        return 0;
    if (c->form != DRPO__FORM_NONE && !(ops->forms & (1u << c->form)))
        return 0;
    if (!isfinite(c->param) || c->param < 0.0 ||
        (c->form == DRPO__FORM_LEVEL && !(c->param > 0.0 && c->param <= 1.0)))
        return 0;
    if (c->mode < DRPO_MODE_EXACT || c->mode > DRPO_MODE_GROUP)
        return 0;
    return isfinite(c->dual_lr) && c->dual_lr > 0.0;
}

/* Fix (tests/test_checkpoint.c): the checksum is verified over the whole
 * file before any field is interpreted.  Before, the version, group count,
 * parameter count and moment count were checked first, so a truncated file
 * (a short read yields version 0) or one with a damaged size field was
 * reported as DRPO_ERR_INCOMPATIBLE instead of DRPO_ERR_CORRUPT.  Returns 1
 * if every byte before the last 8 hashes to them, with f rewound. */
static int checksum_ok(FILE *f)
{
    if (fseek(f, 0, SEEK_END) != 0)
        return 0;
    long size = ftell(f);
    if (size < 8 || fseek(f, 0, SEEK_SET) != 0)
        return 0;
    XXH3_state_t h;
    XXH3_64bits_reset(&h);
    unsigned char buf[4096];
    for (long left = size - 8; left > 0;) {
        size_t k = left > (long)sizeof buf ? sizeof buf : (size_t)left;
        if (fread(buf, 1, k, f) != k)
            return 0;
        XXH3_64bits_update(&h, buf, k);
        left -= (long)k;
    }
    XXH64_canonical_t c;
    if (fread(c.digest, 1, 8, f) != 8)
        return 0;
    int ok = XXH64_hashFromCanonical(&c) == XXH3_64bits_digest(&h);
    return fseek(f, 0, SEEK_SET) == 0 && ok;
}

static drpo_status read_file(drpo_trainer *t, FILE *f, const char *path, staged_state *s,
                             void **block)
{
    if (!checksum_ok(f))
        return drpo__fail(t->err, DRPO_ERR_CORRUPT,
                          "%s is truncated, damaged or not a libdrpo checkpoint", path);
    reader r;
    memset(&r, 0, sizeof r);
    r.f = f;
    XXH3_64bits_reset(&r.hash);
    char magic[8];
    get(&r, magic, 8);
    if (r.short_read || memcmp(magic, MAGIC, 8) != 0)
        return drpo__fail(t->err, DRPO_ERR_CORRUPT, "%s is not a libdrpo checkpoint", path);
    uint32_t version = get_u32(&r);
    get_u32(&r);
    if (version != FORMAT_VERSION)
        return drpo__fail(t->err, DRPO_ERR_INCOMPATIBLE,
                          "%s has checkpoint format %u; this library reads format %u", path,
                          version, FORMAT_VERSION);
    s->cfg.set = (int32_t)get_u32(&r);
    s->cfg.form = (int)get_u32(&r);
    s->cfg.param = get_f64(&r);
    s->cfg.mode = (int32_t)get_u32(&r);
    s->cfg.dual_lr = get_f64(&r);
    s->cfg.groups = (int32_t)get_u32(&r);
    for (int32_t k = 1; k < DRPO__NOPT; k++)
        s->options[k] = get_f64(&r);
    s->steps = get_u64(&r);
    uint64_t n = get_u64(&r);
    s->k = get_u32(&r);
    size_t n_model = t->model ? t->model->n_params : 0;
    if (r.short_read)
        return drpo__fail(t->err, DRPO_ERR_CORRUPT, "%s is truncated", path);
    /* sizes decide how much to read: check them before trusting them */
    if (s->cfg.groups < 0 || (size_t)s->cfg.groups != t->G || n != n_model || s->k > 2)
        return drpo__fail(t->err, DRPO_ERR_INCOMPATIBLE,
                          "%s holds %llu parameters and %d groups; this trainer has %zu and %zu",
                          path, (unsigned long long)n, (int)s->cfg.groups, n_model, t->G);
    size_t G = t->G;
    *block = drpo__malloc_array(&t->alloc, 1, 3 * n_model * sizeof(float) + G * sizeof(double) + 8);
    if (!*block)
        return drpo__fail(t->err, DRPO_ERR_NOMEM, "cannot allocate staging for %s", path);
    s->group_w = (double *)*block;
    s->params = (float *)(s->group_w + G);
    s->m1 = s->params + n_model;
    s->m2 = s->m1 + n_model;
    get_f32s(&r, s->params, n_model);
    if (s->k >= 1)
        get_f32s(&r, s->m1, n_model);
    if (s->k >= 2)
        get_f32s(&r, s->m2, n_model);
    s->duals.init = (int)get_u32(&r);
    s->duals.eta = get_f64(&r);
    s->duals.aux = get_f64(&r);
    for (size_t g = 0; g < G; g++)
        s->group_w[g] = get_f64(&r);
    s->smoothed = get_f64(&r);
    s->hist_len = get_u32(&r);
    s->hist_pos = get_u32(&r);
    for (size_t i = 0; i < HIST_SIZE; i++)
        s->history[i] = get_f64(&r);
    XXH64_hash_t want = XXH3_64bits_digest(&r.hash);
    XXH64_canonical_t c;
    if (r.short_read || fread(c.digest, 1, 8, f) != 8)
        return drpo__fail(t->err, DRPO_ERR_CORRUPT, "%s is truncated", path);
    if (XXH64_hashFromCanonical(&c) != want)
        return drpo__fail(t->err, DRPO_ERR_CORRUPT, "%s: checksum mismatch (damaged file)", path);
    if (fgetc(f) != EOF)
        return drpo__fail(t->err, DRPO_ERR_CORRUPT, "%s has trailing bytes", path);
    drpo_objective_config mine;
    drpo__objective_config(t->obj, &mine);
    if (s->cfg.set != mine.set)
        return drpo__fail(t->err, DRPO_ERR_INCOMPATIBLE,
                          "%s was saved with ambiguity set %d; the objective has set %d", path,
                          (int)s->cfg.set, (int)mine.set);
    int ok = config_valid(&s->cfg) && s->duals.init <= 1 && s->hist_len <= HIST_SIZE &&
             s->hist_pos < HIST_SIZE && /* moments: none yet (saved before the first step), or the optimiser's */
             (s->k == 0 || (int)s->k == drpo__optim_moments((int32_t)s->options[1]));
    for (int32_t k = 1; k < DRPO__NOPT; k++)
        ok = ok && drpo__trainer_option_valid(k, s->options[k]);
    if (!ok)
        return drpo__fail(t->err, DRPO_ERR_CORRUPT, "%s holds invalid values", path);
    return DRPO_OK;
}

static const int32_t form_key[] = {0, DRPO_PARAM_RADIUS, DRPO_PARAM_PENALTY, DRPO_PARAM_LEVEL};

drpo_status drpo_trainer_load(drpo_trainer *t, const char *path)
{
    if (!t || !path)
        return DRPO_ERR_NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return drpo__fail(t->err, DRPO_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    staged_state s;
    void *block = NULL;
    drpo_status st = read_file(t, f, path, &s, &block);
    fclose(f);
    size_t n = t->model ? t->model->n_params : 0;
    float *m1 = t->m1, *m2 = t->m2;
    if (st == DRPO_OK && s.k >= 1 && !m1)
        m1 = drpo__malloc_array(&t->alloc, n, sizeof(float));
    if (st == DRPO_OK && s.k >= 2 && !m2)
        m2 = drpo__malloc_array(&t->alloc, n, sizeof(float));
    if (st == DRPO_OK && ((s.k >= 1 && !m1) || (s.k >= 2 && !m2)))
        st = drpo__fail(t->err, DRPO_ERR_NOMEM, "cannot allocate optimiser moments");
    if (st != DRPO_OK) {
        if (m1 != t->m1)
            drpo__free(&t->alloc, m1);
        if (m2 != t->m2)
            drpo__free(&t->alloc, m2);
        drpo__free(&t->alloc, block);
        return st;
    }
    /* commit: nothing below can fail (the values were validated above) */
    if (s.cfg.form != DRPO__FORM_NONE)
        drpo_objective_set(t->obj, form_key[s.cfg.form], s.cfg.param);
    drpo_objective_set(t->obj, DRPO_PARAM_MODE, s.cfg.mode);
    drpo_objective_set(t->obj, DRPO_PARAM_DUAL_LR, s.cfg.dual_lr);
    for (int32_t k = 1; k < DRPO__NOPT; k++)
        drpo__trainer_apply_option(t, k, s.options[k]);
    if (n)
        memcpy(t->model->params, s.params, n * sizeof(float));
    t->m1 = m1;
    t->m2 = m2;
    if (s.k == 0) { /* saved before the first step: the moments start at zero */
        if (t->m1)
            memset(t->m1, 0, n * sizeof(float));
        if (t->m2)
            memset(t->m2, 0, n * sizeof(float));
    }
    if (s.k >= 1)
        memcpy(t->m1, s.m1, n * sizeof(float));
    if (s.k >= 2)
        memcpy(t->m2, s.m2, n * sizeof(float));
    t->steps = s.steps;
    t->duals = s.duals;
    if (t->G)
        memcpy(t->group_w, s.group_w, t->G * sizeof(double));
    t->smoothed = s.smoothed;
    t->hist_len = s.hist_len;
    t->hist_pos = s.hist_pos;
    memcpy(t->history, s.history, sizeof s.history);
    t->staged = 0;
    drpo__free(&t->alloc, block);
    return DRPO_OK;
}

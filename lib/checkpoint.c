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
 * buffers before it changes anything.
 *
 * I/O runs on raw file descriptors (open/read/write/fsync/rename, O_CLOEXEC)
 * through one buffer taken from the trainer's allocator (issue 7): stdio's
 * FILE buffers are allocated by libc behind the handle's allocator, so they
 * are not used here.  A killed save leaves at most its own temporary file
 * (<path>.tmp.XXXXXX) behind; the target is always the old or the new file. */
#define _GNU_SOURCE /* mkostemp */
#define XXH_STATIC_LINKING_ONLY
#include "trainer.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define MAGIC "DRPOCKPT"
#define FORMAT_VERSION 1u
#define HIST_SIZE (DRPO__MAX_WINDOW + 1)
/* The I/O buffer of a save or a load (from the trainer's allocator). */
#define IO_BUF 65536

/* write(2) all of p, retrying on EINTR and short writes; 0 or -1 (errno). */
static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            if (k == 0)
                errno = EIO;
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* read(2) up to n bytes, retrying on EINTR and short reads; the count read
 * (< n only at end of file) or -1. */
static ssize_t read_full(int fd, unsigned char *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(fd, p + got, n - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -1;
        if (k == 0)
            break;
        got += (size_t)k;
    }
    return (ssize_t)got;
}

/* ---- writing -------------------------------------------------------------- */

typedef struct writer {
    int fd;
    unsigned char *buf; /* IO_BUF bytes */
    size_t len;
    XXH3_state_t hash;
    int failed, err;
} writer;

/* Hash and write out what the buffer holds. */
static void flush(writer *w)
{
    if (w->failed || w->len == 0)
        return;
    XXH3_64bits_update(&w->hash, w->buf, w->len);
    if (write_all(w->fd, w->buf, w->len) != 0) {
        w->failed = 1;
        w->err = errno;
    }
    w->len = 0;
}

static void put(writer *w, const void *p, size_t n)
{
    const unsigned char *src = p;
    while (n > 0 && !w->failed) {
        if (w->len == IO_BUF)
            flush(w);
        size_t k = IO_BUF - w->len < n ? IO_BUF - w->len : n;
        memcpy(w->buf + w->len, src, k);
        w->len += k;
        src += k;
        n -= k;
    }
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

/* Encoded straight into the buffer (a checkpoint is mostly these arrays). */
static void put_f32s(writer *w, const float *x, size_t n)
{
    for (size_t i = 0; i < n && !w->failed; i++) {
        if (IO_BUF - w->len < 4)
            flush(w);
        uint32_t u;
        memcpy(&u, &x[i], 4);
        unsigned char *b = w->buf + w->len;
        b[0] = (unsigned char)u;
        b[1] = (unsigned char)(u >> 8);
        b[2] = (unsigned char)(u >> 16);
        b[3] = (unsigned char)(u >> 24);
        w->len += 4;
    }
}

/* 1 if every float of x[n] is +0 (bitwise). */
static int all_zero(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        if (u)
            return 0;
    }
    return 1;
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
    /* Fix (issue 7, tests/test_faults.c): moments that are all zero are
     * saved as none.  A step allocates (zeroed) moments before the parts of
     * it that can still fail; a step that then failed (DRPO_ERR_NOMEM, a
     * callback) left a trainer whose file recorded moments (AdamW: only the
     * first, which loading refuses) although nothing had changed.  Zero
     * moments and none are the same state (loading k = 0 zeroes them). */
    if (k && all_zero(t->m1, n) && (k < 2 || all_zero(t->m2, n)))
        k = 0;
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
    int fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
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
    if (len > SIZE_MAX - IO_BUF - 16)
        return drpo__fail(t->err, DRPO_ERR_IO, "the path is too long");
    /* the I/O buffer and the temporary file's name, one allocation */
    unsigned char *block = drpo__malloc(&t->alloc, IO_BUF + len + 16);
    if (!block)
        return drpo__fail(t->err, DRPO_ERR_NOMEM, "cannot allocate a file name");
    char *tmp = (char *)block + IO_BUF;
    memcpy(tmp, path, len);
    memcpy(tmp + len, ".tmp.XXXXXX", 12);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        drpo_status st = drpo__fail(t->err, DRPO_ERR_IO, "cannot create %s: %s", tmp,
                                    strerror(errno));
        drpo__free(&t->alloc, block);
        return st;
    }
    writer w;
    memset(&w, 0, sizeof w);
    w.fd = fd;
    w.buf = block;
    XXH3_64bits_reset(&w.hash);
    write_state(&w, t);
    flush(&w);
    if (!w.failed) {
        XXH64_canonical_t c;
        XXH64_canonicalFromHash(&c, XXH3_64bits_digest(&w.hash));
        if (write_all(fd, c.digest, 8) != 0 || fsync(fd) != 0) {
            w.failed = 1;
            w.err = errno;
        }
    }
    if (close(fd) != 0 && !w.failed) {
        w.failed = 1;
        w.err = errno;
    }
    if (!w.failed && rename(tmp, path) != 0) {
        w.failed = 1;
        w.err = errno;
    }
    drpo_status st = DRPO_OK;
    if (w.failed) {
        unlink(tmp);
        st = drpo__fail(t->err, DRPO_ERR_IO, "cannot write %s: %s", path, strerror(w.err));
    } else {
        sync_parent(path, tmp); /* best effort: the data itself is already durable */
    }
    drpo__free(&t->alloc, block);
    return st;
}

/* ---- reading -------------------------------------------------------------- */

typedef struct reader {
    int fd;
    unsigned char *buf; /* IO_BUF bytes */
    size_t pos, len;    /* unread bytes: buf[pos, len) */
    XXH3_state_t hash;
    int short_read;
} reader;

/* The next n bytes into p (zeros after a short read), hashed. */
static void get(reader *r, void *p, size_t n)
{
    unsigned char *dst = p;
    while (n > 0 && !r->short_read) {
        if (r->pos == r->len) {
            ssize_t k = read_full(r->fd, r->buf, IO_BUF);
            if (k <= 0) {
                r->short_read = 1;
                break;
            }
            r->pos = 0;
            r->len = (size_t)k;
        }
        size_t k = r->len - r->pos < n ? r->len - r->pos : n;
        memcpy(dst, r->buf + r->pos, k);
        XXH3_64bits_update(&r->hash, dst, k);
        r->pos += k;
        dst += k;
        n -= k;
    }
    if (n > 0)
        memset(dst, 0, n);
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

/* n little-endian floats: the bytes read in place, then decoded. */
static void get_f32s(reader *r, float *x, size_t n)
{
    get(r, x, n * 4);
    unsigned char *b = (unsigned char *)x;
    for (size_t i = 0; i < n; i++, b += 4) {
        uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                     (uint32_t)b[3] << 24;
        memcpy(b, &u, 4);
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
static int checksum_ok(reader *r)
{
    struct stat sb;
    if (fstat(r->fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size < 8)
        return 0;
    XXH3_state_t h;
    XXH3_64bits_reset(&h);
    unsigned char tail[8];
    size_t have = 0; /* bytes of the current tail candidate in `tail` */
    for (;;) {       /* every byte but the last 8 is hashed, whatever the size says */
        ssize_t k = read_full(r->fd, r->buf, IO_BUF);
        if (k < 0)
            return 0;
        if (k == 0)
            break;
        size_t n = (size_t)k;
        /* the previous tail is followed by more data: it is hashed now */
        size_t keep = n >= 8 ? 0 : 8 - n; /* old tail bytes still in the last 8 */
        if (have > keep) {
            XXH3_64bits_update(&h, tail, have - keep);
            memmove(tail, tail + have - keep, keep);
            have = keep;
        }
        if (n > 8)
            XXH3_64bits_update(&h, r->buf, n - 8);
        size_t from = n > 8 ? n - 8 : 0;
        memcpy(tail + have, r->buf + from, n - from);
        have += n - from;
    }
    if (have != 8)
        return 0;
    XXH64_canonical_t c;
    memcpy(c.digest, tail, 8);
    int ok = XXH64_hashFromCanonical(&c) == XXH3_64bits_digest(&h);
    return lseek(r->fd, 0, SEEK_SET) == 0 && ok;
}

static drpo_status read_file(drpo_trainer *t, int fd, unsigned char *buf, const char *path,
                             staged_state *s, void **block)
{
    reader r;
    memset(&r, 0, sizeof r);
    r.fd = fd;
    r.buf = buf;
    if (!checksum_ok(&r))
        return drpo__fail(t->err, DRPO_ERR_CORRUPT,
                          "%s is truncated, damaged or not a libdrpo checkpoint", path);
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
    get(&r, c.digest, 8); /* (hashes them too, after `want` was taken) */
    if (r.short_read)
        return drpo__fail(t->err, DRPO_ERR_CORRUPT, "%s is truncated", path);
    if (XXH64_hashFromCanonical(&c) != want)
        return drpo__fail(t->err, DRPO_ERR_CORRUPT, "%s: checksum mismatch (damaged file)", path);
    unsigned char extra;
    get(&r, &extra, 1);
    if (!r.short_read)
        return drpo__fail(t->err, DRPO_ERR_CORRUPT, "%s has trailing bytes", path);
    drpo_objective_config mine;
    drpo__objective_config(t->obj, &mine);
    if (s->cfg.set != mine.set)
        return drpo__fail(t->err, DRPO_ERR_INCOMPATIBLE,
                          "%s was saved with ambiguity set %d; the objective has set %d", path,
                          (int)s->cfg.set, (int)mine.set);
    /* Fix (issue 7, found by tests/fuzz/fuzz_checkpoint.c): a file saved
     * before the set's parameter was set (form none) loaded as valid into an
     * objective that has one, and the objective kept its own parameter: the
     * loaded trainer was not the saved one.  A parameter cannot be unset, so
     * such a file fits only an objective that has none either. */
    if (s->cfg.form == DRPO__FORM_NONE && mine.form != DRPO__FORM_NONE)
        return drpo__fail(t->err, DRPO_ERR_INCOMPATIBLE,
                          "%s was saved before the set's parameter was set; the objective has "
                          "one", path);
    int ok = config_valid(&s->cfg) && s->duals.init <= 1 && s->hist_len <= HIST_SIZE &&
             s->hist_pos < HIST_SIZE;
    for (int32_t k = 1; k < DRPO__NOPT; k++)
        ok = ok && drpo__trainer_option_valid(k, s->options[k]);
    /* moments: none yet (saved before the first step), or the optimiser's.
     * Fix (issue 7, found by fuzz_checkpoint under UBSan): checked after the
     * options, which made the optimiser a whole number in [0, 2]; before, a
     * damaged value such as -1e87 was converted to int32_t first (undefined
     * behaviour). */
    ok = ok && (s->k == 0 || (int)s->k == drpo__optim_moments((int32_t)s->options[1]));
    if (!ok)
        return drpo__fail(t->err, DRPO_ERR_CORRUPT, "%s holds invalid values", path);
    return DRPO_OK;
}

static const int32_t form_key[] = {0, DRPO_PARAM_RADIUS, DRPO_PARAM_PENALTY, DRPO_PARAM_LEVEL};

drpo_status drpo_trainer_load(drpo_trainer *t, const char *path)
{
    if (!t || !path)
        return DRPO_ERR_NULL;
    unsigned char *buf = drpo__malloc(&t->alloc, IO_BUF);
    if (!buf)
        return drpo__fail(t->err, DRPO_ERR_NOMEM, "cannot allocate a read buffer");
    /* O_NONBLOCK: a FIFO at path must not block the open (it is then refused
     * as not a regular file); it changes nothing for regular files */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        drpo_status st = drpo__fail(t->err, DRPO_ERR_IO, "cannot open %s: %s", path,
                                    strerror(errno));
        drpo__free(&t->alloc, buf);
        return st;
    }
    staged_state s;
    void *block = NULL;
    drpo_status st = read_file(t, fd, buf, path, &s, &block);
    close(fd);
    drpo__free(&t->alloc, buf);
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
    t->moments_max_known = 0; /* the next step measures its update first */
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

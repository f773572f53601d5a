/* fuzz_common.c - see fuzz_common.h. */
#define _GNU_SOURCE /* memfd_create */
#include "fuzz_common.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void *fa_malloc(void *user, size_t size)
{
    fz_alloc *a = user;
    if (++a->count == a->fail_at)
        return NULL;
    void *p = malloc(size);
    a->live += p != NULL;
    return p;
}

static void *fa_realloc(void *user, void *ptr, size_t size)
{
    fz_alloc *a = user;
    if (++a->count == a->fail_at)
        return NULL;
    void *p = realloc(ptr, size);
    a->live += p && !ptr;
    return p;
}

static void fa_free(void *user, void *ptr)
{
    fz_alloc *a = user;
    if (!ptr)
        abort(); /* the library promises never to free NULL */
    a->live--;
    free(ptr);
}

drpo_allocator fz_allocator(fz_alloc *a)
{
    drpo_allocator al = {sizeof al, fa_malloc, fa_realloc, fa_free, a};
    return al;
}

static const float rows[16][FZ_D] = {
    {1, 0, 0, 0},   {0, 1, 0, 0},    {0, 0, 1, 0},     {0, 0, 0, 1},
    {1, -1, 0, 0},  {0.5f, 0.5f, 0, 0}, {-1, 0, 2, 0},  {0, -2, 0, 1},
    {3, 1, -1, 0},  {0, 0, -0.25f, 4}, {1, 1, 1, 1},   {-1, -1, -1, -1},
    {2, 0, 0, -2},  {0, 0.1f, 0, 0},  {0.01f, 0, 0, 0}, {-0.5f, 1.5f, -2.5f, 0.5f},
};

static double margin(const float *th, int64_t h)
{
    const float *x = rows[(uint64_t)h % 16];
    double m = 0.0;
    for (int k = 0; k < FZ_D; k++)
        m += (double)th[k] * x[k];
    return m;
}

static int fwd(void *user, const float *params, const drpo_batch *b, double *loss)
{
    fz_model *m = user;
    if (m->mode == 5)
        return 11;
    for (size_t j = 0; j < drpo_batch_size(b); j++) {
        double z = margin(params, drpo_batch_host_index(b, j));
        loss[j] = z > 0 ? log1p(exp(-z)) : -z + log1p(exp(z));
        switch (m->mode) {
        case 1: loss[j] = NAN; break;
        case 2: loss[j] = INFINITY; break;
        case 3: loss[j] = 1e300 * (double)(j % 3); break;
        case 4: loss[j] = 4.9e-324 * (double)j; break;
        default: break;
        }
    }
    return 0;
}

static int bwd(void *user, const float *params, const drpo_batch *b, const double *w,
               float *grad)
{
    fz_model *m = user;
    if (m->mode == 7)
        return -3;
    for (size_t j = 0; j < drpo_batch_size(b); j++) {
        int64_t h = drpo_batch_host_index(b, j);
        double z = margin(params, h), s = -1.0 / (1.0 + exp(z));
        for (int k = 0; k < FZ_D; k++)
            grad[k] += (float)(w[j] * s * rows[(uint64_t)h % 16][k]);
    }
    if (m->mode == 6)
        grad[1] = NAN;
    if (m->mode == 8)
        grad[0] = 1e30f;
    if (m->mode == 9)
        grad[2] = 1e-45f;
    return 0;
}

drpo_model_callbacks fz_callbacks(void)
{
    drpo_model_callbacks cb = {sizeof cb, fwd, bwd, NULL};
    return cb;
}

int fz_file_open(fz_file *f)
{
    f->fd = memfd_create("drpo-fuzz", MFD_CLOEXEC);
    if (f->fd < 0)
        return -1;
    snprintf(f->path, sizeof f->path, "/proc/self/fd/%d", f->fd);
    return 0;
}

int fz_file_write(fz_file *f, const void *data, size_t n)
{
    if (ftruncate(f->fd, 0) != 0 || lseek(f->fd, 0, SEEK_SET) != 0)
        return -1;
    const unsigned char *p = data;
    while (n > 0) {
        ssize_t k = write(f->fd, p, n);
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

void fz_file_close(fz_file *f)
{
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
}

unsigned fz_u8(fz_in *in)
{
    if (in->n == 0)
        return 0;
    in->n--;
    return *in->p++;
}

double fz_f64(fz_in *in)
{
    unsigned char b[8] = {0};
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)fz_u8(in);
    double v;
    memcpy(&v, b, 8);
    return v;
}

double fz_value(fz_in *in)
{
    static const double table[] = {
        NAN, INFINITY, -INFINITY, 4.9e-324, -4.9e-324, 2.2250738585072009e-308, 1e300, -1e300,
        DBL_MAX, 0.0, -0.0, 1.0, -1.0, 0.5, 0.1, 2.0, 3.0, 1e-9, 1e9, 1e-300, 0.999, 1024, 7.5,
    };
    unsigned k = fz_u8(in);
    size_t nt = sizeof table / sizeof table[0];
    if (k < 4 * nt)
        return table[k % nt];
    if (k < 240)
        return (double)(k - 4 * nt) * 0.05;
    return fz_f64(in);
}

int fz_status_known(drpo_status s) { return s >= DRPO_ERR_INCOMPATIBLE && s <= DRPO_STOPPED; }

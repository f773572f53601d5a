/* common.h - timing, medians and the streaming-bandwidth floors shared by
 * the benchmark programs (bench/).  Results go to stdout as one JSON object
 * per line; bench/run.py gathers them into the table. */
#ifndef DRPO_BENCH_COMMON_H
#define DRPO_BENCH_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int bench_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static inline double bench_median(double *t, int k)
{
    qsort(t, (size_t)k, sizeof *t, bench_cmp);
    return k % 2 ? t[k / 2] : 0.5 * (t[k / 2 - 1] + t[k / 2]);
}

/* Repetitions: more for small sizes, at least 3. */
static inline int bench_reps(double bytes)
{
    if (bytes < 1e6)
        return 51;
    if (bytes < 1e8)
        return 11;
    if (bytes < 1e9)
        return 5;
    return 3;
}

static inline void *bench_alloc(size_t bytes)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 64)) {
        fprintf(stderr, "bench: cannot allocate %zu bytes\n", bytes);
        exit(1);
    }
    memset(p, 0, bytes); /* fault the pages in */
    return p;
}

/* Sinks so that the compiler keeps the passes. */
static volatile double bench_sink;

/* One streaming read pass over n doubles (8 accumulators: vectorised by the
 * bench's -O3 -march=native, not latency-bound). */
static inline double bench_read_pass(const double *x, size_t n)
{
    double s[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            s[k] += x[i + k];
    for (; i < n; i++)
        s[0] += x[i];
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

/* The same over n floats (16 accumulators). */
static inline double bench_read_pass_f32(const float *x, size_t n)
{
    float s[16] = {0};
    size_t full = n - n % 16;
    for (size_t i = 0; i < full; i += 16)
        for (int k = 0; k < 16; k++)
            s[k] += x[i + k];
    double t = 0;
    for (int k = 0; k < 16; k++)
        t += s[k];
    for (size_t i = full; i < n; i++)
        t += x[i];
    return t;
}

/* Median time of a read pass over n doubles. */
static inline double bench_time_read(const double *x, size_t n, int reps)
{
    double t[64];
    if (reps > 64)
        reps = 64;
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now();
        bench_sink = bench_read_pass(x, n);
        t[r] = bench_now() - t0;
    }
    return bench_median(t, reps);
}

/* Streaming bandwidths in bytes per second over arrays of `bytes` bytes:
 * read (a sum over one array), in-place triad (x += s y: two read streams,
 * one written back in place, the optimiser's pattern), copy (y = s x: one
 * read, one write).  Medians of reps passes. */
typedef struct bench_bw {
    double read, inplace, copy;
} bench_bw;

static inline void bench_bandwidth(size_t bytes, int reps, bench_bw *bw)
{
    size_t n = bytes / sizeof(float);
    float *x = bench_alloc(n * sizeof(float)), *y = bench_alloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        x[i] = (float)(i & 1023);
        y[i] = 1.0f;
    }
    double tr[64], ti[64], tc[64];
    if (reps > 64)
        reps = 64;
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now();
        bench_sink = bench_read_pass_f32(x, n);
        double t1 = bench_now();
        for (size_t j = 0; j < n; j++)
            x[j] += 1e-7f * y[j];
        double t2 = bench_now();
        for (size_t j = 0; j < n; j++)
            y[j] = 0.5f * x[j];
        double t3 = bench_now();
        bench_sink = x[n / 2] + y[n / 3];
        tr[r] = t1 - t0;
        ti[r] = t2 - t1;
        tc[r] = t3 - t2;
    }
    double b = (double)(n * sizeof(float));
    bw->read = b / bench_median(tr, reps);
    bw->inplace = 3 * b / bench_median(ti, reps);
    bw->copy = 2 * b / bench_median(tc, reps);
    free(x);
    free(y);
}

#endif

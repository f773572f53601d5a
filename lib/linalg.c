/* linalg.c - the dense kernels of the built-in models.
 *
 * Every call runs on the caller's thread.  Two implementations, chosen per
 * call, never by changing process-wide state:
 *  - BLIS's gemv with a per-call runtime object asking for one thread (the
 *    process-wide settings, BLIS_NUM_THREADS, OMP_NUM_THREADS,
 *    bli_thread_set_num_threads, stay the host's business);
 *  - where BLIS runs its generic (reference) kernels, as BLIS 0.9 does on
 *    CPUs it does not know (AMD family 0x1A among them), and the CPU has AVX2
 *    and FMA: the AVX2/FMA loops below, measured faster than the generic
 *    kernels on every shape of the built-in models (bench/kernels.c and
 *    docs/performance.md; Debian's shared libblis exports no other kernel
 *    set's context, so they cannot be reached through the expert interface).
 * Both accumulate in float, as the gemv does; the results differ by
 * rounding only. */
#include "internal.h"

#include <blis.h>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define DRPO_X86 1
#include <immintrin.h>
#endif

static void one_thread(rntm_t *rntm)
{
    rntm_t init = BLIS_RNTM_INITIALIZER;
    *rntm = init;
    bli_rntm_set_num_threads(1, rntm);
}

void drpo__rows_dot_blis(size_t rows, size_t dim, const float *x, const float *theta, float *y);
void drpo__rows_axpy_blis(size_t rows, size_t dim, const float *x, const float *c, float *g);

void drpo__rows_dot_blis(size_t rows, size_t dim, const float *x, const float *theta, float *y)
{
    rntm_t rntm;
    one_thread(&rntm);
    float one = 1.0f, zero = 0.0f;
    bli_sgemv_ex(BLIS_NO_TRANSPOSE, BLIS_NO_CONJUGATE, (dim_t)rows, (dim_t)dim, &one, (float *)x,
                 (inc_t)dim, 1, (float *)theta, 1, &zero, y, 1, NULL, &rntm);
}

void drpo__rows_axpy_blis(size_t rows, size_t dim, const float *x, const float *c, float *g)
{
    rntm_t rntm;
    one_thread(&rntm);
    float one = 1.0f;
    bli_sgemv_ex(BLIS_TRANSPOSE, BLIS_NO_CONJUGATE, (dim_t)rows, (dim_t)dim, &one, (float *)x,
                 (inc_t)dim, 1, (float *)c, 1, &one, g, 1, NULL, &rntm);
}

#ifdef DRPO_X86
__attribute__((target("avx2,fma"))) static inline float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* The hardware prefetchers keep too few lines in flight for four rows read
 * side by side from memory: the loops ask for the data 2 KiB ahead when it
 * is larger than a core's L2 cache (at 10^5 x 256 the features then read at
 * about the speed of a plain read pass, not half of it; in cache the
 * prefetches only cost instructions; bench/kernels.c).  A prefetch never
 * faults, so past the end of x is harmless; the address is formed as an
 * integer to stay clear of pointer arithmetic outside the array. */
enum { PREFETCH_AHEAD = 2048, PREFETCH_MIN_FLOATS = 1 << 18 };

__attribute__((target("avx2,fma"))) static inline void prefetch_rows(const float *x,
                                                                     size_t floats)
{
    uintptr_t at = (uintptr_t)x + PREFETCH_AHEAD;
    for (size_t o = 0; o < floats * sizeof(float); o += 64)
        _mm_prefetch((const char *)(at + o), _MM_HINT_T0);
}

/* y[r] = x_r . theta, four rows at a time sharing the loads of theta. */
__attribute__((target("avx2,fma"))) static void rows_dot_avx2(size_t rows, size_t dim,
                                                              const float *x, const float *theta,
                                                              float *y)
{
    const int prefetch = rows * dim > PREFETCH_MIN_FLOATS;
    size_t r = 0, d8 = dim & ~(size_t)7;
    for (; r + 4 <= rows; r += 4) {
        const float *x0 = x + r * dim, *x1 = x0 + dim, *x2 = x1 + dim, *x3 = x2 + dim;
        if (prefetch)
            prefetch_rows(x0, 4 * dim);
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (size_t i = 0; i < d8; i += 8) {
            __m256 t = _mm256_loadu_ps(theta + i);
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x0 + i), t, a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x1 + i), t, a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(x2 + i), t, a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(x3 + i), t, a3);
        }
        float s0 = hsum8(a0), s1 = hsum8(a1), s2 = hsum8(a2), s3 = hsum8(a3);
        for (size_t i = d8; i < dim; i++) {
            s0 += x0[i] * theta[i];
            s1 += x1[i] * theta[i];
            s2 += x2[i] * theta[i];
            s3 += x3[i] * theta[i];
        }
        y[r] = s0, y[r + 1] = s1, y[r + 2] = s2, y[r + 3] = s3;
    }
    for (; r < rows; r++) {
        const float *x0 = x + r * dim;
        __m256 a0 = _mm256_setzero_ps();
        for (size_t i = 0; i < d8; i += 8)
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x0 + i), _mm256_loadu_ps(theta + i), a0);
        float s0 = hsum8(a0);
        for (size_t i = d8; i < dim; i++)
            s0 += x0[i] * theta[i];
        y[r] = s0;
    }
}

/* g += sum_r c[r] x_r, four rows per pass over g (which stays in cache). */
__attribute__((target("avx2,fma"))) static void rows_axpy_avx2(size_t rows, size_t dim,
                                                               const float *x, const float *c,
                                                               float *g)
{
    const int prefetch = rows * dim > PREFETCH_MIN_FLOATS;
    size_t r = 0, d8 = dim & ~(size_t)7;
    for (; r + 4 <= rows; r += 4) {
        const float *x0 = x + r * dim, *x1 = x0 + dim, *x2 = x1 + dim, *x3 = x2 + dim;
        if (prefetch)
            prefetch_rows(x0, 4 * dim);
        __m256 c0 = _mm256_set1_ps(c[r]), c1 = _mm256_set1_ps(c[r + 1]);
        __m256 c2 = _mm256_set1_ps(c[r + 2]), c3 = _mm256_set1_ps(c[r + 3]);
        for (size_t i = 0; i < d8; i += 8) {
            __m256 a = _mm256_loadu_ps(g + i);
            a = _mm256_fmadd_ps(c0, _mm256_loadu_ps(x0 + i), a);
            a = _mm256_fmadd_ps(c1, _mm256_loadu_ps(x1 + i), a);
            a = _mm256_fmadd_ps(c2, _mm256_loadu_ps(x2 + i), a);
            a = _mm256_fmadd_ps(c3, _mm256_loadu_ps(x3 + i), a);
            _mm256_storeu_ps(g + i, a);
        }
        for (size_t i = d8; i < dim; i++)
            g[i] += c[r] * x0[i] + c[r + 1] * x1[i] + c[r + 2] * x2[i] + c[r + 3] * x3[i];
    }
    for (; r < rows; r++) {
        const float *x0 = x + r * dim;
        __m256 c0 = _mm256_set1_ps(c[r]);
        for (size_t i = 0; i < d8; i += 8)
            _mm256_storeu_ps(g + i,
                             _mm256_fmadd_ps(c0, _mm256_loadu_ps(x0 + i), _mm256_loadu_ps(g + i)));
        for (size_t i = d8; i < dim; i++)
            g[i] += c[r] * x0[i];
    }
}

/* 1 when BLIS runs its generic kernels here and the CPU has AVX2 and FMA.
 * Asked on every call (a few loads): the library keeps no global state. */
static int use_own_kernels(void)
{
    __builtin_cpu_init();
    return DRPO_ISA_MAX >= 1 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           bli_arch_query_id() == BLIS_ARCH_GENERIC;
}
#endif

void drpo__rows_dot(size_t rows, size_t dim, const float *x, const float *theta, float *y)
{
    if (rows == 0 || dim == 0)
        return;
#ifdef DRPO_X86
    if (use_own_kernels()) {
        rows_dot_avx2(rows, dim, x, theta, y);
        return;
    }
#endif
    drpo__rows_dot_blis(rows, dim, x, theta, y);
}

void drpo__rows_axpy(size_t rows, size_t dim, const float *x, const float *c, float *g)
{
    if (rows == 0 || dim == 0)
        return;
#ifdef DRPO_X86
    if (use_own_kernels()) {
        rows_axpy_avx2(rows, dim, x, c, g);
        return;
    }
#endif
    drpo__rows_axpy_blis(rows, dim, x, c, g);
}

drpo_status drpo_linear_scores(const float *theta, size_t dim, size_t rows, const float *x,
                               double *scores)
{
    if (!theta || (rows && (!x || !scores)))
        return DRPO_ERR_NULL;
    if (dim == 0)
        return DRPO_ERR_SIZE;
    enum { CHUNK = 1024 };
    float buf[CHUNK];
    for (size_t r = 0; r < rows; r += CHUNK) {
        size_t k = rows - r < CHUNK ? rows - r : CHUNK;
        drpo__rows_dot(k, dim, x + r * dim, theta, buf);
        for (size_t i = 0; i < k; i++)
            scores[r + i] = buf[i];
    }
    return DRPO_OK;
}

/* linalg.c - the dense kernels of the built-in models, on BLIS.
 *
 * Every call runs on the caller's thread: a per-call runtime object asks
 * BLIS for one thread, so the process-wide settings (BLIS_NUM_THREADS,
 * OMP_NUM_THREADS, bli_thread_set_num_threads) stay the host's business. */
#include "internal.h"

#include <blis.h>

static void one_thread(rntm_t *rntm)
{
    rntm_t init = BLIS_RNTM_INITIALIZER;
    *rntm = init;
    bli_rntm_set_num_threads(1, rntm);
}

void drpo__rows_dot(size_t rows, size_t dim, const float *x, const float *theta, float *y)
{
    if (rows == 0 || dim == 0)
        return;
    rntm_t rntm;
    one_thread(&rntm);
    float one = 1.0f, zero = 0.0f;
    bli_sgemv_ex(BLIS_NO_TRANSPOSE, BLIS_NO_CONJUGATE, (dim_t)rows, (dim_t)dim, &one, (float *)x,
                 (inc_t)dim, 1, (float *)theta, 1, &zero, y, 1, NULL, &rntm);
}

void drpo__rows_axpy(size_t rows, size_t dim, const float *x, const float *c, float *g)
{
    if (rows == 0 || dim == 0)
        return;
    rntm_t rntm;
    one_thread(&rntm);
    float one = 1.0f;
    bli_sgemv_ex(BLIS_TRANSPOSE, BLIS_NO_CONJUGATE, (dim_t)rows, (dim_t)dim, &one, (float *)x,
                 (inc_t)dim, 1, (float *)c, 1, &one, g, 1, NULL, &rntm);
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

/* pairwise_linear.c - linear Bradley-Terry reward model and log-linear DPO
 * policy: margin m_j = (theta - theta_ref) . x_h for the feature-difference
 * row h of pair j, then a preference loss of the margin.
 *
 * Rows of a batch that follow each other in the data (h, h+1, ...) are done
 * as one BLIS gemv; scattered rows fall back to per-row dot products. */
#include "builtin.h"

#include <string.h>

typedef struct pairwise_linear {
    drpo_allocator alloc; /* first member: made by drpo__handle_new */
    size_t dim, rows;
    const float *diff; /* rows x dim, borrowed */
    int32_t kind;
    double beta, smoothing;
    float *theta_ref; /* [dim] or NULL */
    float *eff;       /* [dim] theta - theta_ref */
    float *buf;       /* [2 buf_cap]: margins, then the backward's coefficients */
    double *slope;    /* [slope_cap]: d loss / d margin of the last forward */
    size_t buf_cap, slope_cap;
    /* the forward whose margins and slopes are in buf and slope: the
     * trainer calls backward right after forward with the same parameters
     * and batch, which then reads the features once, not twice */
    const float *fw_params;
    const drpo_batch *fw_batch;
    size_t fw_n;
    int fw_valid;
} pairwise_linear;

static void pl_free(void *user)
{
    pairwise_linear *pl = user;
    drpo_allocator a = pl->alloc;
    drpo__free(&a, pl->theta_ref);
    drpo__free(&a, pl->eff);
    drpo__free(&a, pl->buf);
    drpo__free(&a, pl->slope);
    drpo__free(&a, pl);
}

/* Margins of every pair of the batch into pl->buf. */
static int margins(pairwise_linear *pl, const float *params, const drpo_batch *b)
{
    size_t n = drpo_batch_size(b), d = pl->dim;
    if (drpo__reserve(&pl->alloc, (void **)&pl->buf, &pl->buf_cap, n, 2 * sizeof(float)) ||
        drpo__reserve(&pl->alloc, (void **)&pl->slope, &pl->slope_cap, n, sizeof(double)))
        return DRPO_BUILTIN_NOMEM;
    const float *theta = params;
    if (pl->theta_ref) {
        for (size_t i = 0; i < d; i++)
            pl->eff[i] = params[i] - pl->theta_ref[i];
        theta = pl->eff;
    }
    int rc = drpo__builtin_check_indices(b, pl->rows);
    if (rc)
        return rc;
    for (size_t j = 0; j < n;) {
        size_t k = drpo__builtin_run(b, j, n);
        const float *x = pl->diff + (size_t)b->host[j] * d;
        if (k >= 4) {
            drpo__rows_dot(k, d, x, theta, pl->buf + j);
        } else {
            for (size_t r = 0; r < k; r++, x += d) {
                double s = 0.0;
                for (size_t i = 0; i < d; i++)
                    s += (double)x[i] * theta[i];
                pl->buf[j + r] = (float)s;
            }
        }
        j += k;
    }
    return 0;
}

/* The losses (loss may be NULL) and slopes of the n margins in pl->buf. */
static void losses(pairwise_linear *pl, size_t n, double *loss)
{
    enum { BLOCK = 256 };
    double m[BLOCK];
    for (size_t j = 0; j < n; j += BLOCK) {
        size_t k = n - j < BLOCK ? n - j : BLOCK;
        for (size_t r = 0; r < k; r++)
            m[r] = pl->buf[j + r];
        drpo__losses(pl->kind, k, m, pl->beta, pl->smoothing, loss ? loss + j : NULL,
                     pl->slope + j);
    }
}

static int pl_forward(void *user, const float *params, const drpo_batch *b, double *loss)
{
    pairwise_linear *pl = user;
    pl->fw_valid = 0;
    int rc = margins(pl, params, b);
    if (rc)
        return rc;
    size_t n = drpo_batch_size(b);
    losses(pl, n, loss);
    pl->fw_params = params;
    pl->fw_batch = b;
    pl->fw_n = n;
    pl->fw_valid = 1;
    return 0;
}

static int pl_backward(void *user, const float *params, const drpo_batch *b, const double *w,
                       float *grad)
{
    pairwise_linear *pl = user;
    size_t n = drpo_batch_size(b), d = pl->dim;
    int cached = pl->fw_valid && pl->fw_params == params && pl->fw_batch == b && pl->fw_n == n;
    pl->fw_valid = 0;
    if (!cached) {
        int rc = margins(pl, params, b);
        if (rc)
            return rc;
        losses(pl, n, NULL);
    }
    float *coef = pl->buf + pl->buf_cap;
    for (size_t j = 0; j < n; j++)
        coef[j] = (float)(w[j] * pl->slope[j]);
    for (size_t j = 0; j < n;) {
        size_t k = drpo__builtin_run(b, j, n);
        const float *x = pl->diff + (size_t)b->host[j] * d;
        if (k >= 4) {
            drpo__rows_axpy(k, d, x, coef + j, grad);
        } else {
            for (size_t r = 0; r < k; r++, x += d)
                for (size_t i = 0; i < d; i++)
                    grad[i] += coef[j + r] * x[i];
        }
        j += k;
    }
    return 0;
}

drpo_status drpo_pairwise_linear_create_with_allocator(drpo_model **out, size_t dim, size_t rows,
                                                       const float *diff, int32_t loss_kind,
                                                       double beta, double smoothing,
                                                       const float *theta_ref,
                                                       const drpo_allocator *alloc)
{
    if (!out)
        return DRPO_ERR_NULL;
    *out = NULL;
    if (!diff && rows)
        return DRPO_ERR_NULL;
    if (dim == 0)
        return DRPO_ERR_SIZE;
    drpo_status st = drpo__loss_check(loss_kind, beta, smoothing);
    if (st != DRPO_OK)
        return st;
    pairwise_linear *pl;
    if ((st = drpo__handle_new(alloc, sizeof *pl, (void **)&pl)) != DRPO_OK)
        return st;
    drpo_allocator a = pl->alloc;
    pl->dim = dim;
    pl->rows = rows;
    pl->diff = diff;
    pl->kind = loss_kind;
    pl->beta = beta;
    pl->smoothing = smoothing;
    if (theta_ref) {
        pl->theta_ref = drpo__malloc_array(&a, dim, sizeof(float));
        pl->eff = drpo__malloc_array(&a, dim, sizeof(float));
        if (!pl->theta_ref || !pl->eff) {
            pl_free(pl);
            return DRPO_ERR_NOMEM;
        }
        memcpy(pl->theta_ref, theta_ref, dim * sizeof(float));
    }
    drpo_model_callbacks cb = {sizeof cb, pl_forward, pl_backward, pl_free};
    return drpo__builtin_model(out, dim, &cb, pl, &a);
}

drpo_status drpo_pairwise_linear_create(drpo_model **out, size_t dim, size_t rows,
                                        const float *diff, int32_t loss_kind, double beta,
                                        double smoothing, const float *theta_ref)
{
    return drpo_pairwise_linear_create_with_allocator(out, dim, rows, diff, loss_kind, beta,
                                                      smoothing, theta_ref, NULL);
}

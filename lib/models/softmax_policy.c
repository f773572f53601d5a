/* softmax_policy.c - log-linear softmax policy over a finite candidate set
 * per prompt, for the policy step of reward-based RLHF.
 *
 * With s_k = theta . phi_k, pi = softmax(s), rho = pi_ref, and
 * g_k = r_k - beta (log pi_k - log rho_k), the per-prompt objective
 * J = E_pi r - beta KL(pi || rho) has dJ/ds_k = pi_k (g_k - E_pi g) (the
 * terms from d log pi vanish since sum_k d pi_k = 0), so the loss -J has the
 * exact gradient -sum_k pi_k (g_k - E_pi g) phi_k. */
#include "builtin.h"

#include <math.h>
#include <string.h>

typedef struct softmax_policy {
    drpo_allocator alloc; /* first member: made by drpo__handle_new */
    size_t dim, n_prompts, max_k;
    const size_t *off;     /* [n_prompts + 1], borrowed */
    const float *features; /* [off[n_prompts] x dim], borrowed */
    const double *reward;  /* [off[n_prompts]], borrowed */
    double beta;
    double *ref_logp;      /* [off[n_prompts]] log pi_ref */
    float *logit;          /* [max_k] */
    double *logp, *prob;   /* [max_k] each: log pi and pi of one prompt */
    /* a value per candidate of the batch, in batch order: */
    double *slope;         /* d loss_j / d s_c, from the last forward */
    float *score;          /* the forward's scores s_c, then the backward's coefficients */
    size_t slope_cap, score_cap;
    /* the forward whose slopes are in `slope`: the trainer calls backward
     * right after forward with the same parameters and batch, which then
     * reads the features once more instead of twice and takes no exp */
    const float *fw_params;
    const drpo_batch *fw_batch;
    size_t fw_n;
    int fw_valid;
} softmax_policy;

static void sp_free(void *user)
{
    softmax_policy *sp = user;
    drpo_allocator a = sp->alloc;
    drpo__free(&a, sp->ref_logp);
    drpo__free(&a, sp->logit);
    drpo__free(&a, sp->logp);
    drpo__free(&a, sp->prob);
    drpo__free(&a, sp->slope);
    drpo__free(&a, sp->score);
    drpo__free(&a, sp);
}

/* log pi and pi of k candidates with scores s into sp->logp and sp->prob. */
static void softmax(softmax_policy *sp, const float *s, size_t k)
{
    double top = -INFINITY;
    for (size_t c = 0; c < k; c++)
        top = fmax(top, (double)s[c]);
    double z = 0.0;
    for (size_t c = 0; c < k; c++) {
        sp->prob[c] = exp((double)s[c] - top);
        z += sp->prob[c];
    }
    double lz = top + log(z);
    for (size_t c = 0; c < k; c++) {
        sp->logp[c] = (double)s[c] - lz;
        sp->prob[c] /= z;
    }
}

/* softmax() of prompt i under theta; returns its candidate count. */
static size_t policy(softmax_policy *sp, const float *theta, size_t i)
{
    size_t a = sp->off[i], k = sp->off[i + 1] - a;
    drpo__rows_dot(k, sp->dim, sp->features + a * sp->dim, theta, sp->logit);
    softmax(sp, sp->logit, k);
    return k;
}

/* E_pi reward and sum pi (log pi - log pi_ref) for prompt i, from
 * softmax(): KL(pi || pi_ref) but for rounding, which can make it a hair
 * negative (the KL reported is clamped at 0; the gradient's E_pi g takes
 * the sum as it is). */
static void prompt_stats(const softmax_policy *sp, size_t i, const double *reward, double *er,
                         double *kl_sum)
{
    size_t a = sp->off[i], k = sp->off[i + 1] - a;
    double e = 0.0, d = 0.0;
    for (size_t c = 0; c < k; c++) {
        e += sp->prob[c] * reward[a + c];
        d += sp->prob[c] * (sp->logp[c] - sp->ref_logp[a + c]);
    }
    *er = e;
    *kl_sum = d;
}

/* Every prompt of the batch: its loss into loss[j] (unless loss is NULL)
 * and the slopes of its candidates' scores, -pi_c (g_c - E_pi g), into
 * sp->slope in batch order.  The scores of a run of consecutive prompts,
 * whose candidates follow each other in the features, come from one gemv. */
static int slopes(softmax_policy *sp, const float *params, const drpo_batch *b, double *loss)
{
    int rc = drpo__builtin_check_indices(b, sp->n_prompts);
    if (rc)
        return rc;
    size_t n = drpo_batch_size(b), total = 0;
    for (size_t j = 0; j < n; j++)
        total += sp->off[b->host[j] + 1] - sp->off[b->host[j]];
    if (drpo__reserve(&sp->alloc, (void **)&sp->slope, &sp->slope_cap, total, sizeof(double)) ||
        drpo__reserve(&sp->alloc, (void **)&sp->score, &sp->score_cap, total, sizeof(float)))
        return DRPO_BUILTIN_NOMEM;
    size_t at = 0;
    for (size_t j = 0; j < n;) {
        size_t run = drpo__builtin_run(b, j, n), first = (size_t)b->host[j];
        size_t a = sp->off[first];
        drpo__rows_dot(sp->off[first + run] - a, sp->dim, sp->features + a * sp->dim, params,
                       sp->score + at);
        for (size_t i = first; i < first + run; i++, j++) {
            size_t k = sp->off[i + 1] - sp->off[i];
            const double *reward = sp->reward + sp->off[i], *ref = sp->ref_logp + sp->off[i];
            double *out = sp->slope + at;
            softmax(sp, sp->score + at, k);
            double er, kl; /* E_pi g = E_pi r - beta sum pi (log pi - log pi_ref) */
            prompt_stats(sp, i, sp->reward, &er, &kl);
            if (loss)
                loss[j] = -(er - sp->beta * fmax(kl, 0.0));
            double mean_g = er - sp->beta * kl;
            for (size_t c = 0; c < k; c++)
                out[c] = -sp->prob[c] * ((reward[c] - sp->beta * (sp->logp[c] - ref[c])) - mean_g);
            at += k;
        }
    }
    return 0;
}

static int sp_forward(void *user, const float *params, const drpo_batch *b, double *loss)
{
    softmax_policy *sp = user;
    sp->fw_valid = 0;
    int rc = slopes(sp, params, b, loss);
    if (rc)
        return rc;
    sp->fw_params = params;
    sp->fw_batch = b;
    sp->fw_n = drpo_batch_size(b);
    sp->fw_valid = 1;
    return 0;
}

static int sp_backward(void *user, const float *params, const drpo_batch *b, const double *w,
                       float *grad)
{
    softmax_policy *sp = user;
    size_t n = drpo_batch_size(b);
    int cached = sp->fw_valid && sp->fw_params == params && sp->fw_batch == b && sp->fw_n == n;
    sp->fw_valid = 0;
    if (!cached) {
        int rc = slopes(sp, params, b, NULL);
        if (rc)
            return rc;
    }
    size_t at = 0;
    for (size_t j = 0; j < n;) { /* weighted coefficients of phi_c, a run at a time */
        size_t run = drpo__builtin_run(b, j, n), first = (size_t)b->host[j], from = at;
        for (size_t i = first; i < first + run; i++, j++)
            for (size_t c = sp->off[i]; c < sp->off[i + 1]; c++, at++)
                sp->score[at] = (float)(w[j] * sp->slope[at]);
        size_t a = sp->off[first];
        drpo__rows_axpy(sp->off[first + run] - a, sp->dim, sp->features + a * sp->dim,
                        sp->score + from, grad);
    }
    return 0;
}

drpo_status drpo_softmax_policy_create_with_allocator(drpo_model **out, size_t dim,
                                                      size_t n_prompts, const size_t *offsets,
                                                      const float *features, const double *rewards,
                                                      const float *theta_ref, double beta,
                                                      const drpo_allocator *alloc)
{
    if (!out)
        return DRPO_ERR_NULL;
    *out = NULL;
    if (!offsets || !features || !rewards)
        return DRPO_ERR_NULL;
    if (dim == 0 || n_prompts == 0 || offsets[0] != 0)
        return DRPO_ERR_SIZE;
    size_t max_k = 0;
    for (size_t i = 0; i < n_prompts; i++) {
        if (offsets[i + 1] <= offsets[i])
            return DRPO_ERR_SIZE;
        if (offsets[i + 1] - offsets[i] > max_k)
            max_k = offsets[i + 1] - offsets[i];
    }
    if (!(beta >= 0.0) || !isfinite(beta))
        return DRPO_ERR_PARAM_RANGE;
    softmax_policy *sp;
    drpo_status st = drpo__handle_new(alloc, sizeof *sp, (void **)&sp);
    if (st != DRPO_OK)
        return st;
    drpo_allocator a = sp->alloc;
    sp->dim = dim;
    sp->n_prompts = n_prompts;
    sp->max_k = max_k;
    sp->off = offsets;
    sp->features = features;
    sp->reward = rewards;
    sp->beta = beta;
    size_t total = offsets[n_prompts];
    sp->ref_logp = drpo__malloc_array(&a, total, sizeof(double));
    sp->logit = drpo__malloc_array(&a, max_k, sizeof(float));
    sp->logp = drpo__malloc_array(&a, max_k, sizeof(double));
    sp->prob = drpo__malloc_array(&a, max_k, sizeof(double));
    float *zero = theta_ref ? NULL : drpo__malloc_array(&a, dim, sizeof(float));
    if (!sp->ref_logp || !sp->logit || !sp->logp || !sp->prob || (!theta_ref && !zero)) {
        drpo__free(&a, zero);
        sp_free(sp);
        return DRPO_ERR_NOMEM;
    }
    if (zero)
        memset(zero, 0, dim * sizeof(float));
    for (size_t i = 0; i < n_prompts; i++) {
        size_t k = policy(sp, theta_ref ? theta_ref : zero, i);
        memcpy(sp->ref_logp + offsets[i], sp->logp, k * sizeof(double));
    }
    drpo__free(&a, zero);
    drpo_model_callbacks cb = {sizeof cb, sp_forward, sp_backward, sp_free};
    return drpo__builtin_model(out, dim, &cb, sp, &a);
}

drpo_status drpo_softmax_policy_create(drpo_model **out, size_t dim, size_t n_prompts,
                                       const size_t *offsets, const float *features,
                                       const double *rewards, const float *theta_ref, double beta)
{
    return drpo_softmax_policy_create_with_allocator(out, dim, n_prompts, offsets, features,
                                                     rewards, theta_ref, beta, NULL);
}

drpo_status drpo_softmax_policy_stats(const drpo_model *m, size_t prompt, const double *reward,
                                      double *expected_reward, double *kl_to_ref)
{
    if (!m)
        return DRPO_ERR_NULL;
    if (m->cb.forward != sp_forward)
        return DRPO_ERR_STATE;
    softmax_policy *sp = m->user;
    if (prompt >= sp->n_prompts)
        return DRPO_ERR_SIZE;
    double er, kl;
    policy(sp, m->params, prompt);
    prompt_stats(sp, prompt, reward ? reward : sp->reward, &er, &kl);
    if (expected_reward)
        *expected_reward = er;
    if (kl_to_ref)
        *kl_to_ref = fmax(kl, 0.0);
    return DRPO_OK;
}

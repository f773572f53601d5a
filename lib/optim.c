/* optim.c - SGD, momentum / Nesterov and AdamW with decoupled weight decay;
 * constant, warm-up and cosine schedules.  Arithmetic in double, state in
 * float32; the update is a pure function of its inputs, so a checkpointed
 * run resumes bitwise. */
#include "optim.h"

#include <math.h>

void drpo__optim_defaults(drpo_optim_config *c)
{
    c->kind = DRPO_OPT_SGD;
    c->lr = 1e-3;
    c->momentum = 0.9;
    c->nesterov = 0;
    c->beta1 = 0.9;
    c->beta2 = 0.999;
    c->eps = 1e-8;
    c->weight_decay = 0.0;
    c->clip_norm = 0.0;
    c->schedule = DRPO_SCHED_CONSTANT;
    c->warmup = 0.0;
    c->total_steps = 0.0;
    c->min_lr = 0.0;
}

double drpo__lr_at(const drpo_optim_config *c, uint64_t step)
{
    double s = (double)step;
    if (c->schedule != DRPO_SCHED_CONSTANT && s < c->warmup)
        return c->lr * (s + 1.0) / c->warmup;
    if (c->schedule != DRPO_SCHED_COSINE)
        return c->lr;
    double span = c->total_steps - c->warmup;
    double progress = span > 0.0 ? (s - c->warmup) / span : 1.0;
    if (progress > 1.0)
        progress = 1.0;
    const double pi = 3.14159265358979323846;
    return c->lr * (c->min_lr + (1.0 - c->min_lr) * 0.5 * (1.0 + cos(pi * progress)));
}

int drpo__optim_moments(int32_t kind)
{
    return kind == DRPO_OPT_ADAMW ? 2 : kind == DRPO_OPT_MOMENTUM ? 1 : 0;
}

void drpo__optim_update(const drpo_optim_config *c, size_t n, float *theta, const float *g,
                        double gscale, float *m1, float *m2, uint64_t step, double lr,
                        int commit, drpo_optim_stats *st)
{
    double decay = 1.0 - lr * c->weight_decay;
    double bc1 = 1.0, bc2 = 1.0;
    if (c->kind == DRPO_OPT_ADAMW) {
        bc1 = 1.0 - pow(c->beta1, (double)step + 1.0);
        bc2 = 1.0 - pow(c->beta2, (double)step + 1.0);
    }
    double upd2 = 0.0, par2 = 0.0;
    int finite = 1;
    for (size_t i = 0; i < n; i++) {
        double gi = (double)g[i] * gscale;
        double th = theta[i];
        float new_m1 = 0.0f, new_m2 = 0.0f;
        double dir;
        switch (c->kind) {
        case DRPO_OPT_MOMENTUM: {
            new_m1 = (float)(c->momentum * m1[i] + gi);
            dir = c->nesterov ? gi + c->momentum * new_m1 : new_m1;
            break;
        }
        case DRPO_OPT_ADAMW: {
            new_m1 = (float)(c->beta1 * m1[i] + (1.0 - c->beta1) * gi);
            new_m2 = (float)(c->beta2 * m2[i] + (1.0 - c->beta2) * gi * gi);
            dir = ((double)new_m1 / bc1) / (sqrt((double)new_m2 / bc2) + c->eps);
            break;
        }
        default: dir = gi; break;
        }
        float nt = (float)(th * decay - lr * dir);
        double du = (double)nt - th;
        upd2 += du * du;
        par2 += (double)nt * nt;
        finite &= isfinite(nt) && isfinite(new_m1) && isfinite(new_m2);
        if (commit) {
            theta[i] = nt;
            if (m1)
                m1[i] = new_m1;
            if (m2)
                m2[i] = new_m2;
        }
    }
    st->update_norm2 = upd2;
    st->param_norm2 = par2;
    st->finite = finite;
}

/* trainer_options.c - the trainer's numbered options: ranges, defaults,
 * setters and getters (the optimiser's and the convergence test's). */
#include "trainer.h"

#include <math.h>

typedef struct option_spec {
    double lo, hi;
    unsigned char lo_open, hi_open, whole;
    double def;
} option_spec;

#define NOPT DRPO__NOPT

static const option_spec option_specs[NOPT] = {
    [DRPO_TRAIN_OPTIMIZER] = {0, 2, 0, 0, 1, DRPO_OPT_SGD},
    [DRPO_TRAIN_LR] = {0, HUGE_VAL, 1, 0, 0, 1e-3},
    [DRPO_TRAIN_MOMENTUM] = {0, 1, 0, 1, 0, 0.9},
    [DRPO_TRAIN_NESTEROV] = {0, 1, 0, 0, 1, 0},
    [DRPO_TRAIN_BETA1] = {0, 1, 0, 1, 0, 0.9},
    [DRPO_TRAIN_BETA2] = {0, 1, 0, 1, 0, 0.999},
    [DRPO_TRAIN_EPS] = {0, HUGE_VAL, 1, 0, 0, 1e-8},
    [DRPO_TRAIN_WEIGHT_DECAY] = {0, HUGE_VAL, 0, 0, 0, 0},
    [DRPO_TRAIN_CLIP_NORM] = {0, HUGE_VAL, 0, 0, 0, 0},
    [DRPO_TRAIN_SCHEDULE] = {0, 2, 0, 0, 1, DRPO_SCHED_CONSTANT},
    [DRPO_TRAIN_WARMUP] = {0, 9.007199254740992e15, 0, 0, 1, 0},
    [DRPO_TRAIN_TOTAL_STEPS] = {0, 9.007199254740992e15, 0, 0, 1, 0},
    [DRPO_TRAIN_MIN_LR] = {0, 1, 0, 0, 0, 0},
    [DRPO_TRAIN_GRAD_TOL] = {0, HUGE_VAL, 0, 0, 0, 1e-6},
    [DRPO_TRAIN_REL_TOL] = {0, HUGE_VAL, 0, 0, 0, 1e-6},
    [DRPO_TRAIN_WINDOW] = {1, DRPO__MAX_WINDOW, 0, 0, 1, 10},
    [DRPO_TRAIN_MAX_STEPS] = {0, 9.007199254740992e15, 0, 0, 1, 0},
    [DRPO_TRAIN_SMOOTHING] = {0, 1, 0, 1, 0, 0.9},
};

static int option_ok(const option_spec *s, double v)
{
    if (!isfinite(v))
        return 0;
    if (s->lo_open ? !(v > s->lo) : !(v >= s->lo))
        return 0;
    if (s->hi_open ? !(v < s->hi) : !(v <= s->hi))
        return 0;
    return !s->whole || v == floor(v);
}

void drpo__trainer_apply_option(drpo_trainer *t, int32_t key, double v)
{
    drpo_optim_config *o = &t->opt;
    switch (key) {
    case DRPO_TRAIN_OPTIMIZER: o->kind = (int32_t)v; break;
    case DRPO_TRAIN_LR: o->lr = v; break;
    case DRPO_TRAIN_MOMENTUM: o->momentum = v; break;
    case DRPO_TRAIN_NESTEROV: o->nesterov = (int)v; break;
    case DRPO_TRAIN_BETA1: o->beta1 = v; break;
    case DRPO_TRAIN_BETA2: o->beta2 = v; break;
    case DRPO_TRAIN_EPS: o->eps = v; break;
    case DRPO_TRAIN_WEIGHT_DECAY: o->weight_decay = v; break;
    case DRPO_TRAIN_CLIP_NORM: o->clip_norm = v; break;
    case DRPO_TRAIN_SCHEDULE: o->schedule = (int32_t)v; break;
    case DRPO_TRAIN_WARMUP: o->warmup = v; break;
    case DRPO_TRAIN_TOTAL_STEPS: o->total_steps = v; break;
    case DRPO_TRAIN_MIN_LR: o->min_lr = v; break;
    case DRPO_TRAIN_GRAD_TOL: t->test.grad_tol = v; break;
    case DRPO_TRAIN_REL_TOL: t->test.rel_tol = v; break;
    case DRPO_TRAIN_WINDOW: t->test.window = (int32_t)v; break;
    case DRPO_TRAIN_MAX_STEPS: t->test.max_steps = v; break;
    default: t->test.smoothing = v; break; /* DRPO_TRAIN_SMOOTHING */
    }
}

double drpo__trainer_read_option(const drpo_trainer *t, int32_t key)
{
    const drpo_optim_config *o = &t->opt;
    switch (key) {
    case DRPO_TRAIN_OPTIMIZER: return o->kind;
    case DRPO_TRAIN_LR: return o->lr;
    case DRPO_TRAIN_MOMENTUM: return o->momentum;
    case DRPO_TRAIN_NESTEROV: return o->nesterov;
    case DRPO_TRAIN_BETA1: return o->beta1;
    case DRPO_TRAIN_BETA2: return o->beta2;
    case DRPO_TRAIN_EPS: return o->eps;
    case DRPO_TRAIN_WEIGHT_DECAY: return o->weight_decay;
    case DRPO_TRAIN_CLIP_NORM: return o->clip_norm;
    case DRPO_TRAIN_SCHEDULE: return o->schedule;
    case DRPO_TRAIN_WARMUP: return o->warmup;
    case DRPO_TRAIN_TOTAL_STEPS: return o->total_steps;
    case DRPO_TRAIN_MIN_LR: return o->min_lr;
    case DRPO_TRAIN_GRAD_TOL: return t->test.grad_tol;
    case DRPO_TRAIN_REL_TOL: return t->test.rel_tol;
    case DRPO_TRAIN_WINDOW: return t->test.window;
    case DRPO_TRAIN_MAX_STEPS: return t->test.max_steps;
    default: return t->test.smoothing;
    }
}

int drpo__trainer_option_valid(int32_t key, double value)
{
    return key >= 1 && key < NOPT && option_ok(&option_specs[key], value);
}

drpo_status drpo_trainer_set(drpo_trainer *t, int32_t key, double value)
{
    if (!t)
        return DRPO_ERR_NULL;
    if (key < 1 || key >= NOPT)
        return drpo__fail(t->err, DRPO_ERR_KEY, "unknown trainer option %d", (int)key);
    if (!option_ok(&option_specs[key], value))
        return drpo__fail(t->err, DRPO_ERR_PARAM_RANGE, "trainer option %d: value %g out of range",
                          (int)key, value);
    if (key == DRPO_TRAIN_OPTIMIZER && t->steps > 0 && value != t->opt.kind)
        return drpo__fail(t->err, DRPO_ERR_STATE,
                          "the optimiser cannot change once training has started");
    drpo__trainer_apply_option(t, key, value);
    return DRPO_OK;
}

drpo_status drpo_trainer_get(const drpo_trainer *t, int32_t key, double *value)
{
    if (!t || !value)
        return DRPO_ERR_NULL;
    if (key < 1 || key >= NOPT)
        return DRPO_ERR_KEY;
    *value = drpo__trainer_read_option(t, key);
    return DRPO_OK;
}

void drpo__trainer_defaults(drpo_trainer *t)
{
    for (int32_t k = 1; k < NOPT; k++)
        drpo__trainer_apply_option(t, k, option_specs[k].def);
}

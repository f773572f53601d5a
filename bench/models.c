/* models.c - benchmark (4): the built-in models' forward + backward on a
 * batch of all the data, through drpo_trainer_step (ERM, SGD):
 *   linear  the linear Bradley-Terry model (drpo_pairwise_linear_create) on
 *           an n x d feature matrix, one row per pair;
 *   policy  the softmax policy (drpo_softmax_policy_create) on the same
 *           matrix as n / 8 prompts of 8 candidates each, one entry per
 *           prompt.
 * The model's share is the step's time minus the same step over a model
 * with empty callbacks (the batch's units, weights and the optimiser on d
 * parameters).  Floor: two streaming read passes over the features (forward
 * reads them, backward reads them again), measured on the same array. */
#include "common.h"

#include <drpo.h>

static int nop_fwd(void *u, const float *p, const drpo_batch *b, double *loss)
{
    (void)u, (void)p;
    size_t n = drpo_batch_size(b);
    for (size_t j = 0; j < n; j++)
        loss[j] = 0.6931471805599453;
    return 0;
}

static int nop_bwd(void *u, const float *p, const drpo_batch *b, const double *w, float *g)
{
    (void)u, (void)p, (void)b, (void)w, (void)g;
    return 0;
}

static double time_steps(drpo_trainer *t, const drpo_batch *b, int reps)
{
    double tt[64];
    if (drpo_trainer_step(t, b)) /* scratch, first-step work */
        exit(1);
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now();
        if (drpo_trainer_step(t, b)) {
            fprintf(stderr, "bench-models: %s\n", drpo_trainer_last_error(t));
            exit(1);
        }
        tt[r] = bench_now() - t0;
    }
    return bench_median(tt, reps);
}

enum { CANDIDATES = 8 };

/* One model's share of a step on a batch of `entries` (host indices 0 ..
 * entries - 1, four to a unit) over n feature rows of d, printed with the
 * floor `pass` x 2; the model is freed. */
static void report(const char *name, drpo_model *m, size_t entries, size_t n, size_t d,
                   double pass)
{
    int reps = 11;
    drpo_batch *b;
    drpo_objective *o;
    drpo_model *nop;
    drpo_trainer *t, *tn;
    drpo_model_callbacks cb = {sizeof cb, nop_fwd, nop_bwd, NULL};
    if (drpo_batch_create(&b) || drpo_objective_create(&o, DRPO_SET_NONE) ||
        drpo_model_create(&nop, d, &cb, NULL) || drpo_trainer_create(&t, m, o) ||
        drpo_trainer_create(&tn, nop, o))
        exit(1);
    for (size_t j = 0; j < entries; j++)
        drpo_batch_add_key(b, (uint64_t)(j / 4) * 0x9E3779B97F4A7C15ull + 1, -1, (int64_t)j);
    float *p = drpo_model_params(m);
    for (size_t i = 0; i < d; i++)
        p[i] = 0.01f * (float)((int)(i % 11) - 5);
    drpo_trainer_set(t, DRPO_TRAIN_LR, 1e-6);
    double step = time_steps(t, b, reps), base = time_steps(tn, b, reps);
    double model = step - base;
    printf("{\"bench\":\"%s\",\"n\":%zu,\"d\":%zu,\"entries\":%zu,\"reps\":%d,"
           "\"step_seconds\":%.6e,\"nop_step_seconds\":%.6e,\"seconds\":%.6e,"
           "\"pass_seconds\":%.6e,\"floor_seconds\":%.6e,\"ratio\":%.3f}\n",
           name, n, d, entries, reps, step, base, model, pass, 2 * pass, model / (2 * pass));
    fflush(stdout);
    drpo_trainer_free(t);
    drpo_trainer_free(tn);
    drpo_model_free(m);
    drpo_model_free(nop);
    drpo_objective_free(o);
    drpo_batch_free(b);
}

int main(void)
{
    size_t shapes[][2] = {{100000, 256}, {1000000, 64}};
    for (int s = 0; s < 2; s++) {
        size_t n = shapes[s][0], d = shapes[s][1], prompts = n / CANDIDATES;
        float *x = bench_alloc(n * d * sizeof(float));
        double *reward = bench_alloc(n * sizeof(double));
        size_t *off = bench_alloc((prompts + 1) * sizeof(size_t));
        uint64_t z = 7;
        for (size_t i = 0; i < n * d; i++) {
            z ^= z << 13, z ^= z >> 7, z ^= z << 17;
            x[i] = (float)((double)(z >> 40) / 16777216.0 - 0.5);
        }
        for (size_t i = 0; i < n; i++)
            reward[i] = (double)(i % 5) * 0.25;
        for (size_t i = 0; i <= prompts; i++)
            off[i] = i * CANDIDATES;
        double tp[64];
        for (int r = 0; r < 11; r++) {
            double t0 = bench_now();
            bench_sink = bench_read_pass_f32(x, n * d);
            tp[r] = bench_now() - t0;
        }
        double pass = bench_median(tp, 11);
        drpo_model *m;
        if (drpo_pairwise_linear_create(&m, d, n, x, DRPO_LOSS_BT, 0, 0, NULL))
            return 1;
        report("linear", m, n, n, d, pass);
        if (drpo_softmax_policy_create(&m, d, prompts, off, x, reward, NULL, 0.1))
            return 1;
        report("policy", m, prompts, n, d, pass);
        free(x);
        free(reward);
        free(off);
    }
    return 0;
}

/* linear.c - benchmark (4): the built-in linear Bradley-Terry model
 * (drpo_pairwise_linear_create) forward + backward on a batch of all n
 * rows of an n x d feature matrix, through drpo_trainer_step (ERM, SGD).
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

static float read_pass(const float *x, size_t n)
{
    float s[16] = {0};
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 16; k++)
            s[k] += x[i + k];
    float t = 0;
    for (int k = 0; k < 16; k++)
        t += s[k];
    return t;
}

static double time_steps(drpo_trainer *t, const drpo_batch *b, int reps)
{
    double tt[64];
    if (drpo_trainer_step(t, b)) /* scratch, first-step work */
        exit(1);
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now();
        if (drpo_trainer_step(t, b)) {
            fprintf(stderr, "bench-linear: %s\n", drpo_trainer_last_error(t));
            exit(1);
        }
        tt[r] = bench_now() - t0;
    }
    return bench_median(tt, reps);
}

int main(void)
{
    size_t shapes[][2] = {{100000, 256}, {1000000, 64}};
    for (int s = 0; s < 2; s++) {
        size_t n = shapes[s][0], d = shapes[s][1];
        float *x = bench_alloc(n * d * sizeof(float));
        uint64_t z = 7;
        for (size_t i = 0; i < n * d; i++) {
            z ^= z << 13, z ^= z >> 7, z ^= z << 17;
            x[i] = (float)((double)(z >> 40) / 16777216.0 - 0.5);
        }
        int reps = 11;
        double tp[64];
        for (int r = 0; r < reps; r++) {
            double t0 = bench_now();
            bench_sink = read_pass(x, n * d);
            tp[r] = bench_now() - t0;
        }
        double pass = bench_median(tp, reps);
        drpo_batch *b;
        if (drpo_batch_create(&b))
            return 1;
        for (size_t j = 0; j < n; j++)
            drpo_batch_add_key(b, (uint64_t)(j / 4) * 0x9E3779B97F4A7C15ull + 1, -1, (int64_t)j);
        drpo_objective *o;
        drpo_model *m, *nop;
        drpo_trainer *t, *tn;
        drpo_model_callbacks cb = {sizeof cb, nop_fwd, nop_bwd, NULL};
        if (drpo_objective_create(&o, DRPO_SET_NONE) ||
            drpo_pairwise_linear_create(&m, d, n, x, DRPO_LOSS_BT, 0, 0, NULL) ||
            drpo_model_create(&nop, d, &cb, NULL) || drpo_trainer_create(&t, m, o) ||
            drpo_trainer_create(&tn, nop, o))
            return 1;
        float *p = drpo_model_params(m);
        for (size_t i = 0; i < d; i++)
            p[i] = 0.01f * (float)((int)(i % 11) - 5);
        drpo_trainer_set(t, DRPO_TRAIN_LR, 1e-6);
        double step = time_steps(t, b, reps), base = time_steps(tn, b, reps);
        double model = step - base;
        printf("{\"bench\":\"linear\",\"n\":%zu,\"d\":%zu,\"reps\":%d,\"step_seconds\":%.6e,"
               "\"nop_step_seconds\":%.6e,\"seconds\":%.6e,\"pass_seconds\":%.6e,"
               "\"floor_seconds\":%.6e,\"ratio\":%.3f}\n",
               n, d, reps, step, base, model, pass, 2 * pass, model / (2 * pass));
        fflush(stdout);
        drpo_trainer_free(t);
        drpo_trainer_free(tn);
        drpo_model_free(m);
        drpo_model_free(nop);
        drpo_objective_free(o);
        drpo_batch_free(b);
        free(x);
    }
    return 0;
}

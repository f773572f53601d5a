/* optim.c - benchmarks (3) and (6) through the public API.
 *
 * (3) the optimiser update (AdamW, SGD with momentum) on d float32
 *     parameters: a trainer over a model whose forward writes one constant
 *     loss and whose backward memcpy's a fixed gradient, a batch of one
 *     pair, ERM (no robust work).  The time inside the callbacks is measured
 *     and subtracted.  Floor: the bytes the update must move (AdamW: read
 *     theta, g, m1, m2, write theta, m1, m2 = 28 B per parameter; momentum:
 *     20 B) over the measured in-place streaming bandwidth.
 * (6) the library's overhead per step with trivial callbacks (d = 16,
 *     per-pair losses 0.1 j, no work in the callbacks) for batches of B
 *     pairs, one prompt each, and the allocations per steady-state step
 *     (a counting drpo_allocator). */
#include "common.h"

#include <drpo.h>
#include <math.h>

typedef struct cb_state {
    size_t d;
    const float *gsrc;
    double cb_seconds;
} cb_state;

static int fwd(void *user, const float *params, const drpo_batch *b, double *loss)
{
    cb_state *s = user;
    (void)params;
    double t0 = bench_now();
    size_t n = drpo_batch_size(b);
    for (size_t j = 0; j < n; j++)
        loss[j] = 0.1 * (double)(j % 97) + 0.01 * (double)(drpo_batch_host_index(b, j) % 13);
    s->cb_seconds += bench_now() - t0;
    return 0;
}

static int bwd(void *user, const float *params, const drpo_batch *b, const double *w,
               float *grad)
{
    cb_state *s = user;
    (void)params, (void)b, (void)w;
    double t0 = bench_now();
    if (s->gsrc)
        memcpy(grad, s->gsrc, s->d * sizeof(float));
    s->cb_seconds += bench_now() - t0;
    return 0;
}

typedef struct counts {
    long mallocs, reallocs, frees;
} counts;
static void *c_malloc(void *u, size_t n) { ((counts *)u)->mallocs++; return malloc(n); }
static void *c_realloc(void *u, void *p, size_t n) { ((counts *)u)->reallocs++; return realloc(p, n); }
static void c_free(void *u, void *p) { if (p) ((counts *)u)->frees++; free(p); }

static void optimiser(size_t d, int32_t opt, const bench_bw *bw)
{
    counts c = {0, 0, 0};
    drpo_allocator a = {sizeof a, c_malloc, c_realloc, c_free, &c};
    float *g = bench_alloc(d * sizeof(float));
    for (size_t i = 0; i < d; i++)
        g[i] = 1e-3f * (float)((int)(i % 2001) - 1000);
    cb_state s = {d, g, 0};
    drpo_model_callbacks cb = {sizeof cb, fwd, bwd, NULL};
    drpo_model *m;
    drpo_objective *o;
    drpo_trainer *t;
    drpo_batch *b;
    if (drpo_model_create_with_allocator(&m, d, &cb, &s, &a) ||
        drpo_objective_create_with_allocator(&o, DRPO_SET_NONE, &a) ||
        drpo_trainer_create_with_allocator(&t, m, o, &a) ||
        drpo_batch_create_with_allocator(&b, &a) || drpo_batch_add_key(b, 1, -1, 0) ||
        drpo_trainer_set(t, DRPO_TRAIN_OPTIMIZER, opt) ||
        drpo_trainer_set(t, DRPO_TRAIN_LR, 1e-3) ||
        drpo_trainer_set(t, DRPO_TRAIN_WEIGHT_DECAY, opt == DRPO_OPT_ADAMW ? 0.01 : 0)) {
        fprintf(stderr, "bench-optim: setup failed\n");
        exit(1);
    }
    float *p = drpo_model_params(m);
    for (size_t i = 0; i < d; i++)
        p[i] = 1e-2f * (float)((int)(i % 101) - 50);
    if (drpo_trainer_step(t, b)) /* moments allocated, the bounds known */
        exit(1);
    int reps = d >= 50000000 ? 5 : 9;
    double tt[64], tc[64];
    long allocs0 = c.mallocs + c.reallocs;
    for (int r = 0; r < reps; r++) {
        s.cb_seconds = 0;
        double t0 = bench_now();
        if (drpo_trainer_step(t, b))
            exit(1);
        tt[r] = bench_now() - t0;
        tc[r] = s.cb_seconds;
    }
    long allocs = c.mallocs + c.reallocs - allocs0;
    double lib[64];
    for (int r = 0; r < reps; r++)
        lib[r] = tt[r] - tc[r];
    double step = bench_median(tt, reps), cbt = bench_median(tc, reps), net = bench_median(lib, reps);
    double bytes = (opt == DRPO_OPT_ADAMW ? 28.0 : 20.0) * (double)d;
    double floor = bytes / bw->inplace;
    printf("{\"bench\":\"optim\",\"opt\":\"%s\",\"d\":%zu,\"reps\":%d,\"step_seconds\":%.6e,"
           "\"callback_seconds\":%.6e,\"seconds\":%.6e,\"floor_seconds\":%.6e,\"floor_bytes\":%.0f,"
           "\"ratio\":%.3f,\"allocs_per_step\":%.3f}\n",
           opt == DRPO_OPT_ADAMW ? "adamw" : "momentum", d, reps, step, cbt, net, floor, bytes,
           net / floor, (double)allocs / reps);
    fflush(stdout);
    drpo_trainer_free(t);
    drpo_objective_free(o);
    drpo_model_free(m);
    drpo_batch_free(b);
    free(g);
}

typedef struct ovh {
    const char *name;
    int32_t set, key;
    double param;
    int32_t mode;
} ovh;

static void overhead(const ovh *v, size_t pairs)
{
    counts c = {0, 0, 0};
    drpo_allocator a = {sizeof a, c_malloc, c_realloc, c_free, &c};
    size_t d = 16;
    float g[16] = {0.01f, -0.02f, 0.03f};
    cb_state s = {d, g, 0};
    drpo_model_callbacks cb = {sizeof cb, fwd, bwd, NULL};
    drpo_model *m;
    drpo_objective *o;
    drpo_trainer *t;
    drpo_batch *b;
    if (drpo_model_create_with_allocator(&m, d, &cb, &s, &a) ||
        drpo_objective_create_with_allocator(&o, v->set, &a) ||
        (v->key && drpo_objective_set(o, v->key, v->param)) ||
        drpo_objective_set(o, DRPO_PARAM_MODE, v->mode) ||
        drpo_trainer_create_with_allocator(&t, m, o, &a) ||
        drpo_batch_create_with_allocator(&b, &a) ||
        drpo_trainer_set(t, DRPO_TRAIN_OPTIMIZER, DRPO_OPT_ADAMW)) {
        fprintf(stderr, "bench-optim: overhead setup failed\n");
        exit(1);
    }
    int steps = pairs <= 64 ? 20000 : pairs <= 4096 ? 400 : 20;
    double tt[64], tb[64];
    int reps = 7;
    long allocs0 = 0;
    uint64_t key = 0;
    for (int r = -1; r < reps; r++) {
        double fill = 0, cbs = 0, t0 = bench_now();
        if (r == 0)
            allocs0 = c.mallocs + c.reallocs;
        for (int k = 0; k < steps; k++) {
            double f0 = bench_now();
            drpo_batch_clear(b);
            for (size_t j = 0; j < pairs; j++)
                drpo_batch_add_key(b, key++ * 0x9E3779B97F4A7C15ull, -1, (int64_t)j);
            fill += bench_now() - f0;
            s.cb_seconds = 0;
            if (drpo_trainer_step(t, b)) {
                fprintf(stderr, "bench-optim: %s step failed: %s\n", v->name,
                        drpo_trainer_last_error(t));
                exit(1);
            }
            cbs += s.cb_seconds;
        }
        if (r >= 0) {
            tt[r] = (bench_now() - t0 - fill - cbs) / steps;
            tb[r] = fill / steps;
        }
    }
    long allocs = c.mallocs + c.reallocs - allocs0;
    double step = bench_median(tt, reps), batch = bench_median(tb, reps);
    printf("{\"bench\":\"overhead\",\"case\":\"%s\",\"pairs\":%zu,\"d\":%zu,\"step_seconds\":%.6e,"
           "\"per_pair_seconds\":%.6e,\"batch_fill_per_pair_seconds\":%.6e,"
           "\"allocs_per_step\":%.4f}\n",
           v->name, pairs, d, step, step / (double)pairs, batch / (double)pairs,
           (double)allocs / ((double)reps * steps));
    fflush(stdout);
    drpo_trainer_free(t);
    drpo_objective_free(o);
    drpo_model_free(m);
    drpo_batch_free(b);
}

int main(int argc, char **argv)
{
    int quick = argc > 1 && !strcmp(argv[1], "--quick");
    bench_bw bw;
    bench_bandwidth(400u << 20, 5, &bw);
    printf("{\"bench\":\"bandwidth\",\"bytes\":%u,\"read\":%.4e,\"inplace\":%.4e,\"copy\":%.4e}\n",
           400u << 20, bw.read, bw.inplace, bw.copy);
    fflush(stdout);
    size_t ds[] = {10000000, 100000000};
    for (int k = 0; k < (quick ? 1 : 2); k++) {
        optimiser(ds[k], DRPO_OPT_ADAMW, &bw);
        optimiser(ds[k], DRPO_OPT_MOMENTUM, &bw);
    }
    static const ovh cases[] = {
        {"erm", DRPO_SET_NONE, 0, 0, DRPO_MODE_EXACT},
        {"kl-radius-exact", DRPO_SET_KL, DRPO_PARAM_RADIUS, 0.1, DRPO_MODE_EXACT},
        {"kl-radius-stochastic", DRPO_SET_KL, DRPO_PARAM_RADIUS, 0.1, DRPO_MODE_STOCHASTIC},
        {"cvar-exact", DRPO_SET_CVAR, DRPO_PARAM_LEVEL, 0.2, DRPO_MODE_EXACT},
    };
    size_t pairs[] = {32, 1024, 65536};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int k = 0; k < 3; k++)
            overhead(&cases[i], pairs[k]);
    return 0;
}

/* solve.c - benchmark (1): exact solves of every set and form at n units,
 * against one streaming read pass over the n losses (the floor: a solve must
 * at least read its input).  Uniform base (base = NULL), weights written. */
#include "common.h"

#include <drpo.h>
#include <math.h>

typedef struct spec {
    const char *name;
    int32_t set, key;
    double param;
} spec;

static const spec specs[] = {
    {"kl-radius", DRPO_SET_KL, DRPO_PARAM_RADIUS, 0.1},
    {"kl-penalty", DRPO_SET_KL, DRPO_PARAM_PENALTY, 0.5},
    {"chi2-radius", DRPO_SET_CHI2, DRPO_PARAM_RADIUS, 0.5},
    {"chi2-penalty", DRPO_SET_CHI2, DRPO_PARAM_PENALTY, 0.5},
    {"cvar", DRPO_SET_CVAR, DRPO_PARAM_LEVEL, 0.2},
    {"tv-radius", DRPO_SET_TV, DRPO_PARAM_RADIUS, 0.2},
    {"tv-penalty", DRPO_SET_TV, DRPO_PARAM_PENALTY, 0.3},
};

/* Losses of a Bradley-Terry model: -log sigmoid(m), m ~ N(0.5, 1). */
static void fill_losses(double *l, size_t n, uint64_t seed)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        double u1 = ((double)(s >> 11) + 0.5) / 9007199254740992.0;
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        double u2 = (double)(s >> 11) / 9007199254740992.0;
        double m = 0.5 + sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2);
        l[i] = m > 0 ? log1p(exp(-m)) : -m + log1p(exp(m));
    }
}

/* Pareto losses of index a: heavy tails, where the first samples miss the
 * largest losses. */
static void fill_pareto(double *l, size_t n, double a, uint64_t seed)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        l[i] = pow(((double)(s >> 11) + 0.5) / 9007199254740992.0, -1.0 / a);
    }
}

/* One set and size, solved `reps` times (for a profiler: perf record
 * build/bench/bench-solve cvar 10000000 50).  With PARAM, SHAPE (bt, or
 * pareto-A for Pareto losses of index A) and SETS: that many data sets,
 * each solved `reps` times, the best times averaged by the passes the solve
 * took (DRPO_DIAG_ITERATIONS: a window search's missed brackets, KL's
 * Newton passes). */
static int profile_one(int argc, char **argv)
{
    const char *name = argv[1];
    size_t n = (size_t)strtoull(argv[2], NULL, 10);
    int reps = atoi(argv[3]), sets = argc > 6 ? atoi(argv[6]) : 1;
    const char *shape = argc > 5 ? argv[5] : "bt";
    const spec *sp = NULL;
    for (size_t s = 0; s < sizeof specs / sizeof specs[0]; s++)
        if (!strcmp(specs[s].name, name))
            sp = &specs[s];
    double param = sp && argc > 4 ? atof(argv[4]) : sp ? sp->param : 0.0;
    double index = !strncmp(shape, "pareto-", 7) ? atof(shape + 7) : 0.0;
    if (!sp || n == 0 || reps < 1 || sets < 1 || (strcmp(shape, "bt") && !(index > 0.0))) {
        fprintf(stderr, "usage: bench-solve [--quick] | base [N] |"
                        " SET N REPS [PARAM [SHAPE [SETS]]]\n"
                        "  (SET: kl-radius ... tv-penalty; SHAPE: bt or pareto-A)\n");
        return 2;
    }
    double *loss = bench_alloc(n * sizeof(double)), *w = bench_alloc(n * sizeof(double));
    drpo_objective *obj;
    if (drpo_objective_create(&obj, sp->set) || drpo_objective_set(obj, sp->key, param))
        return 1;
    enum { MAXP = 16 };
    double value = 0.0, sum[MAXP] = {0}, best = INFINITY;
    int count[MAXP] = {0};
    for (int k = 0; k < sets; k++) {
        if (index > 0.0)
            fill_pareto(loss, n, index, 42 + (uint64_t)k);
        else
            fill_losses(loss, n, 42 + (uint64_t)k);
        best = INFINITY;
        for (int r = 0; r < reps; r++) {
            double t0 = bench_now();
            if (drpo_objective_solve(obj, n, loss, NULL, w, &value) != DRPO_OK)
                return 1;
            double t = bench_now() - t0;
            best = t < best ? t : best;
        }
        double it = 0.0;
        drpo_objective_diag(obj, DRPO_DIAG_ITERATIONS, &it);
        int p = it < MAXP - 1 ? (int)it : MAXP - 1;
        sum[p] += best;
        count[p]++;
    }
    if (sets == 1)
        printf("%s n=%zu: best of %d %.4g ms, value %.17g\n", name, n, reps, best * 1e3, value);
    else
        for (int p = 0; p < MAXP; p++)
            if (count[p])
                printf("%s %g n=%zu %s: %d of %d data sets in %d passes, best of %d %.4g ms "
                       "on average\n",
                       name, param, n, shape, count[p], sets, p, reps, sum[p] / count[p] * 1e3);
    drpo_objective_free(obj);
    free(loss);
    free(w);
    return 0;
}

/* Median seconds of reps solves of n losses over base (NULL: uniform). */
static double time_solve(drpo_objective *obj, size_t n, const double *loss, const double *base,
                         double *w, int reps, double *value)
{
    double t[64];
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now();
        if (drpo_objective_solve(obj, n, loss, base, w, value) != DRPO_OK)
            return NAN;
        t[r] = bench_now() - t0;
    }
    return bench_median(t, reps);
}

/* Every solve over a base like the trainer's when its prompts have 1 to 4
 * pairs (counts / total: sums to 1 within rounding), against the same
 * solve over the uniform base, alternately, at n units. */
static int over_base(size_t n)
{
    double *loss = bench_alloc(n * sizeof(double)), *w = bench_alloc(n * sizeof(double));
    double *base = bench_alloc(n * sizeof(double)), total = 0.0;
    fill_losses(loss, n, 7);
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        base[i] = (double)(1 + (x >> 62));
        total += base[i];
    }
    for (size_t i = 0; i < n; i++)
        base[i] /= total;
    int reps = bench_reps(8.0 * (double)n);
    for (size_t s = 0; s < sizeof specs / sizeof specs[0]; s++) {
        const spec *sp = &specs[s];
        drpo_objective *obj;
        if (drpo_objective_create(&obj, sp->set) || drpo_objective_set(obj, sp->key, sp->param))
            return 1;
        double v, vu, tb[5], tu[5];
        for (int k = 0; k < 5; k++) {
            tb[k] = time_solve(obj, n, loss, base, w, reps, &v);
            tu[k] = time_solve(obj, n, loss, NULL, w, reps, &vu);
        }
        double based = bench_median(tb, 5), uniform = bench_median(tu, 5);
        if (isnan(based) || isnan(uniform)) {
            fprintf(stderr, "solve %s over a base, n=%zu: failed\n", sp->name, n);
            return 1;
        }
        printf("{\"bench\":\"solve_base\",\"case\":\"%s\",\"n\":%zu,\"seconds\":%.6e,"
               "\"uniform_seconds\":%.6e,\"ratio\":%.3f}\n",
               sp->name, n, based, uniform, based / uniform);
        fflush(stdout);
        drpo_objective_free(obj);
    }
    free(loss);
    free(w);
    free(base);
    return 0;
}

int main(int argc, char **argv)
{
    size_t sizes[] = {1000, 100000, 10000000};
    int nsizes = 3;
    if (argc >= 4)
        return profile_one(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "base")) /* table (1b) alone */
        return over_base(argc > 2 ? (size_t)strtoull(argv[2], NULL, 10) : 100000);
    if (argc > 1 && !strcmp(argv[1], "--quick"))
        nsizes = 2;
    for (int k = 0; k < nsizes; k++) {
        size_t n = sizes[k];
        double *loss = bench_alloc(n * sizeof(double)), *w = bench_alloc(n * sizeof(double));
        fill_losses(loss, n, 42 + (uint64_t)k);
        int reps = bench_reps(8.0 * (double)n);
        double pass = bench_time_read(loss, n, reps);
        for (size_t s = 0; s < sizeof specs / sizeof specs[0]; s++) {
            const spec *sp = &specs[s];
            drpo_objective *obj;
            if (drpo_objective_create(&obj, sp->set) ||
                drpo_objective_set(obj, sp->key, sp->param))
                return 1;
            double value = 0, t[64], iters = 0;
            for (int r = 0; r < reps; r++) {
                double t0 = bench_now();
                drpo_status st = drpo_objective_solve(obj, n, loss, NULL, w, &value);
                t[r] = bench_now() - t0;
                if (st != DRPO_OK) {
                    fprintf(stderr, "solve %s n=%zu: %s\n", sp->name, n, drpo_status_string(st));
                    return 1;
                }
            }
            drpo_objective_diag(obj, DRPO_DIAG_ITERATIONS, &iters);
            double med = bench_median(t, reps);
            printf("{\"bench\":\"solve\",\"case\":\"%s\",\"n\":%zu,\"reps\":%d,\"seconds\":%.6e,"
                   "\"pass_seconds\":%.6e,\"ratio\":%.3f,\"iterations\":%g,\"value\":%.17g}\n",
                   sp->name, n, reps, med, pass, med / pass, iters, value);
            fflush(stdout);
            drpo_objective_free(obj);
        }
        free(loss);
        free(w);
    }
    return over_base(100000);
}

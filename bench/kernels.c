/* kernels.c - the gemv kernels of the built-in models: BLIS 0.9 with each
 * kernel set this CPU can run, through the expert interface with that set's
 * context (bli_gks_lookup_id, reachable only in the static libblis.a this
 * program links), against libdrpo's kernels (drpo__rows_dot/_axpy, which
 * pick BLIS or their own AVX2/FMA loops per call).  Never changes BLIS's
 * process-wide settings.  Shapes: the batch shapes of the built-in models
 * (rows x dim) in cache and out of it. */
#include "common.h"

#include <blis.h>
#include <drpo.h>

void drpo__rows_dot(size_t rows, size_t dim, const float *x, const float *theta, float *y);
void drpo__rows_axpy(size_t rows, size_t dim, const float *x, const float *c, float *g);
cntx_t **bli_gks_lookup_id(arch_t id);

typedef struct kset {
    const char *name;
    arch_t id;
    int avx512; /* needs AVX-512 (else AVX2 and FMA) */
} kset;

static double time_blis(cntx_t *cntx, int trans, size_t rows, size_t dim, const float *x,
                        const float *v, float *y, int reps)
{
    rntm_t rntm = BLIS_RNTM_INITIALIZER;
    bli_rntm_set_num_threads(1, &rntm);
    float one = 1.0f, beta = trans ? 1.0f : 0.0f;
    double t[64];
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now();
        bli_sgemv_ex(trans ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, BLIS_NO_CONJUGATE, (dim_t)rows,
                     (dim_t)dim, &one, (float *)x, (inc_t)dim, 1, (float *)v, 1, &beta, y, 1, cntx,
                     &rntm);
        t[r] = bench_now() - t0;
    }
    return bench_median(t, reps);
}

static double time_drpo(int trans, size_t rows, size_t dim, const float *x, const float *v,
                        float *y, int reps)
{
    double t[64];
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now();
        if (trans)
            drpo__rows_axpy(rows, dim, x, v, y);
        else
            drpo__rows_dot(rows, dim, x, v, y);
        t[r] = bench_now() - t0;
    }
    return bench_median(t, reps);
}

int main(void)
{
    static const kset sets[] = {
        {"haswell", BLIS_ARCH_HASWELL, 0},
        {"zen", BLIS_ARCH_ZEN, 0},
        {"zen3", BLIS_ARCH_ZEN3, 0},
        {"skx", BLIS_ARCH_SKX, 1},
    };
    size_t shapes[][2] = {{1024, 64}, {1024, 256}, {1000000, 64}, {100000, 256}};
    arch_t native = bli_arch_query_id();
    printf("{\"bench\":\"blis\",\"arch\":\"%s\"}\n", bli_arch_string(native));
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        size_t rows = shapes[s][0], dim = shapes[s][1];
        float *x = bench_alloc(rows * dim * sizeof(float));
        float *v = bench_alloc((rows > dim ? rows : dim) * sizeof(float));
        float *y = bench_alloc((rows > dim ? rows : dim) * sizeof(float));
        for (size_t i = 0; i < rows * dim; i++)
            x[i] = (float)((int)(i % 17) - 8) * 0.125f;
        for (size_t i = 0; i < (rows > dim ? rows : dim); i++)
            v[i] = 0.01f * (float)(i % 7);
        int reps = bench_reps(4.0 * (double)(rows * dim));
        for (int trans = 0; trans < 2; trans++) {
            double tn = time_blis(bli_gks_query_cntx(), trans, rows, dim, x, v, y, reps);
            double td = time_drpo(trans, rows, dim, x, v, y, reps);
            printf("{\"bench\":\"kernels\",\"rows\":%zu,\"dim\":%zu,\"op\":\"%s\",\"set\":\"%s (native)\","
                   "\"seconds\":%.6e}\n", rows, dim, trans ? "axpy" : "dot",
                   bli_arch_string(native), tn);
            printf("{\"bench\":\"kernels\",\"rows\":%zu,\"dim\":%zu,\"op\":\"%s\",\"set\":\"libdrpo\","
                   "\"seconds\":%.6e}\n", rows, dim, trans ? "axpy" : "dot", td);
            for (size_t k = 0; k < sizeof sets / sizeof sets[0]; k++) {
                if (sets[k].avx512 ? !__builtin_cpu_supports("avx512f")
                                  : !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")))
                    continue;
                cntx_t **c = bli_gks_lookup_id(sets[k].id);
                if (!c || !c[BLIS_NAT])
                    continue;
                double tk = time_blis(c[BLIS_NAT], trans, rows, dim, x, v, y, reps);
                printf("{\"bench\":\"kernels\",\"rows\":%zu,\"dim\":%zu,\"op\":\"%s\",\"set\":\"%s\","
                       "\"seconds\":%.6e}\n", rows, dim, trans ? "axpy" : "dot", sets[k].name, tk);
            }
            fflush(stdout);
        }
        free(x);
        free(v);
        free(y);
    }
    return 0;
}

/* gen_pairs.c - the CSV of benchmark (5): N preference pairs with d
 * features per response (drpo-train's format: prompt, group,
 * chosen_0..chosen_{d-1}, rejected_0..rejected_{d-1}), 4 pairs per prompt,
 * 4 groups, labels from a noisy linear reward.  Deterministic.
 *     bench-gen-pairs N D FILE */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static uint64_t z = 88172645463325252ull;
static double unif(void)
{
    z ^= z << 13, z ^= z >> 7, z ^= z << 17;
    return (double)(z >> 11) / 9007199254740992.0;
}

int main(int argc, char **argv)
{
    if (argc != 4)
        return 2;
    long n = atol(argv[1]), d = atol(argv[2]);
    FILE *f = fopen(argv[3], "w");
    if (!f || n <= 0 || d <= 0 || d > 4096)
        return 1;
    static char buf[1 << 20];
    setvbuf(f, buf, _IOFBF, sizeof buf);
    fputs("prompt,group", f);
    for (long k = 0; k < d; k++)
        fprintf(f, ",chosen_%ld", k);
    for (long k = 0; k < d; k++)
        fprintf(f, ",rejected_%ld", k);
    fputc('\n', f);
    double a[4096], b[4096], w[4096];
    for (long k = 0; k < d; k++)
        w[k] = unif() - 0.5;
    for (long i = 0; i < n; i++) {
        double ra = 0, rb = 0;
        for (long k = 0; k < d; k++) {
            a[k] = floor((unif() - 0.5) * 2000) / 1000;
            b[k] = floor((unif() - 0.5) * 2000) / 1000;
            ra += w[k] * a[k];
            rb += w[k] * b[k];
        }
        int swap = ra + 0.3 * (unif() - 0.5) < rb;
        fprintf(f, "p%ld,g%ld", i / 4, (i / 4) % 4);
        for (int side = 0; side < 2; side++) {
            const double *v = (side == 0) != swap ? a : b;
            for (long k = 0; k < d; k++)
                fprintf(f, ",%.3f", v[k]);
        }
        fputc('\n', f);
    }
    return fclose(f) ? 1 : 0;
}

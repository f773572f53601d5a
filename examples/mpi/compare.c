/* compare.c - drpo-mpi-compare A B: the outputs of two drpo-mpi-train runs
 * hold the same keys in the same order and every value agrees to 1e-12
 * relative (equal values, infinities included, agree).  Prints the largest
 * relative difference; exits 1 on any disagreement. */
#include <math.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s A B\n", argv[0]);
        return 2;
    }
    FILE *a = fopen(argv[1], "r"), *b = fopen(argv[2], "r");
    if (!a || !b) {
        perror(a ? argv[2] : argv[1]);
        return 2;
    }
    char ka[64], kb[64];
    double va, vb, worst = 0.0;
    long lines = 0, bad = 0;
    for (;;) {
        int ra = fscanf(a, "%63s %lf", ka, &va), rb = fscanf(b, "%63s %lf", kb, &vb);
        if (ra == EOF && rb == EOF)
            break;
        lines++;
        if (ra != 2 || rb != 2 || strcmp(ka, kb) != 0) {
            fprintf(stderr, "line %ld: keys differ or a file is short (%s / %s)\n", lines,
                    ra == 2 ? ka : "-", rb == 2 ? kb : "-");
            return 1;
        }
        if (va == vb)
            continue;
        double rel = fabs(va - vb) / fmax(fabs(va), fabs(vb));
        if (!(rel <= 1e-12)) {
            if (bad++ < 10)
                fprintf(stderr, "%s: %.17g vs %.17g (relative %.3g)\n", ka, va, vb, rel);
        }
        if (rel > worst || isnan(rel))
            worst = rel;
    }
    printf("%ld values, largest relative difference %.3g%s\n", lines, worst,
           bad ? " (over 1e-12)" : "");
    return bad != 0;
}

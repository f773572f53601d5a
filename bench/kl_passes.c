/* bench-kl-passes: how many passes over the data an exact KL-radius solve
 * takes on data of several shapes (uniform base): seven loss
 * distributions at n = 4e4, 1e5 and 5e5, six radii each, and Pareto
 * losses at 10^7 (a sample of 8192 misses the largest losses that decide
 * the answer: 7 or 8 passes each at session 5's start, 3 now).  Prints one line
 * per solve and the total; a solver change that makes starts or steps worse
 * shows here before it shows in a timing.  Not part of `make bench`'s table
 * (pass counts, not times). */
#include <drpo.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static uint64_t state = 88172645463325252ULL;

static double unif(void) /* (0, 1), xorshift64 */
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return ((double)(state >> 11) + 0.5) / 9007199254740992.0;
}

static double gauss(void) { return sqrt(-2.0 * log(unif())) * cos(6.283185307179586 * unif()); }

static const char *const shapes[] = {"normal",        "exponential", "pareto-2.5", "bimodal",
                                     "bradley-terry", "uniform",     "lognormal-1.5"};

static double draw(int shape)
{
    switch (shape) {
    case 0: return gauss();
    case 1: return -log(unif());
    case 2: return pow(unif(), -1.0 / 2.5);
    case 3: return (unif() < 0.3 ? 5.0 : 0.0) + gauss();
    case 4: return log1p(exp(-(0.5 + gauss()))); /* -log sigmoid(m), m ~ N(0.5, 1) */
    case 5: return unif();
    default: return exp(1.5 * gauss());
    }
}

int main(void)
{
    static const size_t sizes[] = {40000, 100000, 500000};
    static const double radii[] = {0.001, 0.01, 0.1, 0.5, 1.0, 2.5};
    const size_t n_max = 500000;
    double *loss = malloc(n_max * sizeof *loss), *q = malloc(n_max * sizeof *q);
    drpo_objective *obj;
    if (!loss || !q || drpo_objective_create(&obj, DRPO_SET_KL) != DRPO_OK)
        return 1;
    int total = 0, worst = 0, solves = 0;
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++)
        for (int sh = 0; sh < (int)(sizeof shapes / sizeof shapes[0]); sh++) {
            size_t n = sizes[si];
            for (size_t i = 0; i < n; i++)
                loss[i] = draw(sh);
            for (size_t ri = 0; ri < sizeof radii / sizeof radii[0]; ri++) {
                double value, passes;
                if (drpo_objective_set(obj, DRPO_PARAM_RADIUS, radii[ri]) != DRPO_OK ||
                    drpo_objective_solve(obj, n, loss, NULL, q, &value) != DRPO_OK ||
                    drpo_objective_diag(obj, DRPO_DIAG_ITERATIONS, &passes) != DRPO_OK) {
                    fprintf(stderr, "%s n=%zu radius %g: solve failed\n", shapes[sh], n,
                            radii[ri]);
                    return 1;
                }
                printf("%-14s n=%-7zu radius %-6g passes %g\n", shapes[sh], n, radii[ri], passes);
                total += (int)passes;
                worst = (int)passes > worst ? (int)passes : worst;
                solves++;
            }
        }
    const size_t big = 10000000;
    double *big_loss = malloc(big * sizeof *big_loss), *big_q = malloc(big * sizeof *big_q);
    if (!big_loss || !big_q)
        return 1;
    for (size_t i = 0; i < big; i++)
        big_loss[i] = draw(2);
    for (size_t ri = 2; ri < 5; ri++) {
        double value, passes;
        if (drpo_objective_set(obj, DRPO_PARAM_RADIUS, radii[ri]) != DRPO_OK ||
            drpo_objective_solve(obj, big, big_loss, NULL, big_q, &value) != DRPO_OK ||
            drpo_objective_diag(obj, DRPO_DIAG_ITERATIONS, &passes) != DRPO_OK) {
            fprintf(stderr, "pareto-2.5 n=%zu radius %g: solve failed\n", big, radii[ri]);
            return 1;
        }
        printf("%-14s n=%-7zu radius %-6g passes %g\n", shapes[2], big, radii[ri], passes);
        total += (int)passes;
        worst = (int)passes > worst ? (int)passes : worst;
        solves++;
    }
    free(big_loss);
    free(big_q);
    printf("%d solves: %d passes in all, at most %d in one\n", solves, total, worst);
    drpo_objective_free(obj);
    free(loss);
    free(q);
    return 0;
}

/* bench-kl-passes: how many passes over the data an exact KL-radius solve
 * takes on data of several shapes (uniform base): seven loss
 * distributions at n = 4e4, 1e5 and 5e5, six radii each, and Pareto
 * losses at 10^7 (a sample of 8192 misses the largest losses that decide
 * the answer: 7 or 8 passes each at session 5's start, 3 now).  Then the
 * sizes of a minibatch, where no sample is taken: n = 256 to 12000, three
 * data sets of each shape (their own seed, so the totals above stay
 * comparable with earlier runs).  Prints one line per solve and a total
 * for each part; a solver change that makes starts or steps worse shows
 * here before it shows in a timing.  Not part of `make bench`'s table
 * (pass counts, not times). */
#include <drpo.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static const uint64_t first_state = 88172645463325252ULL;
static uint64_t state = first_state;

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

/* Passes over a part of the runs: solves, their total and the most in one. */
typedef struct tally {
    int solves, total, worst;
} tally;

static const double radii[] = {0.001, 0.01, 0.1, 0.5, 1.0, 2.5};

/* One solve of n losses at radius r, printed and tallied; 0 if it failed. */
static int solve_one(drpo_objective *obj, const char *shape, size_t n, const double *loss,
                     double *q, double r, tally *t)
{
    double value, passes;
    if (drpo_objective_set(obj, DRPO_PARAM_RADIUS, r) != DRPO_OK ||
        drpo_objective_solve(obj, n, loss, NULL, q, &value) != DRPO_OK ||
        drpo_objective_diag(obj, DRPO_DIAG_ITERATIONS, &passes) != DRPO_OK) {
        fprintf(stderr, "%s n=%zu radius %g: solve failed\n", shape, n, r);
        return 0;
    }
    printf("%-14s n=%-7zu radius %-6g passes %g\n", shape, n, r, passes);
    t->total += (int)passes;
    t->worst = (int)passes > t->worst ? (int)passes : t->worst;
    t->solves++;
    return 1;
}

/* Every shape at each of the sizes, `sets` data sets each, at every radius. */
static int solve_sizes(drpo_objective *obj, const size_t *sizes, size_t n_sizes, int sets,
                       double *loss, double *q, tally *t)
{
    for (size_t si = 0; si < n_sizes; si++)
        for (int sh = 0; sh < (int)(sizeof shapes / sizeof shapes[0]); sh++)
            for (int set = 0; set < sets; set++) {
                for (size_t i = 0; i < sizes[si]; i++)
                    loss[i] = draw(sh);
                for (size_t ri = 0; ri < sizeof radii / sizeof radii[0]; ri++)
                    if (!solve_one(obj, shapes[sh], sizes[si], loss, q, radii[ri], t))
                        return 0;
            }
    return 1;
}

int main(void)
{
    static const size_t sizes[] = {40000, 100000, 500000}, small[] = {256, 1024, 4096, 12000};
    const size_t n_max = 500000;
    double *loss = malloc(n_max * sizeof *loss), *q = malloc(n_max * sizeof *q);
    drpo_objective *obj;
    if (!loss || !q || drpo_objective_create(&obj, DRPO_SET_KL) != DRPO_OK)
        return 1;
    tally t = {0, 0, 0};
    if (!solve_sizes(obj, sizes, sizeof sizes / sizeof sizes[0], 1, loss, q, &t))
        return 1;
    const size_t big = 10000000;
    double *big_loss = malloc(big * sizeof *big_loss), *big_q = malloc(big * sizeof *big_q);
    if (!big_loss || !big_q)
        return 1;
    for (size_t i = 0; i < big; i++)
        big_loss[i] = draw(2);
    for (size_t ri = 2; ri < 5; ri++)
        if (!solve_one(obj, shapes[2], big, big_loss, big_q, radii[ri], &t))
            return 1;
    free(big_loss);
    free(big_q);
    printf("%d solves: %d passes in all, at most %d in one\n", t.solves, t.total, t.worst);
    state = first_state ^ 0x5bd1e995u;
    tally mb = {0, 0, 0};
    if (!solve_sizes(obj, small, sizeof small / sizeof small[0], 3, loss, q, &mb))
        return 1;
    printf("minibatch sizes, %d solves: %d passes in all, at most %d in one\n", mb.solves,
           mb.total, mb.worst);
    drpo_objective_free(obj);
    free(loss);
    free(q);
    return 0;
}

/* drpo-mpi-train.c - data-parallel robust training under MPI.
 *
 *   mpirun -np R drpo-mpi-train FORM PARAM MODE STEPS OUT
 *
 * FORM: none, kl-radius, kl-penalty, chi2-radius, chi2-penalty, cvar,
 * tv-radius; MODE: exact, stochastic or group.  Every rank generates the
 * same data and the same global batches (96 pairs, 4 per prompt) and keeps
 * a shard of each: pair i of step s goes to a rank chosen by a hash, so most
 * prompts have pairs on several ranks.  The model is a linear Bradley-Terry
 * reward model in host callbacks; a drpo_collective over MPI lets the
 * library merge units by prompt over all ranks and solve the same exact
 * worst case everywhere, and backward all-reduces the gradient (accumulated
 * in double, summed in double, written as floats) so every rank applies the
 * same update.  The result therefore does not depend on R beyond double
 * rounding: rank 0 writes every pair's weight, the duals and diagnostics of
 * every step and the final parameters to OUT, which the test compares
 * between R = 1 and R = 4 (mpi-test.sh). */
#include "drpo.h"

#include <mpi.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIM 5
#define ROWS 2000
#define GBATCH 96    /* pairs in a global batch */
#define PER_PROMPT 4 /* consecutive pairs of a global batch share a prompt */
#define GROUPS 3

/* ---- the collective: the three callbacks over an MPI communicator ------- */

static int mpi_allgather_u64(void *user, uint64_t value, uint64_t *values)
{
    MPI_Comm comm = *(MPI_Comm *)user;
    return MPI_Allgather(&value, 1, MPI_UINT64_T, values, 1, MPI_UINT64_T, comm) != MPI_SUCCESS;
}

static int mpi_allgatherv(void *user, const void *send, uint64_t send_bytes, void *recv,
                          const uint64_t *recv_bytes)
{
    MPI_Comm comm = *(MPI_Comm *)user;
    int size;
    MPI_Comm_size(comm, &size);
    int *counts = malloc(2 * (size_t)size * sizeof *counts), *displs = counts + size;
    if (!counts)
        return 2;
    uint64_t off = 0;
    for (int r = 0; r < size; r++) { /* MPI counts are ints */
        if (recv_bytes[r] > INT32_MAX || off > INT32_MAX) {
            free(counts);
            return 3;
        }
        counts[r] = (int)recv_bytes[r];
        displs[r] = (int)off;
        off += recv_bytes[r];
    }
    int rc = MPI_Allgatherv(send, (int)send_bytes, MPI_BYTE, recv, counts, displs, MPI_BYTE, comm);
    free(counts);
    return rc != MPI_SUCCESS;
}

static int mpi_allreduce_sum(void *user, double *values, uint64_t n)
{
    MPI_Comm comm = *(MPI_Comm *)user;
    if (n > INT32_MAX)
        return 3;
    return MPI_Allreduce(MPI_IN_PLACE, values, (int)n, MPI_DOUBLE, MPI_SUM, comm) != MPI_SUCCESS;
}

/* ---- the model: linear Bradley-Terry in host callbacks ------------------ */

typedef struct host {
    MPI_Comm comm;
    const double *x;     /* ROWS x DIM feature differences */
    const size_t *row;   /* [GBATCH] row of each pair of the current global batch */
    double margin[GBATCH], dloss[GBATCH];
    double *weight;      /* [GBATCH] this rank's pairs' weights (by global position) */
} host;

/* The host index of a pair is its position in the global batch. */
static void margins(host *h, const float *theta, const drpo_batch *b)
{
    for (size_t j = 0; j < drpo_batch_size(b); j++) {
        const double *x = h->x + h->row[drpo_batch_host_index(b, j)] * DIM;
        double m = 0.0;
        for (size_t i = 0; i < DIM; i++)
            m += (double)theta[i] * x[i];
        h->margin[j] = m;
    }
}

static int forward(void *user, const float *params, const drpo_batch *b, double *loss)
{
    host *h = user;
    margins(h, params, b);
    return drpo_loss_from_margins(DRPO_LOSS_BT, drpo_batch_size(b), h->margin, 1.0, 0.0, loss,
                                  NULL) != DRPO_OK;
}

/* The gradient of sum_j w_j loss_j over this rank's pairs, summed over all
 * ranks in double, then written as floats: the same on every rank. */
static int backward(void *user, const float *params, const drpo_batch *b, const double *w,
                    float *grad)
{
    host *h = user;
    size_t n = drpo_batch_size(b);
    margins(h, params, b);
    if (drpo_loss_from_margins(DRPO_LOSS_BT, n, h->margin, 1.0, 0.0, NULL, h->dloss) != DRPO_OK)
        return 1;
    double g[DIM] = {0};
    for (size_t j = 0; j < n; j++) {
        int64_t pos = drpo_batch_host_index(b, j);
        const double *x = h->x + h->row[pos] * DIM;
        for (size_t i = 0; i < DIM; i++)
            g[i] += w[j] * h->dloss[j] * x[i];
        if (h->weight)
            h->weight[pos] = w[j];
    }
    if (MPI_Allreduce(MPI_IN_PLACE, g, DIM, MPI_DOUBLE, MPI_SUM, h->comm) != MPI_SUCCESS)
        return 2;
    for (size_t i = 0; i < DIM; i++)
        grad[i] = (float)g[i];
    return 0;
}

/* ---- data, batches and shards ------------------------------------------- */

static uint64_t mix(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double unif(uint64_t *s) { return (double)(mix((*s)++) >> 11) * 0x1.0p-53; }

/* Pairs of a linear BT model with label noise (the same on every rank). */
static void make_data(double *x)
{
    const double truth[DIM] = {1.0, -0.7, 0.5, 0.2, -0.1};
    uint64_t s = 2024;
    for (size_t h = 0; h < ROWS; h++) {
        double z = 0.0;
        for (size_t i = 0; i < DIM; i++) {
            x[h * DIM + i] = 4.0 * unif(&s) - 2.0;
            z += truth[i] * x[h * DIM + i];
        }
        double y = unif(&s) < 1.0 / (1.0 + exp(-2.0 * z)) ? 1.0 : -1.0;
        for (size_t i = 0; i < DIM; i++)
            x[h * DIM + i] *= y;
    }
}

/* The rank holding pair i of step s: pairs 0..R-1 one per rank (no shard is
 * empty), the others by a hash, so shards differ in size and a prompt's
 * pairs scatter over ranks. */
static int owner(int step, size_t i, int size)
{
    if (i < (size_t)size)
        return (int)i;
    return (int)(mix(((uint64_t)step << 32) ^ i) % (uint64_t)size);
}

/* Step s's global batch: rows of 24 prompts drawn from 500; the shard of
 * `rank` goes into b with the global position as host index. */
static drpo_status fill_shard(drpo_batch *b, size_t *row, int step, int rank, int size)
{
    drpo_batch_clear(b);
    for (size_t i = 0; i < GBATCH; i++) {
        size_t prompt = (size_t)(mix(0xABCDull + (uint64_t)step * 131 + i / PER_PROMPT) %
                                 (ROWS / PER_PROMPT));
        row[i] = prompt * PER_PROMPT + i % PER_PROMPT;
        if (owner(step, i, size) != rank)
            continue;
        drpo_status st = drpo_batch_add_key(b, 0x5eed0000ull + prompt, (int32_t)(prompt % GROUPS),
                                            (int64_t)i);
        if (st != DRPO_OK)
            return st;
    }
    return DRPO_OK;
}

/* ---- the run -------------------------------------------------------------- */

static int parse_form(const char *form, int32_t *set, int32_t *key)
{
    static const struct {
        const char *name;
        int32_t set, key;
    } forms[] = {
        {"none", DRPO_SET_NONE, 0},
        {"kl-radius", DRPO_SET_KL, DRPO_PARAM_RADIUS},
        {"kl-penalty", DRPO_SET_KL, DRPO_PARAM_PENALTY},
        {"chi2-radius", DRPO_SET_CHI2, DRPO_PARAM_RADIUS},
        {"chi2-penalty", DRPO_SET_CHI2, DRPO_PARAM_PENALTY},
        {"cvar", DRPO_SET_CVAR, DRPO_PARAM_LEVEL},
        {"tv-radius", DRPO_SET_TV, DRPO_PARAM_RADIUS},
    };
    for (size_t k = 0; k < sizeof forms / sizeof forms[0]; k++)
        if (strcmp(form, forms[k].name) == 0) {
            *set = forms[k].set;
            *key = forms[k].key;
            return 1;
        }
    return 0;
}

static int parse_mode(const char *mode, int32_t *out)
{
    const char *names[] = {"exact", "stochastic", "group"};
    for (int32_t k = 0; k < 3; k++)
        if (strcmp(mode, names[k]) == 0) {
            *out = k; /* DRPO_MODE_EXACT, _STOCHASTIC, _GROUP */
            return 1;
        }
    return 0;
}

/* A diagnostic line, if the diagnostic is defined for this set and mode. */
static void diag_line(FILE *f, const drpo_trainer *t, int32_t key, const char *name, int step)
{
    double v;
    if (f && drpo_trainer_diag(t, key, &v) == DRPO_OK)
        fprintf(f, "%s/%d %.17g\n", name, step, v);
}

static int fail(int rank, const char *what, drpo_status st, const char *msg)
{
    fprintf(stderr, "rank %d: %s: %s (%s)\n", rank, what, drpo_status_string(st), msg);
    return 1;
}

static int run(int rank, int size, int32_t set, int32_t key, double param, int32_t mode,
               int steps, FILE *out)
{
    static double x[ROWS * DIM];
    make_data(x);
    size_t row[GBATCH];
    double weight[GBATCH], all_w[GBATCH];
    host h = {MPI_COMM_WORLD, x, row, {0}, {0}, weight};

    drpo_model_callbacks cb = {sizeof cb, forward, backward, NULL};
    drpo_model *model = NULL;
    drpo_objective *obj = NULL;
    drpo_trainer *t = NULL;
    drpo_batch *b = NULL;
    drpo_status st;
    MPI_Comm comm = MPI_COMM_WORLD;
    /* every rank: its rank, the size, the callbacks; user = the communicator */
    drpo_collective coll = {sizeof coll, rank, size, mpi_allgather_u64, mpi_allgatherv,
                            mpi_allreduce_sum};
    int rc = 1;
    if ((st = drpo_model_create(&model, DIM, &cb, &h)) != DRPO_OK ||
        (st = drpo_objective_create(&obj, set)) != DRPO_OK ||
        (st = drpo_batch_create(&b)) != DRPO_OK) {
        fail(rank, "create", st, "");
        goto out;
    }
    if ((key && (st = drpo_objective_set(obj, key, param)) != DRPO_OK) ||
        (st = drpo_objective_set(obj, DRPO_PARAM_GROUPS, mode == DRPO_MODE_GROUP ? GROUPS : 0)) ||
        (st = drpo_objective_set(obj, DRPO_PARAM_MODE, mode)) != DRPO_OK ||
        (st = drpo_objective_set(obj, DRPO_PARAM_DUAL_LR, 0.05)) != DRPO_OK ||
        (st = drpo_objective_set_collective(obj, &coll, &comm)) != DRPO_OK) {
        fail(rank, "objective", st, drpo_objective_last_error(obj));
        goto out;
    }
    if ((st = drpo_trainer_create(&t, model, obj)) != DRPO_OK ||
        (st = drpo_trainer_set(t, DRPO_TRAIN_OPTIMIZER, DRPO_OPT_MOMENTUM)) != DRPO_OK ||
        (st = drpo_trainer_set(t, DRPO_TRAIN_LR, 0.1)) != DRPO_OK) {
        fail(rank, "trainer", st, drpo_trainer_last_error(t));
        goto out;
    }
    for (int s = 0; s < steps; s++) {
        if ((st = fill_shard(b, row, s, rank, size)) != DRPO_OK) {
            fail(rank, "batch", st, "");
            goto out;
        }
        for (size_t i = 0; i < GBATCH; i++)
            weight[i] = 0.0;
        /* a failure is the same on every rank (same global problem), so no
         * rank is left waiting in a collective */
        if ((st = drpo_trainer_step(t, b)) != DRPO_OK) {
            fail(rank, "step", st, drpo_trainer_last_error(t));
            goto out;
        }
        /* each pair's weight sits on one rank, zeros elsewhere: the sum is exact */
        MPI_Reduce(weight, all_w, GBATCH, MPI_DOUBLE, MPI_SUM, 0, comm);
        if (out) {
            for (size_t i = 0; i < GBATCH; i++)
                fprintf(out, "w/%d/%zu %.17g\n", s, i, all_w[i]);
        }
        diag_line(out, t, DRPO_TDIAG_ROBUST, "robust", s);
        diag_line(out, t, DRPO_TDIAG_MEAN_LOSS, "mean", s);
        diag_line(out, t, DRPO_TDIAG_ETA, "eta", s);
        diag_line(out, t, DRPO_TDIAG_LAMBDA, "lambda", s);
        diag_line(out, t, DRPO_TDIAG_UNITS, "units", s);
        diag_line(out, t, DRPO_TDIAG_GRAD_NORM, "grad_norm", s);
    }
    /* the robust objective of one more global batch at the final parameters */
    double value, gnorm;
    h.weight = NULL;
    if ((st = fill_shard(b, row, steps, rank, size)) != DRPO_OK ||
        (st = drpo_trainer_evaluate(t, b, &value, &gnorm)) != DRPO_OK) {
        fail(rank, "evaluate", st, drpo_trainer_last_error(t));
        goto out;
    }
    /* every rank must hold the same parameters, bit for bit */
    float all_p[64 * DIM];
    const float *p = drpo_model_params(model);
    if (size <= 64)
        MPI_Gather(p, DIM, MPI_FLOAT, all_p, DIM, MPI_FLOAT, 0, comm);
    if (out) {
        fprintf(out, "eval_robust %.17g\neval_grad_norm %.17g\n", value, gnorm);
        for (size_t i = 0; i < DIM; i++)
            fprintf(out, "param/%zu %.9g\n", i, (double)p[i]);
        for (int r = 1; r < size && size <= 64; r++)
            if (memcmp(all_p, all_p + r * DIM, sizeof(float) * DIM) != 0) {
                fprintf(stderr, "rank %d's parameters differ from rank 0's\n", r);
                goto out;
            }
        printf("%d rank(s): %d steps, robust %.6f, theta = [%.4f %.4f %.4f %.4f %.4f]\n", size,
               steps, value, (double)p[0], (double)p[1], (double)p[2], (double)p[3],
               (double)p[4]);
    }
    rc = 0;
out:
    drpo_trainer_free(t);
    drpo_batch_free(b);
    drpo_objective_free(obj);
    drpo_model_free(model);
    return rc;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN); /* codes, not aborts */
    int32_t set, key, mode;
    if (argc != 6 || !parse_form(argv[1], &set, &key) || !parse_mode(argv[3], &mode) ||
        atoi(argv[4]) < 1) {
        if (rank == 0)
            fprintf(stderr, "usage: %s FORM PARAM MODE STEPS OUT\n", argv[0]);
        MPI_Finalize();
        return 2;
    }
    FILE *out = NULL;
    int ok = 1;
    if (rank == 0 && !(out = fopen(argv[5], "w"))) {
        perror(argv[5]);
        ok = 0;
    }
    MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    int rc = ok ? run(rank, size, set, key, atof(argv[2]), mode, atoi(argv[4]), out) : 1;
    if (out && fclose(out) != 0)
        rc = 1;
    if (rc != 0) /* a rank that failed alone would leave the others waiting */
        MPI_Abort(MPI_COMM_WORLD, rc);
    MPI_Finalize();
    return 0;
}

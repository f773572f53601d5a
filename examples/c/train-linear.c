/* train-linear.c - the shortest complete robust training loop in C: the
 * built-in linear Bradley-Terry reward model on generated pairs, a KL ball
 * over prompts, AdamW, until the convergence test says so (docs/integration.md,
 * "C").  Exits non-zero if the training accuracy stays below 80%. */
#include "drpo.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define DIM 3
#define ROWS 400
#define PER_PROMPT 2
#define BATCH 40

static int fail(const char *what, drpo_status st, const char *msg)
{
    fprintf(stderr, "%s: %s (%s)\n", what, drpo_status_string(st), msg);
    return 1;
}

/* Feature differences phi(x, chosen) - phi(x, rejected) of a linear BT model. */
static void make_pairs(float *diff)
{
    const double truth[DIM] = {2.0, -1.0, 0.5};
    unsigned long long s = 42;
    for (size_t h = 0; h < ROWS; h++) {
        double z = 0.0, x[DIM];
        for (size_t i = 0; i < DIM; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            x[i] = (double)(s >> 11) / 9007199254740992.0 * 2.0 - 1.0;
            z += truth[i] * x[i];
        }
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        double y = (double)(s >> 11) / 9007199254740992.0 < 1.0 / (1.0 + exp(-3.0 * z)) ? 1 : -1;
        for (size_t i = 0; i < DIM; i++)
            diff[h * DIM + i] = (float)(y * x[i]);
    }
}

int main(void)
{
    static float diff[ROWS * DIM];
    make_pairs(diff);

    drpo_model *model = NULL;
    drpo_objective *obj = NULL;
    drpo_trainer *t = NULL;
    drpo_batch *b = NULL;
    drpo_status st;
    int rc = 1;
    /* the model borrows diff; parameters start at zero */
    if ((st = drpo_pairwise_linear_create(&model, DIM, ROWS, diff, DRPO_LOSS_BT, 1.0, 0.0,
                                          NULL)) != DRPO_OK)
        return fail("model", st, "");
    if ((st = drpo_objective_create(&obj, DRPO_SET_KL)) != DRPO_OK ||
        (st = drpo_objective_set(obj, DRPO_PARAM_RADIUS, 0.1)) != DRPO_OK) {
        fail("objective", st, drpo_objective_last_error(obj));
        goto out;
    }
    if ((st = drpo_trainer_create(&t, model, obj)) != DRPO_OK ||
        (st = drpo_trainer_set(t, DRPO_TRAIN_OPTIMIZER, DRPO_OPT_ADAMW)) != DRPO_OK ||
        (st = drpo_trainer_set(t, DRPO_TRAIN_LR, 0.05)) != DRPO_OK ||
        (st = drpo_trainer_set(t, DRPO_TRAIN_MAX_STEPS, 400)) != DRPO_OK ||
        (st = drpo_batch_create(&b)) != DRPO_OK) {
        fail("trainer", st, drpo_trainer_last_error(t));
        goto out;
    }
    for (size_t step = 0;; step++) {
        /* a minibatch: PER_PROMPT consecutive rows share a prompt; the host
         * index of a pair is its row of diff */
        drpo_batch_clear(b);
        size_t start = step * BATCH % ROWS;
        for (size_t h = start; h < start + BATCH; h++)
            if ((st = drpo_batch_add_key(b, h / PER_PROMPT, DRPO_GROUP_NONE, (int64_t)h)))
                goto out;
        if ((st = drpo_trainer_step(t, b)) != DRPO_OK) {
            fail("step", st, drpo_trainer_last_error(t));
            goto out;
        }
        if (drpo_trainer_test(t) == DRPO_CONVERGED)
            break;
    }
    const float *theta = drpo_model_params(model);
    size_t good = 0;
    for (size_t h = 0; h < ROWS; h++) {
        double m = 0.0;
        for (size_t i = 0; i < DIM; i++)
            m += theta[i] * diff[h * DIM + i];
        good += m > 0.0;
    }
    double steps = 0, robust = 0;
    drpo_trainer_diag(t, DRPO_TDIAG_STEPS, &steps);
    drpo_trainer_diag(t, DRPO_TDIAG_ROBUST, &robust);
    printf("%.0f steps, robust loss %.4f, theta = [%.3f %.3f %.3f], accuracy %.3f\n", steps,
           robust, (double)theta[0], (double)theta[1], (double)theta[2], (double)good / ROWS);
    rc = good >= 0.8 * ROWS ? 0 : 1;
out:
    drpo_batch_free(b);
    drpo_trainer_free(t); /* before the model and objective it borrows */
    drpo_objective_free(obj);
    drpo_model_free(model);
    return rc;
}

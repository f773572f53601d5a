/* convergence.c - the trainer's diagnostics and the convergence test, kept
 * apart from the step (iterate / test split). */
#include "trainer.h"

#include <math.h>

drpo_status drpo_trainer_diag(const drpo_trainer *t, int32_t key, double *value)
{
    if (!t || !value)
        return DRPO_ERR_NULL;
    if (key < 1 || key >= DRPO__NTDIAG)
        return DRPO_ERR_KEY;
    if (key == DRPO_TDIAG_STEPS) {
        *value = (double)t->steps;
        return DRPO_OK;
    }
    if (key == DRPO_TDIAG_CALLBACK_CODE || key == DRPO_TDIAG_CONVERGED_BY) {
        *value = t->diag_set & (1u << key) ? t->diag[key] : 0.0;
        return DRPO_OK;
    }
    if (!(t->diag_set & (1u << key)))
        return t->diag_set & (1u << DRPO_TDIAG_ROBUST) ? DRPO_ERR_UNAVAILABLE
                                                       : DRPO_ERR_NO_SOLUTION;
    *value = t->diag[key];
    return DRPO_OK;
}

drpo_status drpo_trainer_group_diag(const drpo_trainer *t, int32_t group, int32_t key,
                                    double *value)
{
    if (!t || !value)
        return DRPO_ERR_NULL;
    if (key < DRPO_GDIAG_MEAN_LOSS || key > DRPO_GDIAG_PAIRS)
        return DRPO_ERR_KEY;
    if (group < 0 || (size_t)group >= t->G)
        return DRPO_ERR_PARAM_RANGE;
    if (!(t->diag_set & (1u << DRPO_TDIAG_ROBUST))) /* no step in this process yet */
        return DRPO_ERR_NO_SOLUTION;
    *value = t->gdiag[3 * (size_t)group + (size_t)(key - 1)];
    return DRPO_OK;
}

static drpo_status converged(drpo_trainer *t, int by)
{
    t->diag[DRPO_TDIAG_CONVERGED_BY] = by;
    t->diag_set |= 1u << DRPO_TDIAG_CONVERGED_BY;
    return by ? DRPO_CONVERGED : DRPO_CONTINUE;
}

drpo_status drpo_trainer_test(drpo_trainer *t)
{
    if (!t)
        return DRPO_ERR_NULL;
    if (t->progress && t->progress(t->progress_user, t) != 0) {
        converged(t, 4);
        return DRPO_STOPPED;
    }
    if (t->test.max_steps > 0 && (double)t->steps >= t->test.max_steps)
        return converged(t, 3);
    if (t->diag_set & (1u << DRPO_TDIAG_GRAD_NORM)) {
        /* strict: a gradient that is exactly 0 because every weight was 0
         * (a batch below a CVaR threshold) must not pass with tolerance 0;
         * in stochastic mode the duals must have settled too */
        double pn = t->diag[DRPO_TDIAG_PARAM_NORM], tol = t->test.grad_tol * (pn > 1.0 ? pn : 1.0);
        int duals_settled = !(t->diag_set & (1u << DRPO_TDIAG_DUAL_GRAD)) ||
                            t->diag[DRPO_TDIAG_DUAL_GRAD] < tol;
        if (t->diag[DRPO_TDIAG_GRAD_NORM] < tol && duals_settled)
            return converged(t, 1);
    }
    uint32_t w = (uint32_t)t->test.window, size = DRPO__MAX_WINDOW + 1;
    if (t->hist_len > w) {
        double now = t->history[(t->hist_pos + size - 1) % size];
        double then = t->history[(t->hist_pos + size - 1 - w) % size];
        double scale = fabs(now) > 1.0 ? fabs(now) : 1.0;
        if (fabs(then - now) <= t->test.rel_tol * scale)
            return converged(t, 2);
    }
    return converged(t, 0);
}

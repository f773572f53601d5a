/* none.c - empirical risk: q = p, no parameter. */
#include "../internal.h"

static drpo_status none_solve(const drpo_problem *pb, drpo_solution *sol)
{
    drpo__q_base(pb, sol);
    return DRPO_OK;
}

static double none_divergence(size_t m, const double *q, const double *p)
{
    (void)m;
    (void)q;
    (void)p;
    return 0.0;
}

const drpo_set_ops drpo__set_none = {"none", 1u << DRPO__FORM_NONE, none_solve, none_divergence,
                                     NULL};

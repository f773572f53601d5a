/* cvar.c - conditional value at risk: q <= p / alpha.
 *
 * Gap space (the order of the gaps near the threshold only: window.c).
 * Fill q = p / alpha from the smallest gap
 * (largest loss) until mass 1; the gap where the mass runs out is the
 * threshold t (VaR: eta = l_max - t).  Value in the tie-insensitive dual
 * form  -t + sum p (t - d)_+ / alpha; the mass left for the tied gaps at t is
 * spread over them in proportion to p.  With a uniform base the search
 * needs masses alone (counts), so its first window comes with the scan of
 * the losses, and the weights pass sums p (t - d)_+ itself. */
#include "../internal.h"

#include <math.h>

/* The crossing: the first gap, ascending, at which the cumulative mass
 * reaches alpha. */
static int check(const drpo_window *w, const void *ctx)
{
    double alpha = *(const double *)ctx;
    if (w->below_mass >= alpha)
        return -1;
    return w->below_mass + w->win_mass >= alpha || isinf(w->hi) ? 0 : 1;
}

static double predict(const drpo_window *w, const drpo_window *sample, const void *ctx)
{
    (void)sample;
    return (*(const double *)ctx - w->below_mass) / w->win_mass;
}

/* Where the mass from the smallest gap reaches alpha (the threshold), the
 * masses below it and at it; over a weighted base also *s1, sum p d below
 * it (counted, the weights pass measures the deficit instead). */
static drpo_crossing find_crossing(const drpo_problem *pb, double alpha, int counted,
                                   int *passes, double *s1)
{
    *s1 = 0.0;
    if (counted && pb->m <= DRPO__RANK_UP_TO) /* (never reached: the largest gap) */
        return drpo__rank_crossing(pb->x, pb->m, pb->top, pb->down, 0.0, pb->pu, alpha, 0,
                                   pb->scratch, (double *)pb->pairs);
    drpo_window w;
    drpo_window_rule rule = {check, predict, &alpha, counted ? 0 : 1};
    *passes = drpo__window_find(pb, &rule, &w);
    drpo_crossing x = drpo__window_crossing(&w, alpha, 0, counted ? pb->pu : 0.0, pb->scratch);
    if (!counted) {
        *s1 = w.below_s1;
        for (size_t i = 0; i < w.n; i++)
            *s1 += w.win[i].d < x.gap ? w.win[i].p * w.win[i].d : 0.0;
    }
    return x;
}

static drpo_status cvar_solve(const drpo_problem *pb, drpo_solution *sol)
{
    double alpha = pb->param;
    sol->has_eta = 1;
    sol->iterations = 1;
    if (pb->p_top >= 1.0) {
        drpo__q_on_top(pb, sol, DRPO__DIV_MAX_RATIO);
        sol->eta = 0.0;
        return DRPO_OK;
    }
    /* (a uniform base: masses alone, unless 1 / alpha overflows) */
    int counted = pb->uniform && isfinite(1.0 / alpha);
    double s1;
    drpo_crossing c = find_crossing(pb, alpha, counted, &sol->iterations, &s1);
    double t = c.gap, below = c.before, at = c.at;
    /* (counted: the weights pass measures it, the deficit) */
    double excess = counted ? 0.0 : fmax(t * below - s1, 0.0);
    double rest = 1.0 - below / alpha; /* mass for the tie group at t */
    if (rest < 0.0)
        rest = 0.0;
    if (rest > at / alpha) /* never past the group's caps */
        rest = at / alpha;
    double c_at = at > 0.0 ? rest / at : 0.0;
    drpo_qrule r = {.kind = DRPO__Q_STEP,
                    .divergence = DRPO__DIV_MAX_RATIO,
                    .t = t,
                    .c_top = t > 0.0 ? 1.0 / alpha : c_at,
                    .c_below = 1.0 / alpha,
                    .c_at = c_at,
                    .scale = 1.0};
    r.value_deficit = counted ? 1.0 / alpha : 0.0;
    sol->rule = r;
    sol->eta = t;
    sol->value = -t + excess / alpha;
    sol->tight = alpha < 1.0 && (below > 0.0 || rest / at >= 1.0 / alpha); /* a unit at p/alpha */
    return DRPO_OK;
}

/* The constraint's own measure: max q/p, at most 1/alpha. */
static double cvar_divergence(size_t m, const double *q, const double *p)
{
    double r = 0.0;
    for (size_t j = 0; j < m; j++)
        if (q[j] > 0.0 && q[j] / p[j] > r)
            r = q[j] / p[j];
    return r;
}

/* The crossing lies at mass alpha from the smallest gap. */
static double cvar_level(int form, double alpha)
{
    (void)form;
    return alpha;
}

const drpo_set_ops drpo__set_cvar = {"cvar", 1u << DRPO__FORM_LEVEL, cvar_solve,
                                     cvar_divergence, cvar_level};

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

/* The largest gap of a window (`otherwise` if it is empty). */
static double window_top(const drpo_pair *win, size_t n, double otherwise)
{
    double t = otherwise;
    for (size_t i = 0; i < n; i++)
        t = i == 0 || win[i].d > t ? win[i].d : t;
    return t;
}

/* Where the mass from the smallest gap reaches alpha: the threshold t, the
 * masses below it and at it, and (not counted) sum p d below it. */
typedef struct cvar_crossing {
    double t, below, at, s1;
} cvar_crossing;

/* A uniform base: masses are counts.  Up to DRPO__RANK_UP_TO units the
 * crossing is a rank found in all the gaps; past it, in a window. */
static cvar_crossing counted_crossing(const drpo_problem *pb, double alpha, int *passes)
{
    cvar_crossing c = {0.0, 0.0, 0.0, 0.0};
    size_t k = drpo__count_reaching(0.0, pb->pu, alpha), n_below = 0, n_at = 0;
    if (pb->m <= DRPO__RANK_UP_TO) { /* (never reached: the largest gap) */
        c.t = drpo__rank_select(pb->x, pb->m, pb->top, pb->down, (k < pb->m ? k : pb->m) - 1,
                                pb->scratch, (double *)pb->pairs, &n_below, &n_at);
        c.below = (double)n_below * pb->pu;
        c.at = (double)n_at * pb->pu;
        return c;
    }
    drpo_window w;
    drpo_window_rule rule = {check, predict, &alpha, 0};
    *passes = drpo__window_find(pb, &rule, &w);
    drpo_pair *win = (drpo_pair *)w.win;
    double start = drpo__units_of_mass(w.below_mass, pb->pu);
    c.t = w.next;
    if (!drpo__pairs_crossing_counted(win, w.n, start, pb->pu, alpha, 0, &c.t))
        c.t = window_top(win, w.n, c.t); /* the window's mass never reaches alpha */
    for (size_t i = 0; i < w.n; i++) {
        n_below += win[i].d < c.t;
        n_at += win[i].d == c.t;
    }
    c.below = (start + (double)n_below) * pb->pu;
    c.at = (double)n_at * pb->pu;
    return c;
}

/* A weighted base: compensated sums (with plain ones, at n = 10^5 the tie
 * group's share `rest` could be off by ~1e-11 and break its cap p/alpha). */
static cvar_crossing weighted_crossing(const drpo_problem *pb, double alpha, int *passes)
{
    drpo_window w;
    drpo_window_rule rule = {check, predict, &alpha, 1};
    *passes = drpo__window_find(pb, &rule, &w);
    drpo_pair *win = (drpo_pair *)w.win;
    cvar_crossing c = {w.next, 0.0, 0.0, w.below_s1};
    if (!drpo__pairs_crossing(win, w.n, w.below_mass, alpha, 0, &c.t))
        c.t = window_top(win, w.n, c.t);
    drpo_ksum below_k = {w.below_mass, 0.0}, at_k = {0.0, 0.0};
    for (size_t i = 0; i < w.n; i++) {
        if (win[i].d < c.t) {
            drpo__ksum_add(&below_k, win[i].p);
            c.s1 += win[i].p * win[i].d;
        } else if (win[i].d == c.t) {
            drpo__ksum_add(&at_k, win[i].p);
        }
    }
    c.below = drpo__ksum_value(&below_k);
    c.at = drpo__ksum_value(&at_k);
    return c;
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
    cvar_crossing c = counted ? counted_crossing(pb, alpha, &sol->iterations)
                              : weighted_crossing(pb, alpha, &sol->iterations);
    double t = c.t, below = c.below, at = c.at, s1 = c.s1;
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

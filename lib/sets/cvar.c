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
    drpo_window w;
    drpo_window_rule rule = {check, predict, &alpha, counted ? 0 : 1};
    sol->iterations = drpo__window_find(pb, &rule, &w);

    drpo_pair *win = (drpo_pair *)w.win;
    double t = w.next, below, at, s1 = w.below_s1;
    int found;
    if (counted) { /* the masses with d < t and d == t, as counts */
        double start = drpo__units_of_mass(w.below_mass, pb->pu);
        found = drpo__pairs_crossing_counted(win, w.n, start, pb->pu, alpha, 0, &t);
        if (!found) /* the window's mass never reaches alpha: its top */
            t = window_top(win, w.n, t);
        size_t n_below = 0, n_at = 0;
        for (size_t i = 0; i < w.n; i++) {
            n_below += win[i].d < t;
            n_at += win[i].d == t;
        }
        below = (start + (double)n_below) * pb->pu;
        at = (double)n_at * pb->pu;
    } else {
        /* compensated sums: with plain ones, at n = 10^5 the tie group's
         * share `rest` could be off by ~1e-11 and break its cap p/alpha */
        found = drpo__pairs_crossing(win, w.n, w.below_mass, alpha, 0, &t);
        if (!found)
            t = window_top(win, w.n, t);
        drpo_ksum below_k = {w.below_mass, 0.0}, at_k = {0.0, 0.0};
        for (size_t i = 0; i < w.n; i++) {
            if (win[i].d < t) {
                drpo__ksum_add(&below_k, win[i].p);
                s1 += win[i].p * win[i].d;
            } else if (win[i].d == t) {
                drpo__ksum_add(&at_k, win[i].p);
            }
        }
        below = drpo__ksum_value(&below_k);
        at = drpo__ksum_value(&at_k);
    }
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

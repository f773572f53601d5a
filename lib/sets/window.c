/* window.c - find where a monotone criterion over the sorted gaps crosses
 * its target without sorting everything.
 *
 * The threshold solvers (chi-square, CVaR, TV radius) scan the gaps in
 * ascending order with running sums until a criterion turns true.  Only the
 * part of the order near the crossing matters: a deterministic sample of
 * the gaps predicts where it lies, one pass summarises every gap below that
 * bracket and copies the gaps inside it, and only the copy is sorted.  The
 * solver checks that the crossing really lies inside; if not, the bracket
 * widens (at worst to everything, which is the full sort).  Exact either
 * way: the sample only decides how much gets sorted. */
#include "../internal.h"

#include <math.h>

/* Below this many gaps a full sort is as cheap as anything. */
#define FULL_SORT_BELOW 32768

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

size_t drpo__window_sample(const drpo_problem *pb, drpo_window *w)
{
    size_t m = pb->m;
    if (m < FULL_SORT_BELOW)
        return 0;
    size_t s = m >= ((size_t)1 << 22) ? (size_t)1 << 16 : (size_t)1 << 14;
    double mass = 0.0;
    for (size_t i = 0; i < s; i++) { /* one gap from each of s equal strata */
        size_t lo = i * m / s, hi = (i + 1) * m / s;
        size_t j = lo + (size_t)(mix(i + 1) % (hi - lo));
        pb->pairs[i].d = pb->d[j];
        pb->pairs[i].p = pb->p[j];
        mass += pb->p[j];
    }
    for (size_t i = 0; i < s; i++)
        pb->pairs[i].p /= mass;
    drpo__pairs_sort(pb->pairs, s);
    w->win = pb->pairs;
    w->n = s;
    w->below_mass = 0.0;
    w->below_s1 = w->below_s2 = 0.0;
    w->above_mass = 0.0;
    w->next = INFINITY;
    return s;
}

double drpo__window_level(const drpo_window *w, size_t k)
{
    double c = 0.0;
    for (size_t i = 0; i < k && i < w->n; i++)
        c += w->win[i].p;
    return c;
}

void drpo__window_bracket(const drpo_window *sample, double level, double *lo, double *hi)
{
    double delta = 3.0 / sqrt((double)sample->n);
    double a = level - delta, b = level + delta, c = 0.0;
    *lo = -INFINITY;
    *hi = INFINITY;
    for (size_t i = 0; i < sample->n; i++) {
        c += sample->win[i].p;
        if (c <= a)
            *lo = sample->win[i].d; /* mass up to and including this gap <= a */
        if (c >= b) {
            *hi = sample->win[i].d;
            break;
        }
    }
}

void drpo__window_fill(const drpo_problem *pb, double lo, double hi, drpo_window *w)
{
    drpo_ksum below = {0.0, 0.0}, above = {0.0, 0.0};
    double s1 = 0.0, s2 = 0.0, next = INFINITY;
    size_t k = 0;
    for (size_t j = 0; j < pb->m; j++) {
        double d = pb->d[j], p = pb->p[j];
        if (d < lo) {
            drpo__ksum_add(&below, p);
            s1 += p * d;
            s2 += p * d * d;
        } else if (d < hi) {
            pb->pairs[k].d = d;
            pb->pairs[k].p = p;
            k++;
        } else {
            drpo__ksum_add(&above, p);
            next = d < next ? d : next;
        }
    }
    drpo__pairs_sort(pb->pairs, k);
    w->win = pb->pairs;
    w->n = k;
    w->below_mass = drpo__ksum_value(&below);
    w->below_s1 = s1;
    w->below_s2 = s2;
    w->above_mass = drpo__ksum_value(&above);
    w->next = next;
    w->lo = lo;
    w->hi = hi;
}

int drpo__window_find(const drpo_problem *pb, drpo_window *w, drpo_window_check check,
                      const void *ctx, double lo, double hi)
{
    int passes = 0;
    for (;;) {
        drpo__window_fill(pb, lo, hi, w);
        passes++;
        int where = check(w, ctx);
        if (where == 0 || (isinf(lo) && isinf(hi)))
            return passes;
        if (where < 0) { /* the crossing lies below lo */
            hi = lo;
            lo = -INFINITY;
        } else {
            lo = hi;
            hi = INFINITY;
        }
    }
}

/* kl.c - Kullback-Leibler ball and penalty: q ∝ p exp(-u d), u = 1/lambda.
 *
 * Gap space (d >= 0, d = 0 on the argmax set).  With w_j = p_j exp(-u d_j),
 * Z = sum w, E = E_q[d]:
 *   KL(q_u || p) = -u E - log Z, increasing in u from 0 to -log p_top;
 *   penalty form: value = lambda log Z = lambda log1p(sum p expm1(-d/lambda));
 *   radius form:  u solves KL(q_u) = rho, value = -E_q[d].  Each pass over
 *                 the gaps measures the cumulants of d under q_u to order 6,
 *                 so KL near u is known as a polynomial in the step
 *                 (d log Z / du = -E_q[d], d E_q[d] / du = -Var_q(d)); its
 *                 root is the next u (Halley's step where it has none), safe-
 *                 guarded by a bracket.  From a sampled start within a few per
 *                 cent, the second pass usually meets the tolerance.
 * No exponent is ever positive, so nothing overflows.  The passes
 * themselves are in kl_pass.c. */
#include "../internal.h"
#include "../vec.h"

#include <float.h>
#include <math.h>

/* The gaps and masses a Newton iteration runs over: the problem, or a
 * sample of it laid out as one (kl_start). */
typedef struct kl_view {
    const drpo_problem *pb;
    double *store; /* where an evaluation may keep its weights p exp(-u d) (NULL: nowhere) */
    int sample;    /* every pass measures all moments (a sample is small) */
    double d_max, d_min; /* largest gap; smallest positive gap (< 0: not yet known) */
    double centre;       /* moments are summed about it: the last E_q[d] known */
} kl_view;

typedef struct kl_eval {
    double log_z; /* log sum p exp(-u d) */
    double z;     /* sum p exp(-u d) (compensated) */
    double mean;  /* E_q[d] */
    double var;   /* Var_q(d) */
    double kappa[DRPO__KL_ORDER + 1]; /* cumulants of d under q: [1] mean, [2] var, ... */
    int precise;  /* Z near 1: log Z from log1p of an expm1 sum */
    int stored;   /* the weights p exp(-u d) are in the view's store */
    int moments;  /* kappa holds all DRPO__KL_ORDER cumulants (else the mean alone) */
} kl_eval;

/* The cumulants to order 6 from the moments a[k] = E_q[(d - c)^k] about c
 * (a[1] = mean - c): central moments by the binomial sums, then the
 * moment-cumulant relations. */
static void cumulants(double c, const double a[DRPO__KL_ORDER + 1],
                      double kappa[DRPO__KL_ORDER + 1])
{
    double delta = a[1], mu[DRPO__KL_ORDER + 1];
    for (int k = 0; k <= DRPO__KL_ORDER; k++) { /* mu_k = sum_j C(k, j) a_j (-delta)^(k-j) */
        double sum = 0.0, binom = 1.0;
        for (int j = 0; j <= k; j++) {
            double pw = 1.0;
            for (int i = 0; i < k - j; i++)
                pw *= -delta;
            sum += binom * (j == 0 ? 1.0 : a[j]) * pw;
            binom = binom * (k - j) / (j + 1);
        }
        mu[k] = sum;
    }
    mu[1] = 0.0;
    kappa[0] = 0.0;
    kappa[1] = c + delta;
    kappa[2] = mu[2] > 0.0 ? mu[2] : 0.0;
    kappa[3] = mu[3];
    kappa[4] = mu[4] - 3.0 * mu[2] * mu[2];
    kappa[5] = mu[5] - 10.0 * mu[3] * mu[2];
    kappa[6] = mu[6] - 15.0 * mu[4] * mu[2] - 10.0 * mu[3] * mu[3] + 30.0 * mu[2] * mu[2] * mu[2];
}

/* One pass at inverse temperature u.  `last`: the pass is likely the
 * solve's last, so its weights are kept in the view's store for the weights
 * pass and, over the problem, it sums the mean alone (a sample always gets
 * every moment: it is small). */
static kl_eval kl_evaluate(const kl_view *v, double u, int last)
{
    const double c = v->centre;
    kl_eval e;
    e.precise = u * v->d_max < 0.5; /* Z near 1: log1p of an expm1 sum keeps log Z exact */
    e.stored = last && v->store;
    e.moments = v->sample || !last;
    drpo_kl_sums s = drpo__kl_pass(v->pb, u, c, e.stored ? v->store : NULL, e.precise, e.moments);
    double z = s.z, em1 = s.em1, mom[DRPO__KL_ORDER + 1] = {0.0};
    for (int k = 1; k <= (e.moments ? DRPO__KL_ORDER : 1); k++)
        mom[k] = s.mom[k - 1];
    e.z = z;
    e.log_z = e.precise && z >= 0.5 ? log1p(em1) : log(z);
    for (int k = 1; k <= DRPO__KL_ORDER; k++)
        mom[k] /= z;
    cumulants(c, mom, e.kappa);
    e.mean = e.kappa[1];
    e.var = e.kappa[2];
    return e;
}

/* The weights at the evaluated u: p exp(-u d) / Z, written by the same
 * arithmetic that summed Z, so they sum to 1 within a few ulps. */
static void kl_rule(drpo_solution *sol, double u, const kl_eval *e, const kl_view *v)
{
    drpo_qrule r = {.kind = e->stored    ? DRPO__Q_STORED
                            : e->precise ? DRPO__Q_EXP_PRECISE
                                         : DRPO__Q_EXP,
                    .divergence = DRPO__DIV_NONE,
                    .t = u,
                    .w = e->stored ? v->store : NULL,
                    .scale = 1.0 / e->z};
    sol->rule = r;
    sol->divergence = -u * e->mean - e->log_z; /* KL(q_u || p), as Newton measured it */
    if (sol->divergence < 0.0)
        sol->divergence = 0.0;
}

static double kl_of(double u, const kl_eval *e) { return -u * e->mean - e->log_z; }

/* All mass on the argmax set: D = -log p_top. */
static void kl_on_top(const drpo_problem *pb, drpo_solution *sol)
{
    drpo__q_on_top(pb, sol, DRPO__DIV_NONE);
    sol->divergence = -log(pb->p_top);
}

static drpo_status kl_penalty(const drpo_problem *pb, drpo_solution *sol)
{
    double lambda = pb->param;
    sol->has_lambda = 1;
    sol->has_eta = 1;
    sol->lambda = lambda;
    sol->iterations = 1;
    double u = lambda > 0.0 ? 1.0 / lambda : INFINITY;
    if (pb->p_top >= 1.0 || isinf(u)) { /* lambda 0 (or too small for 1/lambda) */
        kl_on_top(pb, sol);
        sol->eta = 0.0;
        return DRPO_OK;
    }
    kl_view v = {pb, pb->scratch, 0, pb->d_max, 0.0, pb->mean_d};
    kl_eval e = kl_evaluate(&v, u, 1);
    kl_rule(sol, u, &e, &v);
    sol->value = lambda * e.log_z;
    sol->eta = -sol->value; /* mu = lambda log E_p exp(l / lambda), in gaps */
    return DRPO_OK;
}

/* The smallest positive gap, found on the first call (a pass). */
static double smallest_gap(kl_view *v)
{
    if (v->d_min < 0.0) {
        v->d_min = INFINITY;
        for (size_t j = 0; j < v->pb->m; j++) {
            double d = drpo__gap(v->pb, j);
            if (d > 0.0 && d < v->d_min)
                v->d_min = d;
        }
    }
    return v->d_min;
}

/* The u near u0 where KL, expanded in its cumulants at u0 (to order 6),
 * equals rho: Newton on the expansion (whose slope is (u0 + h) Var(h),
 * exactly as for KL itself), and the expansion's slope there.  0 when it
 * finds none within u0 / 2. */
static int model_root(double u0, const kl_eval *e, double rho, double *u, double *slope_at_u)
{
    const double *k = e->kappa;
    double h = 0.0;
    for (int it = 0; it < 32; it++) {
        /* with t_j = (-h)^j / j!: log Z = log Z0 + sum_j>=1 k_j t_j,
         * E = sum_j k_(j+1) t_j, Var = sum_j k_(j+2) t_j */
        double log_z = e->log_z, mean = 0.0, var = 0.0, t = 1.0;
        for (int j = 0; j <= DRPO__KL_ORDER; j++) {
            log_z += j >= 1 ? k[j] * t : 0.0;
            mean += j + 1 <= DRPO__KL_ORDER ? k[j + 1] * t : 0.0;
            var += j + 2 <= DRPO__KL_ORDER ? k[j + 2] * t : 0.0;
            t *= -h / (j + 1);
        }
        double g = -(u0 + h) * mean - log_z - rho, slope = (u0 + h) * var;
        if (!(slope > 0.0))
            return 0;
        double step = g / slope;
        h -= step;
        if (!(fabs(h) <= 0.5 * u0))
            return 0;
        if (fabs(step) <= 1e-15 * u0) {
            *u = u0 + h;
            *slope_at_u = slope;
            return 1;
        }
    }
    return 0;
}

/* Far from rho, where the cumulant expansion at u has no root in reach: a
 * Newton step on a transform of KL that is nearly linear there (NAN where
 * it has none).  slope: dKL/du = u Var.  In the lower half of KL's range,
 * log KL against log u (KL ~ u^2 Var / 2 at small u, a power law further
 * up; Halley from 100 times too small a KL moved u by half of what was
 * needed).  In the upper half, near saturation at kl_max = -log p_top,
 * the log of the deficit kl_max - KL against u: it decays like
 * exp(-u d_min) (Halley from there moved u by a few per cent, and
 * bisection then fell far below).  kl_max: infinite where unknown. */
static double far_step(double u, double kl, double slope, double rho, double kl_max)
{
    if (!(kl > 0.0 && slope > 0.0 && isfinite(slope)))
        return NAN;
    double deficit = kl_max - kl;
    if (deficit >= kl)
        return u * exp((log(rho) - log(kl)) * kl / (u * slope));
    if (!(deficit > 1e-12 * kl_max)) /* (the deficit lost its digits) */
        return NAN;
    return u - (log(kl_max - rho) - log(deficit)) * deficit / slope;
}

/* Solve KL(q_u || p) = rho over u, from u, until |KL - rho| <= tol: each
 * pass's next u is the root of its cumulant expansion (else, far from rho,
 * far_step; else Halley's step), kept inside the bracket the passes have
 * found.  Returns the passes, 0 when rho is out of reach of every finite u
 * (the argmax set is then the answer), -1 when it does not converge.  *e
 * is the evaluation at the returned *u. */
static int kl_newton(kl_view *v, double rho, double tol, double *u_io, kl_eval *e)
{
    double u = *u_io, lo = 0.0, hi = INFINITY; /* KL(lo) < rho < KL(hi) */
    double slope = 0.0;        /* dKL/du at the next u, as the last pass with moments had it */
    double f_prev = INFINITY;  /* |KL - rho| at the pass before */
    double kl_max = v->pb->p_top > 0.0 ? -log(v->pb->p_top) : INFINITY; /* sup KL */
    int last = 0;              /* the steps say this pass is likely the last */
    for (int it = 1; it <= 400; it++) {
        *e = kl_evaluate(v, u, last);
        *u_io = u;
        double f = kl_of(u, e) - rho;
        if (isnan(f)) /* every weight underflowed (a sample without the top): u is far too large */
            f = INFINITY;
        else
            v->centre = e->mean;
        if (fabs(f) <= tol)
            return it;
        if (f < 0)
            lo = u;
        else
            hi = u;
        if (isinf(hi) && u * v->d_max > 1500.0 && u * smallest_gap(v) > 1500.0)
            return 0; /* every weight off the argmax set is below 1e-650 */
        if (!isinf(hi) && hi - lo <= 4.0 * DBL_EPSILON * hi)
            return it;
        double next, model_slope = 0.0;
        int modelled = e->moments && model_root(u, e, rho, &next, &model_slope);
        if (!e->moments) {
            /* (a likely last pass that was not) Newton, with the slope the
             * expansion gave at this u: within ~1e-6 where its root missed
             * by ~1e-8; the slope measured at the last u (per cent away on
             * heavy tails) took one more pass */
            next = u - f / slope;
        } else if (!modelled) {
            double f1 = u * e->var; /* Halley: f' = u Var, f'' = Var - u kappa_3 */
            double f2 = e->var - u * e->kappa[3], den = 2.0 * f1 * f1 - f * f2;
            /* (not over a sample: started from its own expansion, it is
             * rarely far, and with far steps its passes rose by a quarter) */
            next = !v->sample && fabs(f) > 0.5 * rho ? far_step(u, f + rho, f1, rho, kl_max) : NAN;
            if (isnan(next))
                next = den > 0.0 ? u - 2.0 * f * f1 / den : u - f / f1;
        }
        if (e->moments)
            slope = modelled ? model_slope : u * e->var;
        /* a step that did not halve |KL - rho| is in a region the local
         * models do not describe (KL saturated near -log p_top, or flat far
         * below): the bracket decides the next pass instead.  (A step the
         * bracket chose is not judged so: from saturation, a quarter of u
         * can leave |KL - rho| above half, and the bracket then fell a
         * second time, far below, where the next model step was in reach.) */
        int slow = fabs(f) > 0.5 * f_prev, inside = next > lo && next < hi && isfinite(next);
        f_prev = fabs(f);
        if (slow && inside && isinf(hi) && next > u) { /* below, no bound above: twice as far */
            next = u + 2.0 * (next - u);
            modelled = 0;
        } else if (slow || !inside) {
            modelled = 0;
            if (isinf(hi))
                next = u * 64.0;
            else if (lo == 0.0 || hi > 4.0 * lo)
                next = lo == 0.0 ? hi / 4.0 : sqrt(lo) * sqrt(hi); /* (lo hi may overflow) */
            else
                next = 0.5 * (lo + hi);
            f_prev = INFINITY;
        }
        /* the expansion's root from within 5 %, or Halley from within 1e-4,
         * lands within ~1e-12: that pass is likely the last */
        last = e->moments && fabs(next - u) <= (modelled ? 0.05 : 1e-4) * u;
        u = next;
    }
    return -1;
}

/* A Newton solve to 1e-4 rho on n gaps x with masses p laid out as a
 * problem (in the scratch: its passes run the problem's kernels), from *u
 * and the moments' centre full->centre.  On success: 1, with *u, the
 * centre and the sample's Z at *u (*z) updated. */
static int kl_solve_sample(const double *x, const double *p, size_t n, double rho,
                           kl_view *full, double *u, double *z)
{
    double d_max = 0.0, d_min = INFINITY;
    for (size_t i = 0; i < n; i++) {
        d_max = x[i] > d_max ? x[i] : d_max;
        d_min = x[i] > 0.0 && x[i] < d_min ? x[i] : d_min;
    }
    drpo_problem sample = {.m = n, .x = x, .top = 0.0, .down = -1.0, .p = p, .uniform = 0};
    kl_view sv = {&sample, NULL, 1, d_max, d_min, full->centre};
    kl_eval e;
    double v = *u;
    if (!(kl_newton(&sv, rho, 1e-4 * rho, &v, &e) > 0 && v > 0.0 && isfinite(v)))
        return 0;
    *u = v;
    *z = e.z;
    full->centre = isfinite(e.mean) ? e.mean : full->centre;
    return 1;
}

/* The sample's units whose gaps are exactly the smallest of the data's
 * when the start takes the top in (kl_start_top). */
#define KL_TOP_UNITS 64

/* The start from the sample (s gaps x with masses p, in the scratch, their
 * pairs in pb->pairs) with the top of the data in it: the units whose gaps
 * lie below the sample's KL_TOP_UNITS-th smallest (about KL_TOP_UNITS m / s
 * of them, found by one pass) exactly, and the sampled units from there up,
 * their masses scaled to the rest.  Solved from u; u itself where the top is
 * too large to keep. */
static double kl_start_top(const drpo_problem *pb, kl_view *full, double rho, const double *xs,
                           const double *ps, size_t s, double u)
{
    size_t m = pb->m;
    double tau, top_mass, rest = 0.0, z;
    if (!drpo__pairs_crossing(pb->pairs, s, 0.0, (double)KL_TOP_UNITS / (double)s, 0, &tau) ||
        !(tau > 0.0))
        return u;
    size_t k = drpo__gaps_below(pb, tau, &top_mass);
    if (k == 0 || k + s > (m - 2 * s) / 2 || !(top_mass < 1.0))
        return u;
    /* after the sample in the scratch: gaps, then masses */
    double *x = pb->scratch + 2 * s, *p = x + k + s;
    size_t n = 0;
    for (; n < k; n++) {
        x[n] = pb->pairs[n].d;
        p[n] = pb->pairs[n].p;
    }
    for (size_t i = 0; i < s; i++)
        if (xs[i] >= tau) {
            x[n] = xs[i];
            p[n++] = ps[i];
            rest += ps[i];
        }
    if (!(rest > 0.0))
        return u;
    for (size_t i = k; i < n; i++)
        p[i] *= (1.0 - top_mass) / rest;
    kl_solve_sample(x, p, n, rho, full, &u, &z);
    return u;
}

/* The small-radius expansion's temperature, KL ~ u^2 Var / 2 = rho (0 where
 * it has none). */
static double expansion_u(double var, double rho)
{
    double u = var > 0.0 ? sqrt(2.0 * rho / var) : 0.0;
    return u > 0.0 && isfinite(u) ? u : 0.0;
}

/* Whether KL(q_u || p) > rho is certain from the top alone, at
 * t = u d_min (d_min: the smallest positive gap): KL is at least the
 * divergence of q_u's two-cell split {argmax set, rest}, whose q-mass on
 * the argmax set is at least a = p_top / (p_top + (1 - p_top) exp(-t)),
 * and that binary divergence kl(a || p_top) grows with a. */
static int top_exceeds(double p_top, double t, double rho)
{
    double a = p_top / (p_top + (1.0 - p_top) * exp(-t));
    double kl = a * log(a / p_top) + (a < 1.0 ? (1.0 - a) * log((1.0 - a) / (1.0 - p_top)) : 0.0);
    return kl > rho;
}

/* A u no larger than u by which KL has certainly reached rho (top_exceeds;
 * the least such within 5 %), or u itself where the top does not say so.
 * On heavy tails the small-radius expansion's u put KL at its saturation,
 * from which two passes went to coming back down.  The search halves
 * t = u d_min while the top still exceeds rho, then bisects the last
 * octave geometrically four times (2^(1/16): 4.4 %). */
static double top_bounded_u(double p_top, double d_min, double rho, double u)
{
    double t = u * d_min;
    if (!(p_top > 0.0 && p_top < 1.0 && t > 0.0 && isfinite(t)) || !top_exceeds(p_top, t, rho))
        return u;
    double lo = 0.5 * t;
    for (int k = 0; k < 60 && top_exceeds(p_top, lo, rho); k++) {
        t = lo;
        lo *= 0.5;
    }
    for (int k = 0; k < 4; k++) { /* top_exceeds(t) and not top_exceeds(lo) */
        double mid = sqrt(lo * t);
        if (top_exceeds(p_top, mid, rho))
            t = mid;
        else
            lo = mid;
    }
    return t / d_min;
}

/* Var_p(d) and the smallest positive gap, in one pass of four lanes (a
 * single running sum is a chain of additions as long as the data: at 1024
 * units that loop took a tenth of a solve).  `uniform`: a constant after
 * inlining (the masses are then counted and scaled at the end). */
typedef struct gap_spread {
    double var, d_min;
} gap_spread;

DRPO__INLINE gap_spread spread_body(const drpo_problem *pb, int uniform)
{
    const drpo_v4d zero = drpo__v4_set1(0.0), mean = drpo__v4_set1(pb->mean_d);
    drpo_v4d s = zero, lo = drpo__v4_set1(INFINITY);
    for (size_t j = 0; j < pb->m; j += 4) {
        drpo_v4d d, p, c;
        drpo__v4_units(pb, j, pb->m, uniform, uniform, &d, &p); /* (padded: d = p = 0) */
        c = d - mean;
        s += p * c * c;
        lo = drpo__v4_select((d > zero) & (d < lo), d, lo);
    }
    gap_spread r = {drpo__v4_hsum(s) * (uniform ? pb->pu : 1.0), INFINITY};
    for (int l = 0; l < 4; l++)
        r.d_min = lo[l] < r.d_min ? lo[l] : r.d_min;
    return r;
}

DRPO__KERNEL_DISPATCH(gap_spread, spread_uniform, (const drpo_problem *pb), (pb),
                      spread_body(pb, 1))
DRPO__KERNEL_DISPATCH(gap_spread, spread_weighted, (const drpo_problem *pb), (pb),
                      spread_body(pb, 0))

/* A starting temperature: from a sample of the gaps when there are many
 * (a Newton solve on m / 8 of them from 2^14 units, 4096 from 2^15, 8192
 * from 2^20, itself started from the sample's small-radius expansion,
 * usually lands within a few per cent; on heavy tails, whose few largest
 * losses decide the answer and are rarely sampled, the top of the data is
 * added to the sample, which takes a pass: *passes 1), else from the
 * small-radius expansion KL ~ u^2 Var_p(d) / 2, brought down to
 * top_bounded_u.  (Below 2^14 units the sample's solve cost more than the
 * passes it saved.) */
static double kl_start(const drpo_problem *pb, kl_view *full, double rho, int *passes)
{
    *passes = 0;
    size_t m = pb->m, s = m < ((size_t)1 << 15) ? m / 8 : m < ((size_t)1 << 20) ? 4096 : 8192;
    if (s >= 2048) { /* (s <= m / 8 at every size) */
        /* the sample laid out as a problem in the scratch (free until the
         * last pass keeps its weights there): gaps, then masses */
        double *x = pb->scratch, *p = pb->scratch + s, u, z;
        drpo__sample_gaps(pb, s, pb->pairs);
        for (size_t i = 0; i < s; i++) {
            x[i] = pb->pairs[i].d;
            p[i] = pb->pairs[i].p;
        }
        /* from the small-radius expansion on the sample (from 1 / d_max,
         * its Newton took more steps) */
        double mean = 0.0, var = 0.0;
        for (size_t i = 0; i < s; i++)
            mean += p[i] * x[i];
        for (size_t i = 0; i < s; i++)
            var += p[i] * (x[i] - mean) * (x[i] - mean);
        u = expansion_u(var, rho);
        if (u == 0.0)
            u = 1.0 / (full->d_max > 0.0 ? full->d_max : 1.0);
        if (kl_solve_sample(x, p, s, rho, full, &u, &z)) {
            /* Z over the sample at u: the units above the sample's largest
             * loss, about a 1/s share of the mass, count for up to 1/s in
             * Z; at more than 10 % of it, the sample cannot tell u */
            if (1.0 / (double)s > 0.1 * z) {
                u = kl_start_top(pb, full, rho, x, p, s, u);
                *passes = 1;
            }
            return u;
        }
    }
    gap_spread g = pb->uniform ? spread_uniform(pb) : spread_weighted(pb);
    full->d_min = g.d_min; /* (smallest_gap's, found on the way) */
    double u = expansion_u(g.var, rho);
    return top_bounded_u(pb->p_top, g.d_min, rho, u > 0.0 ? u : 1.0);
}

static drpo_status kl_radius(const drpo_problem *pb, drpo_solution *sol)
{
    double rho = pb->param;
    sol->has_lambda = 1;
    sol->has_eta = 1;
    sol->iterations = 0;
    if (rho == 0.0) {
        drpo__q_base(pb, sol);
        sol->lambda = INFINITY;
        sol->eta = pb->mean_d;
        return DRPO_OK;
    }
    if (pb->p_top >= 1.0 || rho >= -log(pb->p_top)) {
        kl_on_top(pb, sol);
        sol->lambda = 0.0;
        sol->eta = 0.0;
        sol->tight = pb->p_top < 1.0 && rho == -log(pb->p_top);
        return DRPO_OK;
    }
    kl_view v = {pb, pb->scratch, 0, pb->d_max, -1.0, pb->mean_d}; /* d_min: when needed */
    int start_passes;
    double u = kl_start(pb, &v, rho, &start_passes);
    kl_eval e;
    /* |KL - rho| <= 1e-10 rho keeps q well inside the contract's 1e-9 and
     * moves the value by lambda times that; from the sampled start the
     * second pass usually gets there */
    int it = kl_newton(&v, rho, 1e-10 * rho + 1e-15, &u, &e);
    if (it < 0)
        return DRPO_ERR_NUMERICAL;
    if (it == 0) { /* rho sits within rounding of -log p_top */
        kl_on_top(pb, sol);
        sol->lambda = 0.0;
        sol->eta = 0.0;
        return DRPO_OK;
    }
    kl_rule(sol, u, &e, &v);
    sol->value = -e.mean;
    sol->lambda = 1.0 / u;
    sol->eta = -e.log_z / u; /* mu = lambda log E_p exp(l / lambda), in gaps */
    sol->iterations = it + start_passes;
    sol->tight = 1;
    return DRPO_OK;
}

static drpo_status kl_solve(const drpo_problem *pb, drpo_solution *sol)
{
    return pb->form == DRPO__FORM_PENALTY ? kl_penalty(pb, sol) : kl_radius(pb, sol);
}

static double kl_divergence(size_t m, const double *q, const double *p)
{
    double s = 0.0;
    for (size_t j = 0; j < m; j++)
        if (q[j] > 0.0)
            s += q[j] * log(q[j] / p[j]);
    return s > 0.0 ? s : 0.0;
}

const drpo_set_ops drpo__set_kl = {"kl", (1u << DRPO__FORM_RADIUS) | (1u << DRPO__FORM_PENALTY),
                                   kl_solve, kl_divergence, NULL};

/* kl.c - Kullback-Leibler ball and penalty: q ∝ p exp(-u d), u = 1/lambda.
 *
 * Gap space (d >= 0, d = 0 on the argmax set).  With w_j = p_j exp(-u d_j),
 * Z = sum w, E = E_q[d]:
 *   KL(q_u || p) = -u E - log Z, increasing in u from 0 to -log p_top;
 *   penalty form: value = lambda log Z = lambda log1p(sum p expm1(-d/lambda));
 *   radius form:  u solves KL(q_u) = rho by safeguarded Newton
 *                 (d KL / du = u Var_q(d)), value = -E_q[d].
 * No exponent is ever positive, so nothing overflows. */
#include "../internal.h"
#include "../vec.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* The gaps and masses a Newton iteration runs over: the problem (pb) or,
 * when pb is NULL, a sample of (d, p) pairs. */
typedef struct kl_view {
    const drpo_problem *pb;
    double *store; /* where an evaluation may keep its weights p exp(-u d) (m doubles) */
    const drpo_pair *pairs;
    size_t m;
    double d_max, d_min; /* largest gap; smallest positive gap (< 0: not yet known) */
} kl_view;

typedef struct kl_eval {
    double log_z; /* log sum p exp(-u d) */
    double z;     /* sum p exp(-u d) (compensated) */
    double mean;  /* E_q[d] */
    double var;   /* Var_q(d) and the third central moment, for the Halley step */
    double skew;
    int precise;  /* Z near 1: log Z from log1p of an expm1 sum */
    int stored;   /* the weights p exp(-u d) are in the view's store */
} kl_eval;

typedef struct kl_sums {
    drpo_v4d z_s, z_c, s1, s2, s3, em1;
} kl_sums;

/* sum w, w d, w d^2, w d^3 with w = p exp(-u d) over the problem; in the
 * precise form (u d <= 0.5) also sum p expm1(-u d), and w = p (1 + expm1). */
DRPO__INLINE kl_sums kl_body(const drpo_problem *pb, double u, double *store, int uniform,
                             int precise)
{
    const drpo_v4d nu = drpo__v4_set1(-u), zero = drpo__v4_set1(0.0);
    kl_sums s = {zero, zero, zero, zero, zero, zero};
    size_t m = pb->m, j = 0;
    while (j < m) { /* blocks of 256, Z compensated across blocks */
        drpo_v4d block = zero;
        size_t end = j + 256 < m ? j + 256 : m;
        for (; j < end; j += 4) {
            drpo_v4d d, p, w;
            drpo__v4_units(pb, j, end, uniform, 0, &d, &p); /* padded lanes: no mass */
            if (precise) {
                drpo_v4d e1 = drpo__v4_expm1_small(nu * d);
                s.em1 += p * e1;
                w = p * (1.0 + e1);
            } else {
                w = p * drpo__v4_exp_nonpos(nu * d);
            }
            if (store && j + 4 <= end)
                drpo__v4_store(store + j, w);
            else if (store)
                for (size_t l = 0; j + l < end; l++)
                    store[j + l] = w[l];
            drpo_v4d wd = w * d;
            block += w;
            s.s1 += wd;
            s.s2 += wd * d;
            s.s3 += (wd * d) * d;
        }
        drpo__v4_ksum_add(&s.z_s, &s.z_c, block);
    }
    return s;
}

#define KL_KERNEL(name, uniform, precise)                                                    \
    DRPO__KERNEL_DISPATCH(kl_sums, name, (const drpo_problem *pb, double u, double *store),   \
                          (pb, u, store), kl_body(pb, u, store, uniform, precise))
KL_KERNEL(kl_uniform, 1, 0)
KL_KERNEL(kl_weighted, 0, 0)
KL_KERNEL(kl_uniform_precise, 1, 1)
KL_KERNEL(kl_weighted_precise, 0, 1)

/* One pass at inverse temperature u; with `store`, the weights are kept in
 * the view's store for the last pass. */
static kl_eval kl_evaluate(const kl_view *v, double u, int store)
{
    double z = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0, em1 = 0.0;
    kl_eval e;
    e.precise = u * v->d_max < 0.5; /* Z near 1: log1p of an expm1 sum keeps log Z exact */
    e.stored = store && v->pb && v->store;
    double *to = e.stored ? v->store : NULL;
    const drpo_problem *pb = v->pb;
    if (!pb) { /* a sample of pairs */
        drpo_bsum zb = {{0.0, 0.0}, 0.0, 0};
        for (size_t j = 0; j < v->m; j++) {
            double dj = v->pairs[j].d, pj = v->pairs[j].p;
            double e1 = e.precise ? expm1(-u * dj) : 0.0;
            double wj = e.precise ? pj * (1.0 + e1)
                                  : pj * drpo__v4_exp_nonpos(drpo__v4_set1(-u * dj))[0];
            em1 += pj * e1;
            drpo__bsum_add(&zb, wj);
            s1 += wj * dj;
            s2 += wj * dj * dj;
            s3 += wj * dj * dj * dj;
        }
        z = drpo__bsum_value(&zb);
    } else {
        kl_sums s = e.precise ? (pb->uniform ? kl_uniform_precise(pb, u, to)
                                             : kl_weighted_precise(pb, u, to))
                              : (pb->uniform ? kl_uniform(pb, u, to) : kl_weighted(pb, u, to));
        z = drpo__v4_ksum_total(s.z_s, s.z_c);
        s1 = drpo__v4_hsum(s.s1);
        s2 = drpo__v4_hsum(s.s2);
        s3 = drpo__v4_hsum(s.s3);
        em1 = drpo__v4_hsum(s.em1);
    }
    e.z = z;
    e.log_z = e.precise && z >= 0.5 ? log1p(em1) : log(z);
    e.mean = s1 / z;
    e.var = s2 / z - e.mean * e.mean;
    e.skew = s3 / z - 3.0 * e.mean * (s2 / z) + 2.0 * e.mean * e.mean * e.mean;
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
    kl_view v = {pb, pb->scratch, NULL, pb->m, pb->d_max, 0.0};
    kl_eval e = kl_evaluate(&v, u, 1);
    kl_rule(sol, u, &e, &v);
    sol->value = lambda * e.log_z;
    sol->eta = -sol->value; /* mu = lambda log E_p exp(l / lambda), in gaps */
    return DRPO_OK;
}

/* Safeguarded Newton on KL(q_u || p) = rho over u, from u, until
 * |KL - rho| <= tol.  Returns the
 * iterations, 0 when rho is out of reach of every finite u (the argmax set
 * is then the answer), -1 when it does not converge.  *e is the evaluation
 * at the returned *u; w (m doubles) holds its weights. */
/* The smallest positive gap, found on the first call (a pass). */
static double smallest_gap(kl_view *v)
{
    if (v->d_min < 0.0) {
        v->d_min = INFINITY;
        for (size_t j = 0; j < v->m; j++) {
            double d = v->pb ? drpo__gap(v->pb, j) : v->pairs[j].d;
            if (d > 0.0 && d < v->d_min)
                v->d_min = d;
        }
    }
    return v->d_min;
}

static int kl_newton(kl_view *v, double rho, double tol, double *u_io, kl_eval *e)
{
    double u = *u_io, lo = 0.0, hi = INFINITY; /* KL(lo) < rho < KL(hi) */
    int store = 0; /* keep the weights once the steps say this pass is likely the last */
    for (int it = 1; it <= 400; it++) {
        *e = kl_evaluate(v, u, store);
        *u_io = u;
        double f = kl_of(u, e) - rho;
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
        /* Halley: f' = u Var, f'' = Var - u skew; cubic convergence takes
         * the sampled start to the tolerance in two full passes */
        double f1 = u * e->var, f2 = e->var - u * e->skew, den = 2.0 * f1 * f1 - f * f2;
        double next = den > 0.0 ? u - 2.0 * f * f1 / den : u - f / f1;
        if (!(next > lo && next < hi) || !isfinite(next)) {
            if (isinf(hi))
                next = u * 64.0;
            else if (lo == 0.0 || hi > 4.0 * lo)
                next = lo == 0.0 ? hi / 4.0 : sqrt(lo * hi);
            else
                next = 0.5 * (lo + hi);
        }
        store = fabs(next - u) <= 1e-4 * u; /* Halley from here lands within ~1e-12 */
        u = next;
    }
    return -1;
}

/* A starting temperature: from a sample of the gaps when there are many
 * (a Newton solve on 8192 of them lands within a few per cent), else from
 * the small-radius expansion KL ~ u^2 Var_p(d) / 2. */
static double kl_start(const drpo_problem *pb, const kl_view *full, double rho)
{
    size_t m = pb->m, s = 8192;
    if (m >= 8 * s) {
        double mass = 0.0, d_max = 0.0, d_min = INFINITY;
        for (size_t i = 0; i < s; i++) { /* one gap from each of s strata */
            size_t j = i * m / s + (size_t)((i * 0x9E3779B97F4A7C15ull) >> 40) % (m / s);
            pb->pairs[i].d = drpo__gap(pb, j);
            pb->pairs[i].p = drpo__mass(pb, j);
            mass += drpo__mass(pb, j);
            d_max = fmax(d_max, drpo__gap(pb, j));
            if (drpo__gap(pb, j) > 0.0)
                d_min = fmin(d_min, drpo__gap(pb, j));
        }
        for (size_t i = 0; i < s; i++)
            pb->pairs[i].p /= mass;
        kl_view sv = {NULL, NULL, pb->pairs, s, d_max, d_min};
        double u = 1.0 / (full->d_max > 0.0 ? full->d_max : 1.0);
        kl_eval e;
        if (kl_newton(&sv, rho, 1e-4 * rho, &u, &e) > 0 && u > 0.0 && isfinite(u))
            return u;
    }
    double var_p = 0.0;
    for (size_t j = 0; j < m; j++) {
        double c = drpo__gap(pb, j) - pb->mean_d;
        var_p += drpo__mass(pb, j) * c * c;
    }
    double u = var_p > 0.0 ? sqrt(2.0 * rho / var_p) : 1.0;
    return u > 0.0 && isfinite(u) ? u : 1.0;
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
    kl_view v = {pb, pb->scratch, NULL, pb->m, pb->d_max, -1.0}; /* d_min when needed */
    double u = kl_start(pb, &v, rho);
    kl_eval e;
    /* |KL - rho| <= 1e-10 rho keeps q well inside the contract's 1e-9 and
     * moves the value by lambda times that; quadratic convergence gets there
     * in three or four passes from the sampled start */
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
    sol->iterations = it;
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
                                   kl_solve, kl_divergence};

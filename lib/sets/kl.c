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

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* exp(x) for x <= 0 in straight-line code the compiler can pipeline and
 * vectorise: x = k ln2 + r with |r| <= ln2/2, a degree-13 Taylor polynomial
 * for exp(r) (truncation below 1e-17 relative), and 2^k from its exponent
 * bits.  Below -708 the result (< 1e-307) is flushed to 0: such a weight is
 * negligible beside the argmax set's exp(0) = 1.  Two lanes with the
 * compiler's vector extensions (one SSE2 register on a baseline x86-64
 * build); the scalar form uses one lane. */
typedef double v2df __attribute__((vector_size(16)));
typedef int64_t v2di __attribute__((vector_size(16)));

static inline v2df exp_nonpos2(v2df x)
{
    const v2df floor = {-708.0, -708.0}, shifter = {0x1.8p52, 0x1.8p52};
    v2di under = x < floor;
    v2df xc = (v2df)(((v2di)x & ~under) | ((v2di)floor & under));
    v2df t = xc * 1.4426950408889634 + shifter, kd = t - shifter;
    v2df r = (xc - kd * 6.93147180369123816490e-01) - kd * 1.90821492927058770002e-10;
    v2df p = r * (1.0 / 6227020800.0) + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    v2di bits = ((v2di)t << 52) + ((int64_t)1023 << 52);
    v2df y = p * (v2df)bits;
    return (v2df)((v2di)y & ~under);
}

static inline double exp_nonpos(double x)
{
    v2df v = {x, x};
    return exp_nonpos2(v)[0];
}

/* The gaps and masses a Newton iteration runs over: the problem's arrays
 * (stride 1) or a sample of (d, p) pairs (stride 2). */
typedef struct kl_view {
    const double *x, *p; /* gap j: top - x[j * stride] * down (drpo__gap) */
    double top, down;
    size_t m, stride;
    double d_max, d_min; /* largest gap; smallest positive gap */
} kl_view;

typedef struct kl_eval {
    double log_z; /* log sum p exp(-u d) */
    double mean;  /* E_q[d] */
    double var;   /* Var_q(d), for the Newton step only */
} kl_eval;

/* One pass at inverse temperature u; the unnormalised weights p exp(-u d)
 * go to w (m doubles of scratch). */
static kl_eval kl_evaluate(const kl_view *v, double u, double *restrict w)
{
    const double *restrict x = v->x, *restrict p = v->p;
    const double top = v->top, down = v->down;
    size_t m = v->m, s = v->stride;
    double z = 0.0, s1 = 0.0, s2 = 0.0, em1 = 0.0;
    int precise = u * v->d_max < 0.5; /* Z near 1: log1p of an expm1 sum keeps log Z exact */
    if (precise) {
        for (size_t j = 0; j < m; j++) {
            double dj = top - x[j * s] * down, e1 = expm1(-u * dj), wj = p[j * s] * (1.0 + e1);
            em1 += p[j * s] * e1;
            z += wj;
            s1 += wj * dj;
            s2 += wj * dj * dj;
            w[j] = wj;
        }
    } else if (s == 1) {
        v2df za = {0}, zb = {0}, a1 = {0}, b1 = {0}, a2 = {0}, b2 = {0}, nu = {-u, -u};
        v2df vt = {top, top}, vd = {down, down};
        size_t j = 0;
        for (; j + 4 <= m; j += 4) { /* two independent lanes pairs for the pipeline */
            v2df da, db, pa, pb2;
            memcpy(&da, x + j, sizeof da);
            memcpy(&db, x + j + 2, sizeof db);
            da = vt - da * vd;
            db = vt - db * vd;
            memcpy(&pa, p + j, sizeof pa);
            memcpy(&pb2, p + j + 2, sizeof pb2);
            v2df wa = pa * exp_nonpos2(nu * da), wb = pb2 * exp_nonpos2(nu * db);
            za += wa;
            zb += wb;
            a1 += wa * da;
            b1 += wb * db;
            a2 += wa * da * da;
            b2 += wb * db * db;
            memcpy(w + j, &wa, sizeof wa);
            memcpy(w + j + 2, &wb, sizeof wb);
        }
        v2df vz = za + zb, v1 = a1 + b1, v2 = a2 + b2;
        z = vz[0] + vz[1];
        s1 = v1[0] + v1[1];
        s2 = v2[0] + v2[1];
        for (; j < m; j++) {
            double dj = top - x[j] * down, wj = p[j] * exp_nonpos(-u * dj);
            z += wj;
            s1 += wj * dj;
            s2 += wj * dj * dj;
            w[j] = wj;
        }
    } else {
        for (size_t j = 0; j < m; j++) {
            double dj = top - x[j * s] * down, wj = p[j * s] * exp_nonpos(-u * dj);
            z += wj;
            s1 += wj * dj;
            s2 += wj * dj * dj;
            w[j] = wj;
        }
    }
    kl_eval e;
    e.log_z = precise && z >= 0.5 ? log1p(em1) : log(z);
    e.mean = s1 / z;
    e.var = s2 / z - e.mean * e.mean;
    return e;
}

static double kl_of(double u, const kl_eval *e) { return -u * e->mean - e->log_z; }

static drpo_status kl_penalty(const drpo_problem *pb, drpo_solution *sol)
{
    double lambda = pb->param;
    sol->has_lambda = 1;
    sol->has_eta = 1;
    sol->lambda = lambda;
    sol->iterations = 1;
    double u = lambda > 0.0 ? 1.0 / lambda : INFINITY;
    if (pb->p_top >= 1.0 || isinf(u)) { /* lambda 0 (or too small for 1/lambda) */
        drpo__q_on_top(pb, sol);
        sol->eta = 0.0;
        return DRPO_OK;
    }
    kl_view v = {pb->x, pb->p, pb->top, pb->down, pb->m, 1, pb->d_max, 0.0};
    kl_eval e = kl_evaluate(&v, u, pb->q);
    sol->value = lambda * e.log_z;
    sol->eta = -sol->value; /* mu = lambda log E_p exp(l / lambda), in gaps */
    return DRPO_OK;
}

/* Safeguarded Newton on KL(q_u || p) = rho over u, from u, until
 * |KL - rho| <= tol.  Returns the
 * iterations, 0 when rho is out of reach of every finite u (the argmax set
 * is then the answer), -1 when it does not converge.  *e is the evaluation
 * at the returned *u; w (m doubles) holds its weights. */
static int kl_newton(const kl_view *v, double rho, double tol, double *u_io, kl_eval *e,
                     double *w)
{
    double u = *u_io, lo = 0.0, hi = INFINITY; /* KL(lo) < rho < KL(hi) */
    for (int it = 1; it <= 400; it++) {
        *e = kl_evaluate(v, u, w);
        *u_io = u;
        double f = kl_of(u, e) - rho;
        if (fabs(f) <= tol)
            return it;
        if (f < 0)
            lo = u;
        else
            hi = u;
        if (isinf(hi) && u * v->d_min > 1500.0)
            return 0; /* every weight off the argmax set is below 1e-650 */
        if (!isinf(hi) && hi - lo <= 4.0 * DBL_EPSILON * hi)
            return it;
        double next = u - f / (u * e->var);
        if (!(next > lo && next < hi) || !isfinite(next)) {
            if (isinf(hi))
                next = u * 64.0;
            else if (lo == 0.0 || hi > 4.0 * lo)
                next = lo == 0.0 ? hi / 4.0 : sqrt(lo * hi);
            else
                next = 0.5 * (lo + hi);
        }
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
            pb->pairs[i].p = pb->p[j];
            mass += pb->p[j];
            d_max = fmax(d_max, drpo__gap(pb, j));
            if (drpo__gap(pb, j) > 0.0)
                d_min = fmin(d_min, drpo__gap(pb, j));
        }
        for (size_t i = 0; i < s; i++)
            pb->pairs[i].p /= mass;
        kl_view sv = {&pb->pairs[0].d, &pb->pairs[0].p, 0.0, -1.0, s, 2, d_max, d_min};
        double u = 1.0 / (full->d_max > 0.0 ? full->d_max : 1.0);
        kl_eval e;
        if (kl_newton(&sv, rho, 1e-4 * rho, &u, &e, pb->q) > 0 && u > 0.0 && isfinite(u))
            return u;
    }
    double var_p = 0.0;
    for (size_t j = 0; j < m; j++) {
        double c = drpo__gap(pb, j) - pb->mean_d;
        var_p += pb->p[j] * c * c;
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
        drpo__q_on_top(pb, sol);
        sol->lambda = 0.0;
        sol->eta = 0.0;
        sol->tight = pb->p_top < 1.0 && rho == -log(pb->p_top);
        return DRPO_OK;
    }
    double d_min = INFINITY; /* smallest positive gap */
    for (size_t j = 0; j < pb->m; j++)
        if (drpo__gap(pb, j) > 0.0 && drpo__gap(pb, j) < d_min)
            d_min = drpo__gap(pb, j);
    kl_view v = {pb->x, pb->p, pb->top, pb->down, pb->m, 1, pb->d_max, d_min};
    double u = kl_start(pb, &v, rho);
    kl_eval e;
    /* |KL - rho| <= 1e-10 rho keeps q well inside the contract's 1e-9 and
     * moves the value by lambda times that; quadratic convergence gets there
     * in three or four passes from the sampled start */
    int it = kl_newton(&v, rho, 1e-10 * rho + 1e-15, &u, &e, pb->q);
    if (it < 0)
        return DRPO_ERR_NUMERICAL;
    if (it == 0) { /* rho sits within rounding of -log p_top */
        drpo__q_on_top(pb, sol);
        sol->lambda = 0.0;
        sol->eta = 0.0;
        return DRPO_OK;
    }
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

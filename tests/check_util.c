/* check_util.c - solution checks shared by the suites, computed directly from
 * the definitions (no code shared with the library). */
#include "check_util.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

double tu_divergence(int32_t set, size_t n, const double *q, const double *p)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == 0.0)
            continue;
        double r = q[i] / p[i];
        switch (set) {
        case DRPO_SET_KL: /* sum q log(q/p) - q + p: the same when both sum to 1, but
                             never below 0 and accurate when q is near p */
            if (q[i] > 0.0)
                s += q[i] * (fabs(r - 1.0) < 0.5 ? log1p((q[i] - p[i]) / p[i]) : log(r));
            s -= q[i] - p[i];
            break;
        case DRPO_SET_CHI2: s += 0.5 * p[i] * (r - 1.0) * (r - 1.0); break;
        case DRPO_SET_TV: s += 0.5 * fabs(q[i] - p[i]); break;
        case DRPO_SET_CVAR: s = r > s ? r : s; break;
        default: break;
        }
    }
    return s;
}

/* Neumaier's compensated sum of q: the check of sum q = 1 within 1e-12 must
 * not be spoiled by its own rounding when n is large. */
static double sum_of(size_t n, const double *q)
{
    double s = 0.0, c = 0.0;
    for (size_t i = 0; i < n; i++) {
        double t = s + q[i];
        c += fabs(s) >= fabs(q[i]) ? (s - t) + q[i] : (q[i] - t) + s;
        s = t;
    }
    return s + c;
}

double tu_value_tol(double value, size_t n, const double *loss)
{
    double m = 1.0;
    if (fabs(value) > m)
        m = fabs(value);
    for (size_t i = 0; i < n; i++)
        if (fabs(loss[i]) > m)
            m = fabs(loss[i]);
    return 1e-8 * m;
}

const char *tu_check_solution(int32_t set, int form_key, double param, size_t n,
                              const double *loss, const double *p, const double *q,
                              double value)
{
    double lin = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (!(q[i] >= 0.0))
            return "negative or NaN weight";
        if (p[i] == 0.0 && q[i] != 0.0)
            return "weight off the support of the base";
        lin += q[i] * loss[i];
    }
    if (fabs(sum_of(n, q) - 1.0) > 1e-12)
        return "weights do not sum to 1 within 1e-12";
    double div = tu_divergence(set, n, q, p);
    if (form_key == DRPO_PARAM_RADIUS && div > param * (1 + 1e-9) + 1e-12)
        return "divergence exceeds the radius";
    if (form_key == DRPO_PARAM_LEVEL && div > (1.0 / param) * (1 + 1e-12))
        return "CVaR cap q <= p / alpha violated";
    double attained = lin - (form_key == DRPO_PARAM_PENALTY ? param * div : 0.0);
    if (fabs(attained - value) > tu_value_tol(value, n, loss))
        return "q does not attain the value";
    return 0;
}

/* ---- shared by the property suites ------------------------------------- */

const tu_form tu_forms[] = {
    {DRPO_SET_NONE, 0, "none"},
    {DRPO_SET_KL, DRPO_PARAM_RADIUS, "kl radius"},
    {DRPO_SET_KL, DRPO_PARAM_PENALTY, "kl penalty"},
    {DRPO_SET_CHI2, DRPO_PARAM_RADIUS, "chi2 radius"},
    {DRPO_SET_CHI2, DRPO_PARAM_PENALTY, "chi2 penalty"},
    {DRPO_SET_CVAR, DRPO_PARAM_LEVEL, "cvar level"},
    {DRPO_SET_TV, DRPO_PARAM_RADIUS, "tv radius"},
    {DRPO_SET_TV, DRPO_PARAM_PENALTY, "tv penalty"},
};
const size_t tu_nforms = sizeof tu_forms / sizeof tu_forms[0];

size_t tu_params(const tu_form *f, double *out)
{
    static const double radius[] = {0.0, 0.01, 0.1, 0.5, 1.0, 3.0};
    static const double penalty[] = {0.0, 0.05, 0.3, 1.0, 5.0, 100.0};
    static const double level[] = {1.0, 0.9, 0.5, 0.37, 0.2, 0.05, 1e-3};
    static const double tv_radius[] = {0.0, 0.05, 0.2, 0.5, 0.9, 1.0};
    const double *src = radius;
    size_t k = sizeof radius / sizeof radius[0];
    if (f->key == 0) {
        out[0] = 0.0;
        return 1;
    }
    if (f->key == DRPO_PARAM_PENALTY) {
        src = penalty;
        k = sizeof penalty / sizeof penalty[0];
    } else if (f->key == DRPO_PARAM_LEVEL) {
        src = level;
        k = sizeof level / sizeof level[0];
    } else if (f->set == DRPO_SET_TV) {
        src = tv_radius;
        k = sizeof tv_radius / sizeof tv_radius[0];
    }
    memcpy(out, src, k * sizeof *out);
    return k;
}

void tu_rng_seed(tu_rng *r, uint64_t seed) { r->s = seed * 0x9E3779B97F4A7C15ull + 1; }

static uint64_t rng_next(tu_rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double tu_unif(tu_rng *r) { return (double)(rng_next(r) >> 11) * 0x1.0p-53; }

size_t tu_below(tu_rng *r, size_t k) { return (size_t)(rng_next(r) % k); }

void tu_random_losses(tu_rng *r, size_t n, int ties, double *loss)
{
    static const double few[] = {-2.0, -0.5, 0.0, 1.25, 3.0};
    for (size_t i = 0; i < n; i++) /* multiples of 2^-30: shifts by such a c are exact */
        loss[i] = ties ? few[tu_below(r, 5)] : ldexp(floor(ldexp(6.0 * tu_unif(r) - 3.0, 30)), -30);
}

void tu_random_base(tu_rng *r, size_t n, int zeros, double *p)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        p[i] = zeros && tu_unif(r) < 0.35 ? 0.0 : 0.05 + tu_unif(r);
        s += p[i];
    }
    if (s == 0.0) {
        p[tu_below(r, n)] = 1.0;
        s = 1.0;
    }
    for (size_t i = 0; i < n; i++)
        p[i] /= s;
}

void tu_uniform_base(size_t n, double *p)
{
    for (size_t i = 0; i < n; i++)
        p[i] = 1.0 / (double)n;
}

void tu_random_simplex(tu_rng *r, size_t n, const double *p, double *q)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        q[i] = p[i] > 0.0 ? -log(1.0 - tu_unif(r)) : 0.0;
        s += q[i];
    }
    if (!(s > 0.0)) { /* all draws zero: put everything on one unit of the support */
        for (size_t i = 0; i < n; i++)
            q[i] = 0.0;
        for (size_t i = 0; i < n; i++)
            if (p[i] > 0.0) {
                q[i] = 1.0;
                return;
            }
    }
    for (size_t i = 0; i < n; i++)
        q[i] /= s;
}

drpo_status tu_solve(int32_t set, int32_t key, double param, size_t n, const double *loss,
                     const double *base, double *q, double *value)
{
    drpo_objective *obj = NULL;
    drpo_status st = drpo_objective_create(&obj, set);
    if (st == DRPO_OK && set != DRPO_SET_NONE)
        st = drpo_objective_set(obj, key, param);
    if (st == DRPO_OK)
        st = drpo_objective_solve(obj, n, loss, base, q, value);
    drpo_objective_free(obj);
    return st;
}

const char *tu_solve_and_check(int32_t set, int32_t key, double param, size_t n,
                               const double *loss, const double *p, int uniform, double *q,
                               double *value)
{
    static char msg[256];
    *value = NAN;
    drpo_status st = tu_solve(set, key, param, n, loss, uniform ? NULL : p, q, value);
    if (st != DRPO_OK) {
        snprintf(msg, sizeof msg, "status %d (%s)", (int)st, drpo_status_string(st));
        return msg;
    }
    const char *why = tu_check_solution(set, key, param, n, loss, p, q, *value);
    if (why)
        return why;
    double ref = tu_reference_value(set, key, param, n, loss, p);
    if (!(fabs(*value - ref) <= tu_value_tol(*value, n, loss))) {
        snprintf(msg, sizeof msg, "value %.17g, independent dual reference %.17g", *value, ref);
        return msg;
    }
    return NULL;
}

const char *tu_describe(size_t n, const double *loss, const double *p)
{
    static char buf[640];
    size_t k = n < 6 ? n : 6, len = 0;
    len += (size_t)snprintf(buf + len, sizeof buf - len, "n=%zu loss=[", n);
    for (size_t i = 0; i < k; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, " %.17g", loss[i]);
    len += (size_t)snprintf(buf + len, sizeof buf - len, " ] p=[");
    for (size_t i = 0; i < k; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, " %.17g", p[i]);
    snprintf(buf + len, sizeof buf - len, " ]");
    return buf;
}

double tu_objective(int32_t set, int32_t key, double param, size_t n, const double *loss,
                    const double *p, const double *q)
{
    double lin = 0.0;
    for (size_t i = 0; i < n; i++)
        lin += q[i] * loss[i];
    if (key == DRPO_PARAM_PENALTY && param > 0.0)
        lin -= param * tu_divergence(set, n, q, p);
    return lin;
}

int tu_feasible(int32_t set, int32_t key, double param, size_t n, const double *p,
                const double *q)
{
    for (size_t i = 0; i < n; i++)
        if (!(q[i] >= 0.0) || (p[i] == 0.0 && q[i] != 0.0))
            return 0;
    if (fabs(sum_of(n, q) - 1.0) > 1e-12)
        return 0;
    double div = tu_divergence(set, n, q, p);
    if (key == DRPO_PARAM_RADIUS)
        return div <= param * (1 + 1e-9) + 1e-12;
    if (key == DRPO_PARAM_LEVEL)
        return div <= (1.0 / param) * (1 + 1e-12);
    return 1;
}

void tu_pull_into_ball(int32_t set, double rho, size_t n, const double *p, double *q)
{
    if (tu_divergence(set, n, q, p) <= rho)
        return;
    double *dir = malloc(n * sizeof *dir), lo = 0.0, hi = 1.0;
    for (size_t i = 0; i < n; i++)
        dir[i] = q[i] - p[i];
    for (int it = 0; it < 60; it++) {
        double s = 0.5 * (lo + hi);
        for (size_t i = 0; i < n; i++)
            q[i] = p[i] + s * dir[i];
        if (tu_divergence(set, n, q, p) <= rho)
            lo = s;
        else
            hi = s;
    }
    for (size_t i = 0; i < n; i++)
        q[i] = p[i] + lo * dir[i];
    free(dir);
}

double tu_mean(size_t n, const double *loss, const double *p)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += p[i] * loss[i];
    return s;
}

double tu_max_loss(size_t n, const double *loss, const double *p)
{
    double m = -INFINITY;
    for (size_t i = 0; i < n; i++)
        if (p[i] > 0.0 && loss[i] > m)
            m = loss[i];
    return m;
}

double tu_top_mass(size_t n, const double *loss, const double *p)
{
    double m = tu_max_loss(n, loss, p), s = 0.0;
    for (size_t i = 0; i < n; i++)
        if (p[i] > 0.0 && loss[i] == m)
            s += p[i];
    return s;
}

double tu_ulps(double y, double ref)
{
    if (y == ref)
        return 0.0;
    int e;
    frexp(fmax(fabs(ref), DBL_MIN), &e);
    return fabs(y - ref) / ldexp(1.0, e - 53);
}

/* ---- the independent reference optimum --------------------------------- */

/* The support, losses scaled by a power of two into [-1, 1). */
typedef struct ref_pb {
    size_t m;
    double *x, *p;
    double xmax, xmin, mean, var, ptop;
} ref_pb;

typedef double (*ref_dual_fn)(const ref_pb *pb, double prm, double t);

/* min of a unimodal function on [a, b]; ties move towards b. */
static double golden_min(ref_dual_fn f, const ref_pb *pb, double prm, double a, double b)
{
    const double g = 0.5 * (sqrt(5.0) - 1.0);
    double c = b - g * (b - a), d = a + g * (b - a);
    double fc = f(pb, prm, c), fd = f(pb, prm, d);
    double best = fmin(fmin(f(pb, prm, a), f(pb, prm, b)), fmin(fc, fd));
    for (int it = 0; it < 200; it++) {
        if (fc < fd) {
            b = d;
            d = c;
            fd = fc;
            c = b - g * (b - a);
            fc = f(pb, prm, c);
            best = fmin(best, fc);
        } else {
            a = c;
            c = d;
            fc = fd;
            d = a + g * (b - a);
            fd = f(pb, prm, d);
            best = fmin(best, fd);
        }
    }
    return best;
}

/* lambda log E_p exp((x - xmax) / lambda), accurate for any lambda > 0. */
static double kl_log_mgf(const ref_pb *pb, double lambda)
{
    double s = 0.0;
    for (size_t j = 0; j < pb->m; j++)
        s += pb->p[j] * expm1((pb->x[j] - pb->xmax) / lambda);
    return lambda * log1p(s);
}

/* KL radius dual in t = log lambda: lambda rho + lambda log E exp(x / lambda). */
static double kl_radius_dual(const ref_pb *pb, double rho, double t)
{
    double lambda = exp(t);
    return lambda * rho + pb->xmax + kl_log_mgf(pb, lambda);
}

static double sum_sq_excess(const ref_pb *pb, double eta)
{
    double s = 0.0;
    for (size_t j = 0; j < pb->m; j++)
        if (pb->x[j] > eta)
            s += pb->p[j] * (pb->x[j] - eta) * (pb->x[j] - eta);
    return s;
}

static double chi2_radius_dual(const ref_pb *pb, double c, double eta)
{
    return eta + c * sqrt(sum_sq_excess(pb, eta));
}

static double chi2_penalty_dual(const ref_pb *pb, double lambda, double eta)
{
    return eta + 0.5 * lambda + sum_sq_excess(pb, eta) / (2.0 * lambda);
}

static int by_x_desc(const void *a, const void *b)
{
    double x = ((const double *)a)[0], y = ((const double *)b)[0];
    return x > y ? -1 : x < y;
}

/* The piecewise-linear duals (CVaR, TV radius) are minimised at a loss value:
 * scan them all with prefix sums, then evaluate the best directly. */
static double cvar_dual(const ref_pb *pb, double alpha, double eta)
{
    double s = 0.0;
    for (size_t j = 0; j < pb->m; j++)
        if (pb->x[j] > eta)
            s += pb->p[j] * (pb->x[j] - eta);
    return eta + s / alpha;
}

static double tv_radius_dual(const ref_pb *pb, double rho, double eta)
{
    double s = 0.0;
    for (size_t j = 0; j < pb->m; j++)
        s += pb->p[j] * fmax(pb->x[j], eta);
    return (pb->xmax - eta) * rho + s;
}

static double breakpoint_min(ref_dual_fn f, const ref_pb *pb, double prm)
{
    double *xp = malloc(2 * pb->m * sizeof *xp);
    for (size_t j = 0; j < pb->m; j++) {
        xp[2 * j] = pb->x[j];
        xp[2 * j + 1] = pb->p[j];
    }
    qsort(xp, pb->m, 2 * sizeof *xp, by_x_desc);
    double a = 0.0, b = 0.0, best = INFINITY, best_eta = pb->xmax;
    for (size_t k = 0; k < pb->m; k++) {
        double eta = xp[2 * k];
        double v = f == cvar_dual ? eta + (b - eta * a) / prm
                                  : (pb->xmax - eta) * prm + b + eta * (1.0 - a);
        if (v < best) {
            best = v;
            best_eta = eta;
        }
        a += xp[2 * k + 1];
        b += xp[2 * k + 1] * xp[2 * k];
    }
    free(xp);
    return f(pb, prm, best_eta);
}

static double ref_scaled(const ref_pb *pb, int32_t set, int32_t key, double prm)
{
    if (pb->xmin == pb->xmax) /* all equal: the mean's rounding would make a variance */
        return pb->xmax;
    switch (set) {
    case DRPO_SET_CVAR: return breakpoint_min(cvar_dual, pb, prm);
    case DRPO_SET_TV:
        if (key == DRPO_PARAM_RADIUS)
            return breakpoint_min(tv_radius_dual, pb, prm);
        return tv_radius_dual(pb, 0.0, pb->xmax - prm);
    case DRPO_SET_KL:
        if (key == DRPO_PARAM_PENALTY)
            return prm == 0.0 ? pb->xmax : pb->xmax + kl_log_mgf(pb, prm);
        if (prm == 0.0)
            return pb->mean;
        if (pb->ptop >= 1.0 || prm >= -log(pb->ptop))
            return pb->xmax;
        return fmin(pb->xmax, golden_min(kl_radius_dual, pb, prm, log(1e-30), log(1e30)));
    case DRPO_SET_CHI2:
        if (key == DRPO_PARAM_PENALTY) {
            if (prm == 0.0)
                return pb->xmax;
            if (pb->mean - prm <= pb->xmin) /* the stationary point has every unit active */
                return pb->mean + pb->var / (2.0 * prm);
            return fmin(pb->xmax + 0.5 * prm,
                        golden_min(chi2_penalty_dual, pb, prm, pb->xmin, pb->xmax));
        }
        if (prm == 0.0 || pb->var == 0.0)
            return pb->mean;
        if (pb->mean - sqrt(pb->var / (2.0 * prm)) <= pb->xmin)
            return pb->mean + sqrt(2.0 * prm * pb->var);
        return golden_min(chi2_radius_dual, pb, sqrt(1.0 + 2.0 * prm), pb->xmin, pb->xmax);
    default: return pb->mean;
    }
}

double tu_reference_value(int32_t set, int32_t key, double param, size_t n, const double *loss,
                          const double *p)
{
    ref_pb pb;
    memset(&pb, 0, sizeof pb);
    pb.x = malloc(n * sizeof *pb.x);
    pb.p = malloc(n * sizeof *pb.p);
    double mag = 0.0, psum = 0.0;
    for (size_t i = 0; i < n; i++)
        if (p[i] > 0.0) {
            mag = fmax(mag, fabs(loss[i]));
            psum += p[i];
        }
    int e = 0;
    if (mag > 0.0)
        frexp(mag, &e);
    pb.xmax = -INFINITY;
    pb.xmin = INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (!(p[i] > 0.0))
            continue;
        pb.x[pb.m] = ldexp(loss[i], -e);
        pb.p[pb.m] = p[i] / psum;
        pb.xmax = fmax(pb.xmax, pb.x[pb.m]);
        pb.xmin = fmin(pb.xmin, pb.x[pb.m]);
        pb.mean += pb.p[pb.m] * pb.x[pb.m];
        pb.m++;
    }
    for (size_t j = 0; j < pb.m; j++) {
        double c = pb.x[j] - pb.mean;
        pb.var += pb.p[j] * c * c;
        if (pb.x[j] == pb.xmax)
            pb.ptop += pb.p[j];
    }
    double prm = param;
    if (key == DRPO_PARAM_PENALTY) {
        prm = ldexp(param, -e);
        if (isinf(prm))
            prm = DBL_MAX;
    }
    double v = ref_scaled(&pb, set, key, prm);
    free(pb.x);
    free(pb.p);
    return ldexp(v, e);
}

/* ---- outputs and allocation -------------------------------------------- */

static const uint64_t sentinel_bits = 0x7FF8DEADBEEF1234ull;

void tu_fill_sentinel(double *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        memcpy(&x[i], &sentinel_bits, sizeof x[i]);
}

int tu_is_sentinel(const double *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(&x[i], &sentinel_bits, sizeof x[i]) != 0)
            return 0;
    return 1;
}

static void *count_malloc(void *user, size_t size)
{
    tu_alloc_stats *st = user;
    st->mallocs++;
    if (st->fail_at > 0 && st->mallocs == st->fail_at)
        return NULL;
    void *ptr = malloc(size);
    if (ptr)
        st->live++;
    return ptr;
}

static void *count_realloc(void *user, void *ptr, size_t size)
{
    tu_alloc_stats *st = user;
    st->reallocs++;
    if (st->fail_at > 0 && st->mallocs + st->reallocs == st->fail_at)
        return NULL;
    void *out = realloc(ptr, size);
    if (out && !ptr)
        st->live++;
    return out;
}

static void count_free(void *user, void *ptr)
{
    tu_alloc_stats *st = user;
    if (ptr) {
        st->frees++;
        st->live--;
    }
    free(ptr);
}

drpo_allocator tu_counting_allocator(tu_alloc_stats *st)
{
    drpo_allocator a;
    a.struct_size = sizeof a;
    a.malloc_fn = count_malloc;
    a.realloc_fn = count_realloc;
    a.free_fn = count_free;
    a.user = st;
    return a;
}

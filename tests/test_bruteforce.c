/* test_bruteforce.c - tiny problems (n = 1..5: random losses with ties and
 * mixed signs, uniform and random bases with zero entries) solved without the
 * library: every vertex of the linear programs (CVaR, TV), and a grid plus a
 * random search over the simplex for KL and chi-square.  The library's q must
 * be feasible and attain its value, and no feasible q may beat it. */
#include "check_util.h"
#include "suites.h"

#include <math.h>

#define MAXN 5
#define MAXROWS (MAXN + (1 << MAXN))

typedef struct bf_case {
    size_t n;
    int uniform;
    double loss[MAXN], p[MAXN];
} bf_case;

static void draw_case(tu_rng *r, size_t n, bf_case *c)
{
    c->n = n;
    tu_random_losses(r, n, (int)tu_below(r, 2), c->loss);
    c->uniform = tu_below(r, 3) == 0;
    if (c->uniform)
        tu_uniform_base(n, c->p);
    else
        tu_random_base(r, n, (int)tu_below(r, 2), c->p);
}

/* The library's solution, checked for status, feasibility, attainment and
 * against the dual reference. */
static double solve_case(const bf_case *c, int32_t set, int32_t key, double prm, double *q)
{
    double v;
    const char *why = tu_solve_and_check(set, key, prm, c->n, c->loss, c->p, c->uniform, q, &v);
    ck_assert_msg(why == NULL, "set %d key %d param %g, %s: %s", (int)set, (int)key, prm,
                  tu_describe(c->n, c->loss, c->p), why);
    return v;
}

/* The support of the case: its losses and base, compacted. */
static size_t support(const bf_case *c, double *x, double *pp, size_t *idx)
{
    size_t m = 0;
    for (size_t i = 0; i < c->n; i++)
        if (c->p[i] > 0.0) {
            x[m] = c->loss[i];
            pp[m] = c->p[i];
            idx[m++] = i;
        }
    return m;
}

/* Solves the m x m system M y = r by Gaussian elimination with partial
 * pivoting; returns 0 if it is (numerically) singular. */
static int solve_square(size_t m, double M[MAXN][MAXN], double *r, double *y)
{
    for (size_t col = 0; col < m; col++) {
        size_t piv = col;
        for (size_t i = col + 1; i < m; i++)
            if (fabs(M[i][col]) > fabs(M[piv][col]))
                piv = i;
        if (fabs(M[piv][col]) < 1e-12)
            return 0;
        for (size_t j = 0; j < m; j++) {
            double t = M[col][j];
            M[col][j] = M[piv][j];
            M[piv][j] = t;
        }
        double t = r[col];
        r[col] = r[piv];
        r[piv] = t;
        for (size_t i = col + 1; i < m; i++) {
            double f = M[i][col] / M[col][col];
            for (size_t j = col; j < m; j++)
                M[i][j] -= f * M[col][j];
            r[i] -= f * r[col];
        }
    }
    for (size_t i = m; i-- > 0;) {
        double s = r[i];
        for (size_t j = i + 1; j < m; j++)
            s -= M[i][j] * y[j];
        y[i] = s / M[i][i];
    }
    return 1;
}

/* max c.y over {y in R^m : sum y = 1, A y <= b} by vertex enumeration: every
 * choice of m - 1 rows of A taken as equalities, with sum y = 1, that gives a
 * feasible point.  The polytope is bounded (y >= 0 is among the rows). */
static double lp_vertex_max(size_t m, const double *c, size_t k, double A[][MAXN],
                            const double *b)
{
    size_t pick[MAXN];
    size_t r = m - 1;
    for (size_t i = 0; i < r; i++)
        pick[i] = i;
    double best = -INFINITY;
    for (;;) {
        double M[MAXN][MAXN], rhs[MAXN], y[MAXN];
        for (size_t j = 0; j < m; j++)
            M[0][j] = 1.0;
        rhs[0] = 1.0;
        for (size_t i = 0; i < r; i++) {
            for (size_t j = 0; j < m; j++)
                M[i + 1][j] = A[pick[i]][j];
            rhs[i + 1] = b[pick[i]];
        }
        if (solve_square(m, M, rhs, y)) {
            int ok = 1;
            for (size_t row = 0; row < k && ok; row++) {
                double s = 0.0;
                for (size_t j = 0; j < m; j++)
                    s += A[row][j] * y[j];
                ok = s <= b[row] + 1e-9 * (1.0 + fabs(b[row]));
            }
            if (ok) {
                double v = 0.0;
                for (size_t j = 0; j < m; j++)
                    v += c[j] * y[j];
                if (v > best)
                    best = v;
            }
        }
        /* next combination of r rows out of k */
        size_t i = r;
        while (i > 0 && pick[i - 1] == k - r + i - 1)
            i--;
        if (i == 0)
            break;
        pick[i - 1]++;
        for (size_t j = i; j < r; j++)
            pick[j] = pick[j - 1] + 1;
    }
    return best;
}

/* Rows -y_j <= 0 for the support. */
static size_t nonneg_rows(size_t m, double A[][MAXN], double *b)
{
    for (size_t i = 0; i < m; i++) {
        for (size_t j = 0; j < m; j++)
            A[i][j] = i == j ? -1.0 : 0.0;
        b[i] = 0.0;
    }
    return m;
}

static double cvar_by_vertices(const bf_case *c, double alpha)
{
    double x[MAXN], pp[MAXN], A[MAXROWS][MAXN], b[MAXROWS];
    size_t idx[MAXN], m = support(c, x, pp, idx);
    size_t k = nonneg_rows(m, A, b);
    for (size_t i = 0; i < m; i++, k++) { /* y_i <= p_i / alpha */
        for (size_t j = 0; j < m; j++)
            A[k][j] = i == j ? 1.0 : 0.0;
        b[k] = pp[i] / alpha;
    }
    return lp_vertex_max(m, x, k, A, b);
}

static double tv_radius_by_vertices(const bf_case *c, double rho)
{
    double x[MAXN], pp[MAXN], A[MAXROWS][MAXN], b[MAXROWS];
    size_t idx[MAXN], m = support(c, x, pp, idx);
    size_t k = nonneg_rows(m, A, b);
    /* 1/2 sum |y - p| <= rho as sum s_j (y_j - p_j) <= 2 rho for every sign vector s */
    for (unsigned s = 0; s < (1u << m); s++, k++) {
        b[k] = 2.0 * rho;
        for (size_t j = 0; j < m; j++) {
            double sj = (s >> j) & 1u ? 1.0 : -1.0;
            A[k][j] = sj;
            b[k] += sj * pp[j];
        }
    }
    return lp_vertex_max(m, x, k, A, b);
}

/* TV penalty: the objective is linear where the signs of q_i - p_i are fixed,
 * so its maximum is at a point with every coordinate but one at 0 or p_i. */
static double tv_penalty_by_vertices(const bf_case *c, double lambda)
{
    double x[MAXN], pp[MAXN], best = -INFINITY;
    size_t idx[MAXN], m = support(c, x, pp, idx);
    for (size_t f = 0; f < m; f++)
        for (unsigned s = 0; s < (1u << m); s++) {
            if ((s >> f) & 1u)
                continue;
            double y[MAXN], rest = 1.0;
            for (size_t j = 0; j < m; j++)
                if (j != f) {
                    y[j] = (s >> j) & 1u ? pp[j] : 0.0;
                    rest -= y[j];
                }
            if (rest < -1e-15)
                continue;
            y[f] = fmax(rest, 0.0);
            double v = 0.0, tv = 0.0;
            for (size_t j = 0; j < m; j++) {
                v += y[j] * x[j];
                tv += 0.5 * fabs(y[j] - pp[j]);
            }
            v -= lambda * tv;
            if (v > best)
                best = v;
        }
    return best;
}

typedef double (*bf_fn)(const bf_case *c, double prm);

/* Every random case of n = 1..5 and every parameter of the form: the library's
 * value equals the brute-force optimum. */
static void vertex_check(int32_t set, int32_t key, bf_fn brute, int cases_per_n, uint64_t seed)
{
    tu_rng r;
    tu_rng_seed(&r, seed);
    tu_form f = {set, key, ""};
    double prm[TU_MAXPARAMS];
    size_t np = tu_params(&f, prm);
    for (size_t n = 1; n <= MAXN; n++)
        for (int t = 0; t < cases_per_n; t++) {
            bf_case c;
            draw_case(&r, n, &c);
            for (size_t k = 0; k < np; k++) {
                double q[MAXN];
                double v = solve_case(&c, set, key, prm[k], q);
                double best = brute(&c, prm[k]);
                ck_assert_msg(fabs(v - best) <= tu_value_tol(v, n, c.loss),
                              "set %d key %d param %g, %s: library %.17g, vertices %.17g",
                              (int)set, (int)key, prm[k], tu_describe(n, c.loss, c.p), v, best);
            }
        }
}

START_TEST(test_cvar_vertices) { vertex_check(DRPO_SET_CVAR, DRPO_PARAM_LEVEL, cvar_by_vertices, 60, 11); }
END_TEST

START_TEST(test_tv_radius_vertices)
{
    vertex_check(DRPO_SET_TV, DRPO_PARAM_RADIUS, tv_radius_by_vertices, 25, 12);
}
END_TEST

START_TEST(test_tv_penalty_vertices)
{
    vertex_check(DRPO_SET_TV, DRPO_PARAM_PENALTY, tv_penalty_by_vertices, 60, 13);
}
END_TEST

/* The smooth sets: KL and chi-square, radius and penalty. */
static const tu_form smooth_forms[] = {
    {DRPO_SET_KL, DRPO_PARAM_RADIUS, "kl radius"},
    {DRPO_SET_KL, DRPO_PARAM_PENALTY, "kl penalty"},
    {DRPO_SET_CHI2, DRPO_PARAM_RADIUS, "chi2 radius"},
    {DRPO_SET_CHI2, DRPO_PARAM_PENALTY, "chi2 penalty"},
};
#define NSMOOTH (sizeof smooth_forms / sizeof smooth_forms[0])

/* Scores a candidate q: radius forms pull it into the ball first.  Fails the
 * test if a feasible q beats the library's value v by more than tolerance. */
static void try_point(const bf_case *c, const tu_form *f, double prm, double v, double *q,
                      const char *how)
{
    if (f->key == DRPO_PARAM_RADIUS)
        tu_pull_into_ball(f->set, prm, c->n, c->p, q);
    double s = 0.0;
    for (size_t i = 0; i < c->n; i++)
        s += q[i];
    for (size_t i = 0; i < c->n; i++)
        q[i] /= s;
    if (!tu_feasible(f->set, f->key, prm, c->n, c->p, q))
        return;
    double obj = tu_objective(f->set, f->key, prm, c->n, c->loss, c->p, q);
    ck_assert_msg(obj <= v + tu_value_tol(v, c->n, c->loss),
                  "%s %g, %s: %s point q=[%g %g %g %g %g] gives %.17g > library %.17g", f->name,
                  prm, tu_describe(c->n, c->loss, c->p), how, q[0], c->n > 1 ? q[1] : 0.0,
                  c->n > 2 ? q[2] : 0.0, c->n > 3 ? q[3] : 0.0, c->n > 4 ? q[4] : 0.0, obj, v);
}

typedef void (*bf_search_fn)(tu_rng *r, const bf_case *c, const tu_form *f, double prm,
                             double v, const double *qs);

/* Random cases of n = 1..max_n for every smooth form and parameter: solve,
 * check, then let `search` look for a better feasible q than the library's qs. */
static void smooth_check(uint64_t seed, size_t max_n, int cases_per_n, bf_search_fn search)
{
    tu_rng r;
    tu_rng_seed(&r, seed);
    for (size_t fi = 0; fi < NSMOOTH; fi++) {
        const tu_form *f = &smooth_forms[fi];
        double prm[TU_MAXPARAMS];
        size_t np = tu_params(f, prm);
        for (size_t n = 1; n <= max_n; n++)
            for (int t = 0; t < cases_per_n; t++) {
                bf_case c;
                draw_case(&r, n, &c);
                for (size_t k = 0; k < np; k++) {
                    double qs[MAXN];
                    double v = solve_case(&c, f->set, f->key, prm[k], qs);
                    search(&r, &c, f, prm[k], v, qs);
                }
            }
    }
}

/* Grid over the simplex on the support (support size <= 3): N steps a side. */
static void grid_search(tu_rng *r, const bf_case *c, const tu_form *f, double prm, double v,
                        const double *qs)
{
    (void)r;
    (void)qs;
    double x[MAXN], pp[MAXN];
    size_t idx[MAXN], m = support(c, x, pp, idx);
    int N = m == 2 ? 4000 : 90;
    int a[3] = {0, 0, 0};
    for (int i0 = m == 1 ? N : 0; i0 <= N; i0++)
        for (int i1 = 0; i1 <= (m == 3 ? N - i0 : 0); i1++) {
            a[0] = i0;
            a[1] = m == 2 ? N - i0 : i1;
            a[2] = m == 3 ? N - i0 - i1 : 0;
            double q[MAXN] = {0};
            for (size_t j = 0; j < m; j++)
                q[idx[j]] = (double)a[j] / N;
            try_point(c, f, prm, v, q, "grid");
        }
}

/* Random points of the simplex, and points near the library's q (towards
 * random points and towards each vertex, at several distances). */
static void random_search(tu_rng *r, const bf_case *c, const tu_form *f, double prm, double v,
                          const double *qs)
{
    static const double steps[] = {0.5, 1e-2, 1e-3, 1e-5, 1e-7};
    size_t n = c->n;
    double q[MAXN], u[MAXN];
    for (int s = 0; s < 200; s++) {
        tu_random_simplex(r, n, c->p, q);
        try_point(c, f, prm, v, q, "random");
    }
    for (size_t si = 0; si < sizeof steps / sizeof steps[0]; si++)
        for (size_t s = 0; s < 40 + n; s++) {
            if (s < n) { /* towards vertex s, if on the support */
                if (c->p[s] == 0.0)
                    continue;
                for (size_t i = 0; i < n; i++)
                    u[i] = s == i;
            } else {
                tu_random_simplex(r, n, c->p, u);
            }
            for (size_t i = 0; i < n; i++)
                q[i] = (1.0 - steps[si]) * qs[i] + steps[si] * u[i];
            try_point(c, f, prm, v, q, "local");
        }
}

START_TEST(test_smooth_grid) { smooth_check(21, 3, 12, grid_search); }
END_TEST

START_TEST(test_smooth_random_search) { smooth_check(22, MAXN, 10, random_search); }
END_TEST

Suite *suite_bruteforce(void)
{
    Suite *s = suite_create("bruteforce");
    TCase *tc = tcase_create("vertices");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_cvar_vertices);
    tcase_add_test(tc, test_tv_radius_vertices);
    tcase_add_test(tc, test_tv_penalty_vertices);
    suite_add_tcase(s, tc);
    tc = tcase_create("smooth");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_smooth_grid);
    tcase_add_test(tc, test_smooth_random_search);
    suite_add_tcase(s, tc);
    return s;
}

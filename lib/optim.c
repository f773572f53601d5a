/* optim.c - SGD, momentum / Nesterov and AdamW with decoupled weight decay;
 * constant, warm-up and cosine schedules.  Arithmetic in double, state in
 * float32; the update is a pure function of its inputs, so a checkpointed
 * run resumes bitwise.
 *
 * The per-element arithmetic is the same on every path (no fused
 * multiply-add, the same operations in the same order), so the AVX2 loops
 * and the portable loops write bitwise the same parameters and moments.  The
 * squared norms are summed in NLANE interleaved lanes (element i in lane
 * i mod NLANE), the same on every path, then the lanes in a fixed order. */
#include "optim.h"

#include <math.h>
#include <string.h>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define DRPO_X86 1
#include <immintrin.h>
#endif

#define NLANE 8

void drpo__optim_defaults(drpo_optim_config *c)
{
    c->kind = DRPO_OPT_SGD;
    c->lr = 1e-3;
    c->momentum = 0.9;
    c->nesterov = 0;
    c->beta1 = 0.9;
    c->beta2 = 0.999;
    c->eps = 1e-8;
    c->weight_decay = 0.0;
    c->clip_norm = 0.0;
    c->schedule = DRPO_SCHED_CONSTANT;
    c->warmup = 0.0;
    c->total_steps = 0.0;
    c->min_lr = 0.0;
}

double drpo__lr_at(const drpo_optim_config *c, uint64_t step)
{
    double s = (double)step;
    if (c->schedule != DRPO_SCHED_CONSTANT && s < c->warmup)
        return c->lr * (s + 1.0) / c->warmup;
    if (c->schedule != DRPO_SCHED_COSINE)
        return c->lr;
    double span = c->total_steps - c->warmup;
    double progress = span > 0.0 ? (s - c->warmup) / span : 1.0;
    if (progress > 1.0)
        progress = 1.0;
    const double pi = 3.14159265358979323846;
    return c->lr * (c->min_lr + (1.0 - c->min_lr) * 0.5 * (1.0 + cos(pi * progress)));
}

int drpo__optim_moments(int32_t kind)
{
    return kind == DRPO_OPT_ADAMW ? 2 : kind == DRPO_OPT_MOMENTUM ? 1 : 0;
}

/* |x| of a float as its bit pattern: ordered like |x| for finite values and
 * infinity, and >= DRPO__F32_INF_BITS exactly when x is not finite. */
static inline uint32_t abs_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u & 0x7fffffffu;
}

static inline uint32_t umax(uint32_t a, uint32_t b) { return a > b ? a : b; }

float drpo__f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* ---- the gradient's statistics ------------------------------------------ */

void drpo__grad_stats_portable(size_t n, const float *g, const float *theta, double *norm2,
                               uint32_t *gmax, uint32_t *tmax);

void drpo__grad_stats_portable(size_t n, const float *g, const float *theta, double *norm2,
                               uint32_t *gmax, uint32_t *tmax)
{
    double s[NLANE] = {0};
    uint32_t gm = 0, tm = 0;
    for (size_t i = 0; i < n; i++) {
        double x = g[i];
        s[i % NLANE] += x * x;
        gm = umax(gm, abs_bits(g[i]));
    }
    if (theta)
        for (size_t i = 0; i < n; i++)
            tm = umax(tm, abs_bits(theta[i]));
    *norm2 = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    *gmax = gm;
    *tmax = tm;
}

#ifdef DRPO_X86
__attribute__((target("avx2"))) static void grad_stats_avx2(size_t n, const float *g,
                                                            const float *theta, double *norm2,
                                                            uint32_t *gmax, uint32_t *tmax)
{
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    __m256i gm = _mm256_setzero_si256(), tm = _mm256_setzero_si256();
    const __m256i abs = _mm256_set1_epi32(0x7fffffff);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_loadu_ps(g + i);
        __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(x));
        __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(x, 1));
        s0 = _mm256_add_pd(s0, _mm256_mul_pd(lo, lo));
        s1 = _mm256_add_pd(s1, _mm256_mul_pd(hi, hi));
        gm = _mm256_max_epu32(gm, _mm256_and_si256(_mm256_castps_si256(x), abs));
        if (theta)
            tm = _mm256_max_epu32(
                tm, _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(theta + i)), abs));
    }
    double s[NLANE];
    uint32_t gl[8], tl[8];
    _mm256_storeu_pd(s, s0);
    _mm256_storeu_pd(s + 4, s1);
    _mm256_storeu_si256((__m256i *)gl, gm);
    _mm256_storeu_si256((__m256i *)tl, tm);
    uint32_t gmx = 0, tmx = 0;
    for (int k = 0; k < 8; k++) {
        gmx = umax(gmx, gl[k]);
        tmx = umax(tmx, tl[k]);
    }
    for (; i < n; i++) {
        double x = g[i];
        s[i % NLANE] += x * x;
        gmx = umax(gmx, abs_bits(g[i]));
        if (theta)
            tmx = umax(tmx, abs_bits(theta[i]));
    }
    *norm2 = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    *gmax = gmx;
    *tmax = tmx;
}

/* Asked on every call (a few loads): the library keeps no global state. */
static int have_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
}
#endif

void drpo__grad_stats(size_t n, const float *g, const float *theta, double *norm2,
                      uint32_t *gmax, uint32_t *tmax)
{
#ifdef DRPO_X86
    if (have_avx2()) {
        grad_stats_avx2(n, g, theta, norm2, gmax, tmax);
        return;
    }
#endif
    drpo__grad_stats_portable(n, g, theta, norm2, gmax, tmax);
}

/* ---- the update ---------------------------------------------------------- */

typedef struct coeffs {
    double gscale, decay, lr, momentum, beta1, beta2, omb1, omb2, bc1, bc2, eps;
    int nesterov;
} coeffs;

typedef struct accum {
    double upd[NLANE], par[NLANE];
    uint32_t tmax, m1max, m2max;
} accum;

/* One element: the arithmetic every path must reproduce exactly. */
static inline void update_one(const coeffs *k, int kind, size_t i, float *theta, const float *g,
                              float *m1, float *m2, int commit, accum *a)
{
    double gi = (double)g[i] * k->gscale;
    double th = theta[i];
    float new_m1 = 0.0f, new_m2 = 0.0f;
    double dir;
    if (kind == DRPO_OPT_MOMENTUM) {
        new_m1 = (float)(k->momentum * m1[i] + gi);
        dir = k->nesterov ? gi + k->momentum * new_m1 : new_m1;
    } else if (kind == DRPO_OPT_ADAMW) {
        new_m1 = (float)(k->beta1 * m1[i] + k->omb1 * gi);
        new_m2 = (float)(k->beta2 * m2[i] + k->omb2 * gi * gi);
        dir = ((double)new_m1 / k->bc1) / (sqrt((double)new_m2 / k->bc2) + k->eps);
    } else {
        dir = gi;
    }
    float nt = (float)(th * k->decay - k->lr * dir);
    double du = (double)nt - th;
    a->upd[i % NLANE] += du * du;
    a->par[i % NLANE] += (double)nt * nt;
    a->tmax = umax(a->tmax, abs_bits(nt));
    a->m1max = umax(a->m1max, abs_bits(new_m1));
    a->m2max = umax(a->m2max, abs_bits(new_m2));
    if (commit) {
        theta[i] = nt;
        if (kind != DRPO_OPT_SGD)
            m1[i] = new_m1;
        if (kind == DRPO_OPT_ADAMW)
            m2[i] = new_m2;
    }
}

static inline __attribute__((always_inline)) void
update_portable_kind(const coeffs *k, int kind, size_t from, size_t n, float *theta,
                     const float *g, float *m1, float *m2, int commit, accum *a)
{
    for (size_t i = from; i < n; i++)
        update_one(k, kind, i, theta, g, m1, m2, commit, a);
}

static void update_portable(const coeffs *k, int kind, size_t from, size_t n, float *theta,
                            const float *g, float *m1, float *m2, int commit, accum *a)
{
    switch (kind) {
    case DRPO_OPT_MOMENTUM:
        update_portable_kind(k, DRPO_OPT_MOMENTUM, from, n, theta, g, m1, m2, commit, a);
        break;
    case DRPO_OPT_ADAMW:
        update_portable_kind(k, DRPO_OPT_ADAMW, from, n, theta, g, m1, m2, commit, a);
        break;
    default: update_portable_kind(k, DRPO_OPT_SGD, from, n, theta, g, m1, m2, commit, a); break;
    }
}

#ifdef DRPO_X86
/* Four elements at a time in double (lanes i, i+1, i+2, i+3 of one group of
 * eight go to accumulator `half` 0 or 1).  Only separate multiplies and adds:
 * the target has no FMA, so nothing is contracted. */
__attribute__((target("avx2"))) static inline __m128i abs_bits4(__m128 x)
{
    return _mm_and_si128(_mm_castps_si128(x), _mm_set1_epi32(0x7fffffff));
}

__attribute__((target("avx2"))) static inline __attribute__((always_inline)) void
update4(const coeffs *k, int kind, size_t i, float *theta, const float *g, float *m1, float *m2,
        int commit, __m256d *upd, __m256d *par, __m128i *tmx, __m128i *m1x, __m128i *m2x)
{
    __m256d gi = _mm256_mul_pd(_mm256_cvtps_pd(_mm_loadu_ps(g + i)), _mm256_set1_pd(k->gscale));
    __m256d th = _mm256_cvtps_pd(_mm_loadu_ps(theta + i));
    __m128 nm1 = _mm_setzero_ps(), nm2 = _mm_setzero_ps();
    __m256d dir;
    if (kind == DRPO_OPT_MOMENTUM) {
        __m256d mom = _mm256_set1_pd(k->momentum);
        __m256d v = _mm256_add_pd(_mm256_mul_pd(mom, _mm256_cvtps_pd(_mm_loadu_ps(m1 + i))), gi);
        nm1 = _mm256_cvtpd_ps(v);
        dir = _mm256_cvtps_pd(nm1);
        if (k->nesterov)
            dir = _mm256_add_pd(gi, _mm256_mul_pd(mom, dir));
    } else if (kind == DRPO_OPT_ADAMW) {
        __m256d v1 = _mm256_add_pd(
            _mm256_mul_pd(_mm256_set1_pd(k->beta1), _mm256_cvtps_pd(_mm_loadu_ps(m1 + i))),
            _mm256_mul_pd(_mm256_set1_pd(k->omb1), gi));
        __m256d v2 = _mm256_add_pd(
            _mm256_mul_pd(_mm256_set1_pd(k->beta2), _mm256_cvtps_pd(_mm_loadu_ps(m2 + i))),
            _mm256_mul_pd(_mm256_mul_pd(_mm256_set1_pd(k->omb2), gi), gi));
        nm1 = _mm256_cvtpd_ps(v1);
        nm2 = _mm256_cvtpd_ps(v2);
        __m256d num = _mm256_div_pd(_mm256_cvtps_pd(nm1), _mm256_set1_pd(k->bc1));
        __m256d den = _mm256_add_pd(
            _mm256_sqrt_pd(_mm256_div_pd(_mm256_cvtps_pd(nm2), _mm256_set1_pd(k->bc2))),
            _mm256_set1_pd(k->eps));
        dir = _mm256_div_pd(num, den);
    } else {
        dir = gi;
    }
    __m128 nt = _mm256_cvtpd_ps(_mm256_sub_pd(_mm256_mul_pd(th, _mm256_set1_pd(k->decay)),
                                              _mm256_mul_pd(_mm256_set1_pd(k->lr), dir)));
    __m256d ntd = _mm256_cvtps_pd(nt);
    __m256d du = _mm256_sub_pd(ntd, th);
    *upd = _mm256_add_pd(*upd, _mm256_mul_pd(du, du));
    *par = _mm256_add_pd(*par, _mm256_mul_pd(ntd, ntd));
    *tmx = _mm_max_epu32(*tmx, abs_bits4(nt));
    if (kind != DRPO_OPT_SGD)
        *m1x = _mm_max_epu32(*m1x, abs_bits4(nm1));
    if (kind == DRPO_OPT_ADAMW)
        *m2x = _mm_max_epu32(*m2x, abs_bits4(nm2));
    if (commit) {
        _mm_storeu_ps(theta + i, nt);
        if (kind != DRPO_OPT_SGD)
            _mm_storeu_ps(m1 + i, nm1);
        if (kind == DRPO_OPT_ADAMW)
            _mm_storeu_ps(m2 + i, nm2);
    }
}

__attribute__((target("avx2"))) static inline __attribute__((always_inline)) size_t
update_avx2_kind(const coeffs *k, int kind, size_t n, float *theta, const float *g, float *m1,
                 float *m2, int commit, accum *a)
{
    __m256d u0 = _mm256_setzero_pd(), u1 = u0, p0 = u0, p1 = u0;
    __m128i tx = _mm_setzero_si128(), x1 = tx, x2 = tx;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        update4(k, kind, i, theta, g, m1, m2, commit, &u0, &p0, &tx, &x1, &x2);
        update4(k, kind, i + 4, theta, g, m1, m2, commit, &u1, &p1, &tx, &x1, &x2);
    }
    _mm256_storeu_pd(a->upd, u0);
    _mm256_storeu_pd(a->upd + 4, u1);
    _mm256_storeu_pd(a->par, p0);
    _mm256_storeu_pd(a->par + 4, p1);
    uint32_t l[3][4];
    _mm_storeu_si128((__m128i *)l[0], tx);
    _mm_storeu_si128((__m128i *)l[1], x1);
    _mm_storeu_si128((__m128i *)l[2], x2);
    for (int j = 0; j < 4; j++) {
        a->tmax = umax(a->tmax, l[0][j]);
        a->m1max = umax(a->m1max, l[1][j]);
        a->m2max = umax(a->m2max, l[2][j]);
    }
    return i;
}

__attribute__((target("avx2"))) static size_t update_avx2(const coeffs *k, int kind, size_t n,
                                                          float *theta, const float *g, float *m1,
                                                          float *m2, int commit, accum *a)
{
    switch (kind) {
    case DRPO_OPT_MOMENTUM:
        return update_avx2_kind(k, DRPO_OPT_MOMENTUM, n, theta, g, m1, m2, commit, a);
    case DRPO_OPT_ADAMW:
        return update_avx2_kind(k, DRPO_OPT_ADAMW, n, theta, g, m1, m2, commit, a);
    default: return update_avx2_kind(k, DRPO_OPT_SGD, n, theta, g, m1, m2, commit, a);
    }
}
#endif

static void make_coeffs(const drpo_optim_config *c, double gscale, uint64_t step, double lr,
                        coeffs *k)
{
    k->gscale = gscale;
    k->decay = 1.0 - lr * c->weight_decay;
    k->lr = lr;
    k->momentum = c->momentum;
    k->nesterov = c->nesterov;
    k->beta1 = c->beta1;
    k->beta2 = c->beta2;
    k->omb1 = 1.0 - c->beta1;
    k->omb2 = 1.0 - c->beta2;
    k->eps = c->eps;
    k->bc1 = 1.0;
    k->bc2 = 1.0;
    if (c->kind == DRPO_OPT_ADAMW) {
        k->bc1 = 1.0 - pow(c->beta1, (double)step + 1.0);
        k->bc2 = 1.0 - pow(c->beta2, (double)step + 1.0);
    }
}

static void finish(const accum *a, drpo_optim_stats *st)
{
    const double *u = a->upd, *p = a->par;
    st->update_norm2 = ((u[0] + u[1]) + (u[2] + u[3])) + ((u[4] + u[5]) + (u[6] + u[7]));
    st->param_norm2 = ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
    st->finite = a->tmax < DRPO__F32_INF_BITS && a->m1max < DRPO__F32_INF_BITS &&
                 a->m2max < DRPO__F32_INF_BITS;
    st->m1_max = a->m1max;
    st->m2_max = a->m2max;
}

void drpo__optim_update_portable(const drpo_optim_config *c, size_t n, float *theta,
                                 const float *g, double gscale, float *m1, float *m2,
                                 uint64_t step, double lr, int commit, drpo_optim_stats *st);

void drpo__optim_update_portable(const drpo_optim_config *c, size_t n, float *theta,
                                 const float *g, double gscale, float *m1, float *m2,
                                 uint64_t step, double lr, int commit, drpo_optim_stats *st)
{
    coeffs k;
    make_coeffs(c, gscale, step, lr, &k);
    accum a;
    memset(&a, 0, sizeof a);
    update_portable(&k, c->kind, 0, n, theta, g, m1, m2, commit, &a);
    finish(&a, st);
}

void drpo__optim_update(const drpo_optim_config *c, size_t n, float *theta, const float *g,
                        double gscale, float *m1, float *m2, uint64_t step, double lr,
                        int commit, drpo_optim_stats *st)
{
    coeffs k;
    make_coeffs(c, gscale, step, lr, &k);
    accum a;
    memset(&a, 0, sizeof a);
    size_t done = 0;
#ifdef DRPO_X86
    if (have_avx2())
        done = update_avx2(&k, c->kind, n, theta, g, m1, m2, commit, &a);
#endif
    update_portable(&k, c->kind, done, n, theta, g, m1, m2, commit, &a);
    finish(&a, st);
}

int drpo__optim_bounded(const drpo_optim_config *c, uint64_t step, double lr, double gscale,
                        uint32_t gmax, uint32_t tmax, uint32_t m1max, uint32_t m2max)
{
    if (gmax >= DRPO__F32_INF_BITS || tmax >= DRPO__F32_INF_BITS ||
        m1max >= DRPO__F32_INF_BITS || m2max >= DRPO__F32_INF_BITS)
        return 0;
    coeffs k;
    make_coeffs(c, gscale, step, lr, &k);
    double G = (double)drpo__f32_from_bits(gmax) * fabs(gscale);
    double M1 = drpo__f32_from_bits(m1max), M2 = drpo__f32_from_bits(m2max);
    double m1b = 0.0, m2b = 0.0, dirb;
    switch (c->kind) {
    case DRPO_OPT_MOMENTUM:
        m1b = k.momentum * M1 + G;
        dirb = k.nesterov ? G + k.momentum * m1b : m1b;
        break;
    case DRPO_OPT_ADAMW:
        m1b = k.beta1 * M1 + k.omb1 * G;
        m2b = k.beta2 * M2 + k.omb2 * G * G;
        /* |m1 / bc1| / (sqrt(m2 / bc2) + eps) <= |m1| / (bc1 eps) */
        dirb = m1b / k.bc1 / k.eps;
        break;
    default: dirb = G; break;
    }
    double thb = (double)drpo__f32_from_bits(tmax) * fabs(k.decay) + fabs(lr) * dirb;
    /* every value the update computes is at most its bound times (1 + a few
     * ulps): far below FLT_MAX (2^128), so it rounds to a finite float */
    const double limit = 0x1p100;
    return thb < limit && m1b < limit && m2b < limit;
}

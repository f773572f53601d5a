/* optim.c - SGD, momentum / Nesterov and AdamW with decoupled weight decay;
 * constant, warm-up and cosine schedules.  The per-element arithmetic is in
 * float32, as torch.optim does it (coefficients computed in double, rounded
 * once to float); the norms are summed in double; state in float32.  The
 * update is a pure function of its inputs, so a checkpointed run resumes
 * bitwise.
 *
 * The per-element arithmetic is the same on every path (no fused
 * multiply-add, the same operations in the same order), so the AVX2 loops
 * and the portable loops write bitwise the same parameters and moments.  The
 * squared norms are summed in NLANE interleaved lanes (element i in lane
 * i mod NLANE), the same on every path, then the lanes in a fixed order. */
#include "optim.h"
#include "vec.h"

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

#endif

void drpo__grad_stats(size_t n, const float *g, const float *theta, double *norm2,
                      uint32_t *gmax, uint32_t *tmax)
{
#ifdef DRPO_X86
    if (drpo__cpu_avx2()) {
        grad_stats_avx2(n, g, theta, norm2, gmax, tmax);
        return;
    }
#endif
    drpo__grad_stats_portable(n, g, theta, norm2, gmax, tmax);
}

/* ---- the update ---------------------------------------------------------- */

/* The per-element coefficients, each computed in double and rounded once to
 * float.  lwd = lr * wd.  SGD, momentum: step = lr.  AdamW: step =
 * lr sqrt(bc2) / bc1 and eps = eps sqrt(bc2) (bc1 = 1 - beta1^t, bc2 =
 * 1 - beta2^t), so that step m1 / (sqrt(m2) + eps) is PyTorch's
 * (lr / bc1) m1 / (sqrt(m2) / sqrt(bc2) + eps) with one division. */
typedef struct coeffs {
    float gscale, lwd, step, momentum, beta1, beta2, omb1, omb2, eps;
    int nesterov;
} coeffs;

typedef struct accum {
    double upd[NLANE], par[NLANE];
    uint32_t m1max, m2max;
} accum;

/* One element: the arithmetic every path must reproduce exactly (these float
 * operations in this order; the squared norms in double, from the exact
 * double difference of two floats). */
static inline void update_one(const coeffs *k, int kind, size_t i, float *theta, float *g,
                              float *m1, float *m2, int commit, accum *a)
{
    float gi = g[i] * k->gscale;
    float th = theta[i];
    float new_m1 = 0.0f, new_m2 = 0.0f, dir;
    if (kind == DRPO_OPT_MOMENTUM) {
        new_m1 = k->momentum * m1[i] + gi;
        dir = k->step * (k->nesterov ? gi + k->momentum * new_m1 : new_m1);
    } else if (kind == DRPO_OPT_ADAMW) {
        new_m1 = k->beta1 * m1[i] + k->omb1 * gi;
        new_m2 = k->beta2 * m2[i] + k->omb2 * gi * gi;
        dir = (k->step * new_m1) / (sqrtf(new_m2) + k->eps);
    } else {
        dir = k->step * gi;
    }
    float nt = th - (k->lwd * th + dir);
    double du = (double)nt - (double)th;
    a->upd[i % NLANE] += du * du;
    a->par[i % NLANE] += (double)nt * nt;
    a->m1max = umax(a->m1max, abs_bits(new_m1));
    a->m2max = umax(a->m2max, abs_bits(new_m2));
    if (commit) {
        theta[i] = nt;
        g[i] = 0.0f;
        if (kind != DRPO_OPT_SGD)
            m1[i] = new_m1;
        if (kind == DRPO_OPT_ADAMW)
            m2[i] = new_m2;
    }
}

static inline __attribute__((always_inline)) void
update_portable_kind(const coeffs *k, int kind, size_t from, size_t n, float *theta,
                     float *g, float *m1, float *m2, int commit, accum *a)
{
    for (size_t i = from; i < n; i++)
        update_one(k, kind, i, theta, g, m1, m2, commit, a);
}

static void update_portable(const coeffs *k, int kind, size_t from, size_t n, float *theta,
                            float *g, float *m1, float *m2, int commit, accum *a)
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
/* Eight elements at a time, the operations of update_one on 8 float lanes
 * (vsqrtps and vdivps round correctly, like sqrtf and /; the target has no
 * FMA, so nothing is contracted).
 *
 * In blocks of BLOCK elements, two loops: the first computes the new
 * parameters into a buffer (and writes the moments), the second sums the
 * norms from the buffer and writes the parameters.  One loop doing both is
 * a long chain per element (sqrt, divide, convert, square, add) that keeps
 * too few elements in flight: in L1, AdamW took 0.52 ns per element that
 * way, 0.37 split, under the 0.5 ns that memory needs for its 28 bytes.
 * The norms still go element by element in order into lane i mod 8 (lanes
 * 0-3 in the `lo` accumulators, 4-7 in `hi`), as on the portable path. */
#define BLOCK 256

typedef struct acc8 {
    __m256d ulo, uhi, plo, phi;
    __m256i m1x, m2x;
} acc8;

/* The coefficients broadcast once, outside the loop (the loop's float stores
 * might alias a coeffs, so they would be loaded again each time). */
typedef struct coeffs8 {
    __m256 gscale, lwd, step, momentum, beta1, beta2, omb1, omb2, eps;
} coeffs8;

__attribute__((target("avx2"))) static inline __attribute__((always_inline)) __m256i
abs_bits8(__m256 x)
{
    return _mm256_and_si256(_mm256_castps_si256(x), _mm256_set1_epi32(0x7fffffff));
}

/* `scaled` == 0 when gscale is 1 (g * 1 == g). */
__attribute__((target("avx2"))) static inline __attribute__((always_inline)) void
update8(const coeffs8 *k, int kind, int nesterov, int scaled, int commit, size_t i,
        const float *theta, float *g, float *m1, float *m2, acc8 *a, float *out)
{
    __m256 gi = _mm256_loadu_ps(g + i);
    if (scaled)
        gi = _mm256_mul_ps(gi, k->gscale);
    __m256 th = _mm256_loadu_ps(theta + i);
    __m256 nm1 = _mm256_setzero_ps(), nm2 = nm1, dir;
    if (kind == DRPO_OPT_MOMENTUM) {
        nm1 = _mm256_add_ps(_mm256_mul_ps(k->momentum, _mm256_loadu_ps(m1 + i)), gi);
        dir = nesterov ? _mm256_add_ps(gi, _mm256_mul_ps(k->momentum, nm1)) : nm1;
        dir = _mm256_mul_ps(k->step, dir);
    } else if (kind == DRPO_OPT_ADAMW) {
        nm1 = _mm256_add_ps(_mm256_mul_ps(k->beta1, _mm256_loadu_ps(m1 + i)),
                            _mm256_mul_ps(k->omb1, gi));
        nm2 = _mm256_add_ps(_mm256_mul_ps(k->beta2, _mm256_loadu_ps(m2 + i)),
                            _mm256_mul_ps(_mm256_mul_ps(k->omb2, gi), gi));
        dir = _mm256_div_ps(_mm256_mul_ps(k->step, nm1),
                            _mm256_add_ps(_mm256_sqrt_ps(nm2), k->eps));
    } else {
        dir = _mm256_mul_ps(k->step, gi);
    }
    _mm256_storeu_ps(out, _mm256_sub_ps(th, _mm256_add_ps(_mm256_mul_ps(k->lwd, th), dir)));
    if (kind != DRPO_OPT_SGD)
        a->m1x = _mm256_max_epu32(a->m1x, abs_bits8(nm1));
    if (kind == DRPO_OPT_ADAMW)
        a->m2x = _mm256_max_epu32(a->m2x, abs_bits8(nm2));
    if (commit) {
        _mm256_storeu_ps(g + i, _mm256_setzero_ps());
        if (kind != DRPO_OPT_SGD)
            _mm256_storeu_ps(m1 + i, nm1);
        if (kind == DRPO_OPT_ADAMW)
            _mm256_storeu_ps(m2 + i, nm2);
    }
}

/* The norms of eight new parameters nt (from the buffer) against theta. */
__attribute__((target("avx2"))) static inline __attribute__((always_inline)) void
norms8(int commit, size_t i, float *theta, const float *nt, acc8 *a)
{
    __m256d ntlo = _mm256_cvtps_pd(_mm_loadu_ps(nt));
    __m256d nthi = _mm256_cvtps_pd(_mm_loadu_ps(nt + 4));
    __m256d dlo = _mm256_sub_pd(ntlo, _mm256_cvtps_pd(_mm_loadu_ps(theta + i)));
    __m256d dhi = _mm256_sub_pd(nthi, _mm256_cvtps_pd(_mm_loadu_ps(theta + i + 4)));
    a->ulo = _mm256_add_pd(a->ulo, _mm256_mul_pd(dlo, dlo));
    a->uhi = _mm256_add_pd(a->uhi, _mm256_mul_pd(dhi, dhi));
    a->plo = _mm256_add_pd(a->plo, _mm256_mul_pd(ntlo, ntlo));
    a->phi = _mm256_add_pd(a->phi, _mm256_mul_pd(nthi, nthi));
    if (commit)
        _mm256_storeu_ps(theta + i, _mm256_loadu_ps(nt));
}

__attribute__((target("avx2"))) static inline __attribute__((always_inline)) size_t
update_avx2_kind(const coeffs *c, int kind, int nesterov, int scaled, int commit, size_t n,
                 float *theta, float *g, float *m1, float *m2, accum *a)
{
    coeffs8 k;
    k.gscale = _mm256_set1_ps(c->gscale);
    k.lwd = _mm256_set1_ps(c->lwd);
    k.step = _mm256_set1_ps(c->step);
    k.momentum = _mm256_set1_ps(c->momentum);
    k.beta1 = _mm256_set1_ps(c->beta1);
    k.beta2 = _mm256_set1_ps(c->beta2);
    k.omb1 = _mm256_set1_ps(c->omb1);
    k.omb2 = _mm256_set1_ps(c->omb2);
    k.eps = _mm256_set1_ps(c->eps);
    acc8 x;
    x.ulo = x.uhi = x.plo = x.phi = _mm256_setzero_pd();
    x.m1x = x.m2x = _mm256_setzero_si256();
    float buf[BLOCK] __attribute__((aligned(32)));
    size_t i = 0;
    while (n - i >= 8) {
        size_t e = n - i >= BLOCK ? i + BLOCK : i + ((n - i) & ~(size_t)7);
        for (size_t j = i; j < e; j += 8)
            update8(&k, kind, nesterov, scaled, commit, j, theta, g, m1, m2, &x, buf + (j - i));
        for (size_t j = i; j < e; j += 8)
            norms8(commit, j, theta, buf + (j - i), &x);
        i = e;
    }
    _mm256_storeu_pd(a->upd, x.ulo);
    _mm256_storeu_pd(a->upd + 4, x.uhi);
    _mm256_storeu_pd(a->par, x.plo);
    _mm256_storeu_pd(a->par + 4, x.phi);
    uint32_t l[2][8];
    _mm256_storeu_si256((__m256i *)l[0], x.m1x);
    _mm256_storeu_si256((__m256i *)l[1], x.m2x);
    for (int j = 0; j < 8; j++) {
        a->m1max = umax(a->m1max, l[0][j]);
        a->m2max = umax(a->m2max, l[1][j]);
    }
    return i;
}

__attribute__((target("avx2"))) static inline __attribute__((always_inline)) size_t
update_avx2_scaled(const coeffs *k, int kind, int scaled, int commit, size_t n, float *theta,
                   float *g, float *m1, float *m2, accum *a)
{
    switch (kind) {
    case DRPO_OPT_MOMENTUM:
        if (k->nesterov)
            return update_avx2_kind(k, DRPO_OPT_MOMENTUM, 1, scaled, commit, n, theta, g, m1, m2,
                                    a);
        return update_avx2_kind(k, DRPO_OPT_MOMENTUM, 0, scaled, commit, n, theta, g, m1, m2, a);
    case DRPO_OPT_ADAMW:
        return update_avx2_kind(k, DRPO_OPT_ADAMW, 0, scaled, commit, n, theta, g, m1, m2, a);
    default: return update_avx2_kind(k, DRPO_OPT_SGD, 0, scaled, commit, n, theta, g, m1, m2, a);
    }
}

__attribute__((target("avx2"))) static size_t update_avx2(const coeffs *k, int kind, size_t n,
                                                          float *theta, float *g, float *m1,
                                                          float *m2, int commit, accum *a)
{
    if (!commit) /* the measuring call, rare: one form */
        return update_avx2_scaled(k, kind, 1, 0, n, theta, g, m1, m2, a);
    if (k->gscale != 1.0f)
        return update_avx2_scaled(k, kind, 1, 1, n, theta, g, m1, m2, a);
    return update_avx2_scaled(k, kind, 0, 1, n, theta, g, m1, m2, a);
}
#undef BLOCK
#endif

static void make_coeffs(const drpo_optim_config *c, double gscale, uint64_t step, double lr,
                        coeffs *k)
{
    double st = lr, eps = c->eps;
    if (c->kind == DRPO_OPT_ADAMW) {
        double bc1 = 1.0 - pow(c->beta1, (double)step + 1.0);
        double sbc2 = sqrt(1.0 - pow(c->beta2, (double)step + 1.0));
        st = lr * sbc2 / bc1;
        eps *= sbc2;
    }
    k->gscale = (float)gscale;
    k->lwd = (float)(lr * c->weight_decay);
    k->step = (float)st;
    k->momentum = (float)c->momentum;
    k->nesterov = c->nesterov;
    k->beta1 = (float)c->beta1;
    k->beta2 = (float)c->beta2;
    k->omb1 = (float)(1.0 - c->beta1);
    k->omb2 = (float)(1.0 - c->beta2);
    /* eps > 0 (checked when set) stays > 0 in float: else 0 / 0 where a
     * gradient and its moments are zero */
    k->eps = (float)eps;
    if (!(k->eps > 0.0f))
        k->eps = 0x1p-149f;
}

static void finish(const accum *a, drpo_optim_stats *st)
{
    const double *u = a->upd, *p = a->par;
    st->update_norm2 = ((u[0] + u[1]) + (u[2] + u[3])) + ((u[4] + u[5]) + (u[6] + u[7]));
    st->param_norm2 = ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
    /* a sum in double of squares of finite floats (each < 2^256) cannot
     * overflow: the squared norm is finite exactly when every new parameter
     * is */
    st->finite = isfinite(st->param_norm2) && a->m1max < DRPO__F32_INF_BITS &&
                 a->m2max < DRPO__F32_INF_BITS;
    st->m1_max = a->m1max;
    st->m2_max = a->m2max;
}

void drpo__optim_update(const drpo_optim_config *c, size_t n, float *theta, float *g,
                        double gscale, float *m1, float *m2, uint64_t step, double lr,
                        int commit, drpo_optim_stats *st)
{
    coeffs k;
    make_coeffs(c, gscale, step, lr, &k);
    accum a;
    memset(&a, 0, sizeof a);
    size_t done = 0;
#ifdef DRPO_X86
    if (drpo__cpu_avx2())
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
    /* bounds on the float computation, from its float coefficients (an
     * infinite one, such as step when beta1 = 1, could make inf * 0) */
    coeffs k;
    make_coeffs(c, gscale, step, lr, &k);
    const double limit = 0x1p100;
    double G = (double)drpo__f32_from_bits(gmax) * fabs((double)k.gscale);
    double M1 = drpo__f32_from_bits(m1max), M2 = drpo__f32_from_bits(m2max);
    double T = drpo__f32_from_bits(tmax), S = fabs((double)k.step), L = fabs((double)k.lwd);
    if (!(G < limit && S < limit && L < limit))
        return 0;
    double m1b = 0.0, m2b = 0.0, dirb;
    switch (c->kind) {
    case DRPO_OPT_MOMENTUM:
        m1b = (double)k.momentum * M1 + G;
        dirb = S * (k.nesterov ? G + (double)k.momentum * m1b : m1b);
        break;
    case DRPO_OPT_ADAMW:
        m1b = (double)k.beta1 * M1 + (double)k.omb1 * G;
        m2b = (double)k.beta2 * M2 + (double)k.omb2 * G * G;
        /* |step m1| / (sqrt(m2) + eps) <= step |m1| / eps, eps > 0 */
        dirb = S * m1b / (double)k.eps;
        break;
    default: dirb = S * G; break;
    }
    double thb = T + L * T + dirb;
    /* every value the update computes is at most its bound times (1 + a few
     * float ulps): far below FLT_MAX (2^128), so it rounds to a finite float */
    return thb < limit && m1b < limit && m2b < limit;
}

/* objective.c - the robust objective handle: parameters, input checks, the
 * map to gap space and back, scratch memory and diagnostics.  The solvers
 * themselves live in sets/. */
#include "internal.h"

#include <float.h>
#include <math.h>
#include <string.h>

#define DRPO__NDIAG (DRPO_DIAG_DEGENERATE + 1)

struct drpo_objective {
    drpo_allocator alloc; /* first member: made by drpo__handle_new */
    int32_t set;
    const drpo_set_ops *ops;
    int form;     /* DRPO__FORM_NONE until the set's parameter is set */
    double param; /* in loss units */
    int32_t mode; /* DRPO_MODE_*, read by the trainer */
    double dual_lr;
    int32_t groups;
    int has_collective;
    drpo_collective coll;
    void *coll_user;
    /* scratch, reused while n <= cap */
    size_t cap;
    double *d, *p, *q;
    drpo_pair *pairs;
    /* the last successful solve */
    int solved;
    double diag[DRPO__NDIAG];
    unsigned diag_set; /* bit k: diag[k] is defined */
    size_t m, n;       /* support and size of the last solve (q, p in scratch) */
    size_t tied;       /* units of the support at the maximum loss */
    char err[DRPO__ERRLEN];
};

const drpo_set_ops *drpo__set_ops(int32_t set)
{
    switch (set) {
    case DRPO_SET_NONE: return &drpo__set_none;
    case DRPO_SET_KL: return &drpo__set_kl;
    case DRPO_SET_CHI2: return &drpo__set_chi2;
    case DRPO_SET_CVAR: return &drpo__set_cvar;
    case DRPO_SET_TV: return &drpo__set_tv;
    default: return NULL;
    }
}

drpo_status drpo_objective_create_with_allocator(drpo_objective **out, int32_t set,
                                                 const drpo_allocator *alloc)
{
    if (!out)
        return DRPO_ERR_NULL;
    *out = NULL;
    const drpo_set_ops *ops = drpo__set_ops(set);
    if (!ops)
        return DRPO_ERR_SET;
    drpo_objective *obj;
    drpo_status st = drpo__handle_new(alloc, sizeof *obj, (void **)&obj);
    if (st != DRPO_OK)
        return st;
    obj->set = set;
    obj->ops = ops;
    obj->form = DRPO__FORM_NONE;
    obj->mode = DRPO_MODE_EXACT;
    obj->dual_lr = 0.1;
    *out = obj;
    return DRPO_OK;
}

drpo_status drpo_objective_create(drpo_objective **out, int32_t set)
{
    return drpo_objective_create_with_allocator(out, set, NULL);
}

void drpo_objective_free(drpo_objective *obj)
{
    if (!obj)
        return;
    drpo_allocator a = obj->alloc;
    drpo__free(&a, obj->d);
    drpo__free(&a, obj);
}

void drpo__objective_config(const drpo_objective *obj, drpo_objective_config *cfg)
{
    cfg->set = obj->set;
    cfg->form = obj->form;
    cfg->param = obj->param;
    cfg->mode = obj->mode;
    cfg->dual_lr = obj->dual_lr;
    cfg->groups = obj->groups;
    cfg->coll = obj->has_collective && obj->coll.size > 1 ? &obj->coll : NULL;
    cfg->coll_user = obj->coll_user;
}

drpo_status drpo_objective_set_collective(drpo_objective *obj, const drpo_collective *c,
                                          void *user)
{
    if (!obj)
        return DRPO_ERR_NULL;
    if (!c) {
        obj->has_collective = 0;
        return DRPO_OK;
    }
    if (c->struct_size < sizeof *c)
        return drpo__fail(obj->err, DRPO_ERR_SIZE, "collective struct_size %u is too small",
                          (unsigned)c->struct_size);
    if (c->size < 1 || c->rank < 0 || c->rank >= c->size || !c->allgather_u64 ||
        !c->allgatherv || !c->allreduce_sum)
        return drpo__fail(obj->err, DRPO_ERR_PARAM_RANGE,
                          "collective: rank %d of %d, or a NULL function", (int)c->rank,
                          (int)c->size);
    obj->coll = *c;
    obj->coll.struct_size = sizeof obj->coll;
    obj->coll_user = user;
    obj->has_collective = 1;
    return DRPO_OK;
}

char *drpo__objective_errbuf(drpo_objective *obj) { return obj->err; }

int32_t drpo_objective_set_kind(const drpo_objective *obj) { return obj ? obj->set : -1; }

const char *drpo_objective_last_error(const drpo_objective *obj)
{
    return obj ? obj->err : "objective handle is NULL";
}

static int key_form(int32_t key)
{
    switch (key) {
    case DRPO_PARAM_RADIUS: return DRPO__FORM_RADIUS;
    case DRPO_PARAM_PENALTY: return DRPO__FORM_PENALTY;
    case DRPO_PARAM_LEVEL: return DRPO__FORM_LEVEL;
    default: return -1;
    }
}

static const char *key_name(int32_t key)
{
    switch (key) {
    case DRPO_PARAM_RADIUS: return "radius";
    case DRPO_PARAM_PENALTY: return "penalty";
    default: return "level";
    }
}

/* The form a key selects, if this set takes it. */
static drpo_status check_key(drpo_objective *obj, int32_t key, int *form)
{
    *form = key_form(key);
    if (*form < 0)
        return drpo__fail(obj->err, DRPO_ERR_KEY, "unknown objective parameter key %d", (int)key);
    if (!(obj->ops->forms & (1u << *form)))
        return drpo__fail(obj->err, DRPO_ERR_KEY, "the %s set takes no %s parameter",
                          obj->ops->name, key_name(key));
    return DRPO_OK;
}

/* The trainer's options, kept here because they belong to the objective. */
static drpo_status set_training_option(drpo_objective *obj, int32_t key, double value)
{
    switch (key) {
    case DRPO_PARAM_MODE:
        if (value != DRPO_MODE_EXACT && value != DRPO_MODE_STOCHASTIC && value != DRPO_MODE_GROUP)
            return drpo__fail(obj->err, DRPO_ERR_PARAM_RANGE, "unknown mode %g", value);
        if (value == DRPO_MODE_STOCHASTIC && obj->set == DRPO_SET_TV)
            return drpo__fail(obj->err, DRPO_ERR_PARAM_RANGE,
                              "the tv set has no stochastic dual form (its dual is not an "
                              "expectation); use exact or group mode");
        obj->mode = (int32_t)value;
        return DRPO_OK;
    case DRPO_PARAM_DUAL_LR:
        if (!(value > 0.0) || !isfinite(value))
            return drpo__fail(obj->err, DRPO_ERR_PARAM_RANGE,
                              "dual step size must be finite and > 0 (got %g)", value);
        obj->dual_lr = value;
        return DRPO_OK;
    default: /* DRPO_PARAM_GROUPS */
        if (!(value >= 0.0 && value <= 65536.0) || value != floor(value))
            return drpo__fail(obj->err, DRPO_ERR_PARAM_RANGE,
                              "groups must be a whole number in [0, 65536] (got %g)", value);
        obj->groups = (int32_t)value;
        return DRPO_OK;
    }
}

static int is_training_option(int32_t key)
{
    return key == DRPO_PARAM_MODE || key == DRPO_PARAM_DUAL_LR || key == DRPO_PARAM_GROUPS;
}

drpo_status drpo_objective_set(drpo_objective *obj, int32_t key, double value)
{
    if (!obj)
        return DRPO_ERR_NULL;
    if (is_training_option(key))
        return set_training_option(obj, key, value);
    int form;
    drpo_status st = check_key(obj, key, &form);
    if (st != DRPO_OK)
        return st;
    if (!isfinite(value) || value < 0.0)
        return drpo__fail(obj->err, DRPO_ERR_PARAM_RANGE,
                          "%s must be finite and >= 0 (got %g)", key_name(key), value);
    if (form == DRPO__FORM_LEVEL && !(value > 0.0 && value <= 1.0))
        return drpo__fail(obj->err, DRPO_ERR_PARAM_RANGE, "level must be in (0, 1] (got %g)",
                          value);
    obj->form = form; /* radius and penalty exclude each other */
    obj->param = value;
    return DRPO_OK;
}

drpo_status drpo_objective_get(const drpo_objective *obj, int32_t key, double *value)
{
    if (!obj || !value)
        return DRPO_ERR_NULL;
    if (is_training_option(key)) {
        *value = key == DRPO_PARAM_MODE       ? obj->mode
                 : key == DRPO_PARAM_DUAL_LR ? obj->dual_lr
                                             : obj->groups;
        return DRPO_OK;
    }
    int form = key_form(key);
    if (form < 0 || !(obj->ops->forms & (1u << form)))
        return DRPO_ERR_KEY;
    if (obj->form != form)
        return DRPO_ERR_PARAM_UNSET;
    *value = obj->param;
    return DRPO_OK;
}

drpo_status drpo_objective_diag(const drpo_objective *obj, int32_t key, double *value)
{
    if (!obj || !value)
        return DRPO_ERR_NULL;
    if (key < DRPO_DIAG_VALUE || key >= DRPO__NDIAG)
        return DRPO_ERR_KEY;
    if (!obj->solved)
        return DRPO_ERR_NO_SOLUTION;
    if (!(obj->diag_set & (1u << key)))
        return DRPO_ERR_UNAVAILABLE;
    *value = obj->diag[key];
    return DRPO_OK;
}

/* Grow the scratch to n units; on failure the old scratch stays. */
static drpo_status reserve(drpo_objective *obj, size_t n)
{
    if (n <= obj->cap)
        return DRPO_OK;
    /* d, p, q and the pairs: five doubles a unit, in one block */
    double *block = drpo__malloc_array(&obj->alloc, n, 5 * sizeof(double));
    if (!block)
        return drpo__fail(obj->err, DRPO_ERR_NOMEM, "cannot allocate scratch for %zu units", n);
    drpo__free(&obj->alloc, obj->d);
    obj->d = block;
    obj->p = block + n;
    obj->q = block + 2 * n;
    obj->pairs = (drpo_pair *)(block + 3 * n);
    obj->cap = n;
    return DRPO_OK;
}

/* Range of the losses over the support of the base, gathered while checking. */
typedef struct loss_range {
    double max, mag; /* largest loss and largest |loss| where base > 0 */
    drpo_loss_scan scan; /* uniform base: the whole scan */
    drpo_base_scan base; /* any other base: its scan */
    int uniform;         /* the base given is n copies of 1/n */
    int windowed;        /* uniform base: the scan took the set's first window */
    drpo_loss_window window;
} loss_range;

/* What can be refused before anything is read. */
static drpo_status check_args(drpo_objective *obj, size_t n, const double *loss)
{
    if (!loss)
        return drpo__fail(obj->err, DRPO_ERR_NULL, "loss is NULL");
    if (n == 0)
        return drpo__fail(obj->err, DRPO_ERR_SIZE, "n is 0");
    if (obj->form == DRPO__FORM_NONE && obj->set != DRPO_SET_NONE)
        return drpo__fail(obj->err, DRPO_ERR_PARAM_UNSET,
                          "the %s set needs its parameter (%s) before solving", obj->ops->name,
                          obj->set == DRPO_SET_CVAR ? "level" : "radius or penalty");
    return DRPO_OK;
}

/* The losses of a uniform base scanned; where the set has a level, its
 * first window taken in the same pass (into the scratch pairs). */
static void scan_uniform(drpo_objective *obj, size_t n, const double *loss, loss_range *r)
{
    drpo_loss_window *w = &r->window;
    double level = obj->ops->level ? obj->ops->level(obj->form, obj->param) : NAN;
    r->windowed = drpo__loss_bracket(n, loss, level, obj->pairs, &w->x0, &w->x1);
    if (r->windowed) {
        r->scan = drpo__scan_window(n, loss, w->x0, w->x1, (double *)obj->pairs);
        w->over = r->scan.over;
        w->kept = r->scan.kept;
    } else {
        r->scan = drpo__scan_losses(n, loss);
    }
}

/* One pass: every loss finite, every base weight finite and >= 0, the base
 * sum, and the range of the losses on the support. */
static drpo_status check_inputs(drpo_objective *obj, size_t n, const double *loss,
                                const double *base, double *base_sum, loss_range *r)
{
    double l_max = -DBL_MAX, mag = 0.0, s = 0.0;
    int bad = 0;
    if (base) { /* a base of n copies of 1/n (the trainer's, one pair a unit) is no base */
        const double pu = 1.0 / (double)n;
        size_t i = 0;
        while (i < n && base[i] == pu)
            i++;
        r->uniform = i == n;
    }
    if (!base || r->uniform) {
        scan_uniform(obj, n, loss, r);
        bad = !r->scan.finite;
        l_max = r->scan.max;
        mag = fmax(fabs(r->scan.max), fabs(r->scan.min));
    } else {
        r->base = drpo__scan_base(n, loss, base);
        bad = !r->base.ok;
        s = r->base.sum;
        l_max = r->base.l_max;
        mag = fmax(fabs(r->base.l_max), fabs(r->base.l_min));
    }
    if (bad) { /* find the first culprit for the message */
        for (size_t i = 0; i < n; i++)
            if (!isfinite(loss[i]))
                return drpo__fail(obj->err, DRPO_ERR_LOSS_NONFINITE, "loss[%zu] is %g", i,
                                  loss[i]);
        for (size_t i = 0; i < n; i++)
            if (!(base[i] >= 0.0) || isinf(base[i]))
                return drpo__fail(obj->err, DRPO_ERR_BASE_NEGATIVE, "base[%zu] is %g", i,
                                  base[i]);
    }
    *base_sum = 1.0;
    if (base && !r->uniform) {
        if (!(fabs(s - 1.0) <= 1e-9))
            return drpo__fail(obj->err, DRPO_ERR_BASE_SUM,
                              "base weights sum to %.17g, not 1 (within 1e-9)", s);
        /* renormalise only past rounding, so q = base stays bitwise the base */
        *base_sum = fabs(s - 1.0) <= 1e-14 ? 1.0 : s;
    }
    r->max = l_max;
    r->mag = mag;
    return DRPO_OK;
}

/* A sum accurate to a few ulps at any length: plain sums over blocks of
 * 256, Neumaier's compensated sum across the blocks. */
static double sum_compensated(const double *x, size_t m)
{
    drpo_bsum b = {{0.0, 0.0}, 0.0, 0};
    for (size_t j = 0; j < m; j++)
        drpo__bsum_add(&b, x[j]);
    return drpo__bsum_value(&b);
}

/* Divide q by its sum; tiny weights (chi-square with a penalty that is
 * denormal in gap space) are first scaled exactly by a power of two, or
 * 1/sum overflows and q becomes inf and NaN. */
static void renormalise(double *q, size_t m, double sum)
{
    if (sum < 0x1p-960) {
        int k = ilogb(sum);
        for (size_t j = 0; j < m; j++)
            q[j] = ldexp(q[j], -k);
        sum = sum_compensated(q, m);
    }
    double scale = 1.0 / sum;
    for (size_t j = 0; j < m; j++)
        q[j] *= scale;
}

/* The statistics of written weights, for the rare solve that renormalises. */
static drpo_qstats stats_of(const double *q, size_t m)
{
    drpo_qstats s = {sum_compensated(q, m), 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
    for (size_t j = 0; j < m; j++) {
        s.sum2 += q[j] * q[j];
        s.max = q[j] > s.max ? q[j] : s.max;
        s.support += q[j] > 0.0;
    }
    return s;
}

static int rule_finite(const drpo_qrule *r)
{
    return isfinite(r->t) && isfinite(r->c_top) && isfinite(r->c_below) && isfinite(r->c_at) &&
           isfinite(r->c_above) && isfinite(r->lambda) && isfinite(r->top_per_moved) &&
           isfinite(r->scale) && r->scale > 0.0;
}

/* 1 when the weights of a rule cannot overflow, even summed: q_j <= c_max
 * scale (p_j <= 1), m of them; and cannot all vanish: an argmax unit (gap
 * 0, mass at least p_top / m) gets c(0) scale times it.  Only then are they
 * written straight to the caller, because only then can nothing after the
 * write fail. */
static int rule_bounded(const drpo_qrule *r, size_t m, double p_top)
{
    double c_max = 1.0, c_0 = 1.0; /* EXP, EXP_PRECISE, STORED: exp(-u d) <= 1, exp(0) = 1 */
    if (r->kind == DRPO__Q_STEP) { /* (a deferred c_top grows by at most top_per_moved) */
        c_max = fmax(fmax(r->c_top + r->top_per_moved, r->c_below), fmax(r->c_at, r->c_above));
        c_0 = r->c_top;
    } else if (r->kind == DRPO__Q_RAMP) {
        c_max = c_0 = r->t;
    } else if (r->kind == DRPO__Q_RAMP_DIV) {
        c_max = c_0 = 1.0 + r->t / r->lambda;
    }
    return !r->unnormalised && isfinite(c_max * r->scale * (double)m) &&
           (c_0 * (p_top / (double)m)) * r->scale > 0.0;
}

/* D(q||p) from the pass's measure. */
static double divergence_of(const drpo_solution *sol, const drpo_qstats *qs)
{
    switch (sol->rule.divergence) {
    case DRPO__DIV_MAX_RATIO: return qs->max_ratio;
    case DRPO__DIV_ABS:
    case DRPO__DIV_CHI2: return 0.5 * qs->div;
    default: return sol->divergence;
    }
}

static void set_diag(drpo_objective *obj, int key, double v)
{
    obj->diag[key] = v;
    obj->diag_set |= 1u << key;
}

drpo_status drpo_objective_solve(drpo_objective *obj, size_t n, const double *loss,
                                 const double *base, double *weights, double *value)
{
    if (!obj)
        return DRPO_ERR_NULL;
    double base_sum = 1.0;
    loss_range range;
    memset(&range, 0, sizeof range);
    drpo_status st = check_args(obj, n, loss);
    if (st == DRPO_OK)
        st = reserve(obj, n);
    if (st == DRPO_OK)
        st = check_inputs(obj, n, loss, base, &base_sum, &range);
    if (st != DRPO_OK)
        return st;
    if (range.uniform)
        base = NULL; /* the same problem, and bitwise the same base */

    double l_max = range.max;
    int e = 0;
    if (range.mag > 0.0)
        frexp(range.mag, &e); /* mag * 2^-e in [0.5, 1) */
    double top = ldexp(l_max, -e);
    int fast = e >= -1021 && e <= 1021;
    double down = fast ? ldexp(1.0, -e) : 1.0; /* exact: 2^-e is a normal double */

    /* gap space: compact the support, renormalise the base */
    drpo_problem pb;
    size_t m = 0, tied = 0;
    double p_top = 0.0, mean_d = 0.0, d_max = 0.0, pu = 1.0 / (double)n;
    double *dd = obj->d, *pp = obj->p;
    pb.uniform = 0;
    pb.pu = pu;
    pb.first = NULL;
    /* a base on every unit, summing to 1 up to rounding (the trainer's
     * when prompts have different numbers of pairs), solved in place too:
     * no copy of the support, the scan's sums give what the copy's did */
    const drpo_base_scan *bs = &range.base;
    int in_place = fast && (!base || (base_sum == 1.0 && !bs->off_support));
    if (in_place) { /* the common case: the gaps are the losses, mapped on the fly */
        pb.x = loss;
        pb.top = top;
        pb.down = down;
        m = n;
        /* sum p d_j = sum p (top - l_0 2^-e) - p (l_j - l_0) 2^-e: both parts
         * of the size of the spread, so nearly equal losses lose no digits.
         * A base's moment is finite here (|l_j - l_0| < 2^1022, the base
         * sums to 1); a uniform scan's unscaled sum may overflow (losses
         * near 2^1021): then one more pass */
        if (base) {
            tied = bs->tied;
            p_top = bs->p_top;
            d_max = top - bs->l_min * down;
            mean_d = (top - loss[0] * down) * bs->sum - bs->moment * down;
        } else {
            const drpo_loss_scan *sc = &range.scan;
            pb.uniform = 1;
            pb.first = range.windowed ? &range.window : NULL;
            tied = (size_t)sc->at_max;
            p_top = sc->at_max * pu;
            d_max = top - sc->min * down;
            if (isfinite(sc->shifted_sum)) {
                mean_d = (top - loss[0] * down) - sc->shifted_sum * pu * down;
            } else {
                drpo_bsum sum = {{0.0, 0.0}, 0.0, 0};
                for (size_t i = 0; i < n; i++)
                    drpo__bsum_add(&sum, top - loss[i] * down);
                mean_d = drpo__bsum_value(&sum) * pu;
            }
        }
        mean_d = mean_d < 0.0 ? 0.0 : mean_d > d_max ? d_max : mean_d;
    } else { /* the gaps written out, on the support */
        pb.x = dd;
        pb.top = 0.0;
        pb.down = -1.0;
        if (fast) { /* (so a base, with zeros or summing to 1 within 1e-9 only) */
            drpo_support sp = drpo__base_support(n, loss, base, base_sum, top, down, dd, pp);
            m = sp.m;
            tied = sp.tied;
            p_top = sp.p_top;
            mean_d = sp.mean_d;
            d_max = sp.d_max;
        } else { /* losses near the ends of the exponent range: 2^-e is no double */
            for (size_t i = 0; i < n; i++) {
                if (base && base[i] == 0.0)
                    continue;
                double pi = base ? base[i] / base_sum : pu, d = top - ldexp(loss[i], -e);
                dd[m] = d;
                pp[m] = pi;
                d_max = d > d_max ? d : d_max;
                if (d == 0.0) {
                    p_top += pi;
                    tied++;
                }
                mean_d += pi * d;
                m++;
            }
        }
    }
    if (tied == m) /* all losses equal: exactly, whatever the base sums to in floating point */
        p_top = 1.0;
    pb.m = m;
    pb.p = pb.uniform ? NULL : in_place ? base : obj->p;
    pb.p_top = p_top;
    pb.mean_d = mean_d;
    pb.d_max = d_max;
    pb.form = obj->form;
    pb.param = obj->param;
    if (obj->form == DRPO__FORM_PENALTY) {
        pb.param = ldexp(obj->param, -e);
        if (isinf(pb.param))
            pb.param = DBL_MAX;
    }
    pb.pairs = obj->pairs;
    pb.scratch = obj->q;

    drpo_solution sol;
    memset(&sol, 0, sizeof sol);
    st = obj->ops->solve(&pb, &sol);
    if (st != DRPO_OK)
        return drpo__fail(obj->err, st, "%s solve failed: %s", obj->ops->name,
                          drpo_status_string(st));
    if (!isfinite(sol.value) || !rule_finite(&sol.rule))
        return drpo__fail(obj->err, DRPO_ERR_NUMERICAL, "%s solve produced no valid weights",
                          obj->ops->name);

    /* the weights go straight to the caller when they cover every unit and
     * the rule normalises them: then nothing after the write can fail */
    double *q = weights && m == n && rule_bounded(&sol.rule, m, pb.p_top) ? weights : obj->q;
    drpo_qstats qs = drpo__q_write(&pb, &sol.rule, q);
    if (!(qs.sum > 0.0) || !isfinite(qs.sum))
        return drpo__fail(obj->err, DRPO_ERR_NUMERICAL, "%s solve produced no valid weights",
                          obj->ops->name);
    double divergence = divergence_of(&sol, &qs);
    /* the value's part that the weights pass measured (0 where none) */
    sol.value += sol.rule.value_excess * qs.excess + sol.rule.value_deficit * qs.deficit;
    if (sol.value > 0.0) /* rounding: never above the maximum loss */
        sol.value = 0.0;
    /* the rule's normaliser leaves q summing to 1 within a few ulps; past
     * 64 ulps (a degenerate piece, weights below 2^-960) renormalise, but
     * never q = p, which must stay bitwise p when a huge penalty multiplies
     * D(q||p) */
    if (fabs(qs.sum - 1.0) > 64 * DBL_EPSILON) {
        renormalise(q, m, qs.sum);
        qs = stats_of(q, m);
        if (pb.uniform) /* the divergences take the base as an array */
            for (size_t j = 0; j < m; j++)
                pp[j] = pu;
        divergence = obj->ops->divergence(m, q, pb.uniform ? pp : pb.p);
    }

    /* commit: outputs and diagnostics */
    double v = l_max + ldexp(sol.value, e);
    obj->diag_set = 0;
    obj->m = m;
    obj->n = n;
    set_diag(obj, DRPO_DIAG_VALUE, v);
    set_diag(obj, DRPO_DIAG_MEAN, l_max - ldexp(mean_d, e));
    if (sol.has_eta) /* the lambda part kept apart: lambda * 2^-e may have been clamped */
        set_diag(obj, DRPO_DIAG_ETA,
                 l_max - ldexp(sol.eta, e) - (sol.eta_lambda ? sol.eta_lambda * obj->param : 0.0));
    if (sol.has_lambda)
        set_diag(obj, DRPO_DIAG_LAMBDA, obj->form == DRPO__FORM_PENALTY
                                            ? obj->param
                                            : ldexp(sol.lambda, e));
    set_diag(obj, DRPO_DIAG_ITERATIONS, sol.iterations);
    set_diag(obj, DRPO_DIAG_TIGHT, sol.tight);
    set_diag(obj, DRPO_DIAG_DIVERGENCE, divergence);
    set_diag(obj, DRPO_DIAG_ESS, 1.0 / qs.sum2);
    set_diag(obj, DRPO_DIAG_ESS_FRACTION, 1.0 / qs.sum2 / (double)n);
    set_diag(obj, DRPO_DIAG_MAX_WEIGHT, qs.max);
    set_diag(obj, DRPO_DIAG_SUPPORT, qs.support);
    /* degenerate: the worst case is the maximum loss (all mass on the argmax
     * units; every set gives each of them weight, so: no other unit has any) */
    set_diag(obj, DRPO_DIAG_DEGENERATE, qs.support == (double)tied);
    obj->solved = 1;

    if (weights && q != weights) { /* scatter back, zero off the support */
        size_t j = 0;
        for (size_t i = 0; i < n; i++)
            weights[i] = (base && base[i] == 0.0) ? 0.0 : q[j++];
    }
    if (value)
        *value = v;
    return DRPO_OK;
}

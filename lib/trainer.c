/* trainer.c - the robust training step, the weights-only path and full-data
 * evaluation (options: trainer_options.c; diagnostics and the convergence
 * test: convergence.c).
 *
 * Atomicity: everything that can fail (callbacks, non-finite values, the
 * objective, allocation) happens before the first write to parameters,
 * moments, duals or group weights; the optimiser measures its update once
 * without writing it, and only then applies it. */
#include "trainer.h"
#include "models/builtin.h"

#include <math.h>
#include <string.h>

/* ---- lifetime ----------------------------------------------------------- */

drpo_status drpo_trainer_create_with_allocator(drpo_trainer **out, drpo_model *m,
                                               drpo_objective *o, const drpo_allocator *alloc)
{
    if (!out)
        return DRPO_ERR_NULL;
    *out = NULL;
    if (!o)
        return DRPO_ERR_NULL;
    drpo_objective_config cfg;
    drpo__objective_config(o, &cfg);
    if (cfg.mode == DRPO_MODE_GROUP && cfg.groups == 0)
        return DRPO_ERR_STATE;
    drpo_trainer *t;
    drpo_status st = drpo__handle_new(alloc, sizeof *t, (void **)&t);
    if (st != DRPO_OK)
        return st;
    drpo_allocator a = t->alloc;
    t->model = m;
    t->obj = o;
    drpo__trainer_defaults(t);
    t->G = (size_t)cfg.groups;
    if (t->G) {
        /* group_w, next_group_w, group_sum, next_gdiag... in one block */
        size_t G = t->G;
        unsigned char *block = drpo__malloc_array(
            &a, G, 12 * sizeof(double) + sizeof(size_t) + sizeof(unsigned char));
        if (!block) {
            drpo__free(&a, t);
            return DRPO_ERR_NOMEM;
        }
        double *d = (double *)block;
        t->group_w = d;
        t->next_group_w = d + G;
        t->group_sum = d + 2 * G;
        t->group_tmp = d + 3 * G;  /* 3 G */
        t->gdiag = d + 6 * G;      /* 3 G: mean loss, weight, pairs */
        /* 3 G staging: weight, mean loss and pairs (the pairs are staged so
         * that drpo_trainer_evaluate may reuse group_pairs before a commit) */
        t->next_gdiag = d + 9 * G;
        t->group_pairs = (size_t *)(d + 12 * G);
        t->group_present = (unsigned char *)(t->group_pairs + G);
        for (size_t g = 0; g < G; g++)
            t->group_w[g] = 1.0 / (double)G;
    }
    *out = t;
    return DRPO_OK;
}

drpo_status drpo_trainer_create(drpo_trainer **out, drpo_model *m, drpo_objective *o)
{
    return drpo_trainer_create_with_allocator(out, m, o, NULL);
}

void drpo_trainer_free(drpo_trainer *t)
{
    if (!t)
        return;
    drpo_allocator a = t->alloc;
    drpo__free(&a, t->m1);
    drpo__free(&a, t->m2);
    drpo__free(&a, t->group_w);
    drpo__free(&a, t->pair_loss);
    drpo__free(&a, t->unit_loss);
    drpo__free(&a, t->grad);
    drpo__units_free(t);
    drpo__free(&a, t);
}

const char *drpo_trainer_last_error(const drpo_trainer *t)
{
    return t ? t->err : "trainer handle is NULL";
}

drpo_status drpo_trainer_set_progress(drpo_trainer *t, drpo_progress_fn fn, void *user)
{
    if (!t)
        return DRPO_ERR_NULL;
    t->progress = fn;
    t->progress_user = user;
    return DRPO_OK;
}

/* ---- scratch ------------------------------------------------------------ */

drpo_status drpo__trainer_unit_scratch(drpo_trainer *t, size_t units)
{
    if (units <= t->unit_cap)
        return DRPO_OK;
    double *u = drpo__malloc_array(&t->alloc, units, 4 * sizeof(double));
    if (!u)
        return drpo__fail(t->err, DRPO_ERR_NOMEM, "cannot allocate scratch for %zu units", units);
    drpo__free(&t->alloc, t->unit_loss);
    t->unit_loss = u;
    t->unit_base = u + units;
    t->unit_q = u + 2 * units;
    t->unit_comp = u + 3 * units;
    t->unit_cap = units;
    return DRPO_OK;
}

static drpo_status ensure_scratch(drpo_trainer *t, size_t pairs, size_t units)
{
    if (pairs > t->pair_cap) {
        double *p = drpo__malloc_array(&t->alloc, pairs, 2 * sizeof(double));
        if (!p)
            return drpo__fail(t->err, DRPO_ERR_NOMEM, "cannot allocate scratch for %zu pairs",
                              pairs);
        drpo__free(&t->alloc, t->pair_loss);
        t->pair_loss = p;
        t->pair_w = p + pairs;
        t->pair_cap = pairs;
    }
    drpo_status st = drpo__trainer_unit_scratch(t, units);
    if (st != DRPO_OK)
        return st;
    if (t->model && !t->grad) {
        t->grad = drpo__malloc_array(&t->alloc, t->model->n_params, sizeof(float));
        if (!t->grad)
            return drpo__fail(t->err, DRPO_ERR_NOMEM, "cannot allocate the gradient");
    }
    return DRPO_OK;
}

drpo_status drpo__trainer_moments(drpo_trainer *t)
{
    int k = drpo__optim_moments(t->opt.kind);
    size_t n = t->model ? t->model->n_params : 0;
    if (k >= 1 && !t->m1) {
        t->m1 = drpo__malloc_array(&t->alloc, n, sizeof(float));
        if (!t->m1)
            return drpo__fail(t->err, DRPO_ERR_NOMEM, "cannot allocate optimiser moments");
        memset(t->m1, 0, n * sizeof(float));
    }
    if (k >= 2 && !t->m2) {
        t->m2 = drpo__malloc_array(&t->alloc, n, sizeof(float));
        if (!t->m2)
            return drpo__fail(t->err, DRPO_ERR_NOMEM, "cannot allocate optimiser moments");
        memset(t->m2, 0, n * sizeof(float));
    }
    return DRPO_OK;
}

/* ---- the worst-case weights of a batch ---------------------------------- */

static void stage(drpo_trainer *t, int key, double v)
{
    t->next_diag[key] = v;
    t->next_diag_set |= 1u << key;
}

static drpo_status objective_failed(drpo_trainer *t, drpo_status st)
{
    return drpo__fail(t->err, st, "objective: %s", drpo_objective_last_error(t->obj));
}

static drpo_status check_config(drpo_trainer *t, const drpo_batch *b,
                                const drpo_objective_config *cfg)
{
    if (cfg->set != DRPO_SET_NONE && cfg->form == DRPO__FORM_NONE)
        return drpo__fail(t->err, DRPO_ERR_PARAM_UNSET,
                          "the objective's set needs its parameter before training");
    if ((size_t)cfg->groups != t->G)
        return drpo__fail(t->err, DRPO_ERR_STATE,
                          "the objective's group count changed after the trainer was created");
    if (cfg->mode == DRPO_MODE_GROUP && t->G == 0)
        return drpo__fail(t->err, DRPO_ERR_STATE,
                          "group mode needs DRPO_PARAM_GROUPS set before the trainer is created");
    if (t->G && b->max_group >= (int32_t)t->G)
        return drpo__fail(t->err, DRPO_ERR_PARAM_RANGE,
                          "the batch has group id %d but the objective has %zu groups",
                          (int)b->max_group, t->G);
    if (cfg->mode == DRPO_MODE_GROUP) {
        for (size_t j = 0; j < b->n; j++)
            if (b->group[j] < 0)
                return drpo__fail(t->err, DRPO_ERR_PARAM_RANGE,
                                  "group mode: pair %zu has no group", j);
        if (cfg->set != DRPO_SET_NONE && cfg->form == DRPO__FORM_PENALTY)
            return drpo__fail(t->err, DRPO_ERR_STATE,
                              "group mode keeps group weights in a ball: set a radius or level");
    }
    return DRPO_OK;
}

/* Group DRO weights: pairs of group g get w_g / (sum of present w) / pairs of g. */
static double group_weights(drpo_trainer *t, const drpo_batch *b,
                            const drpo_objective_config *cfg)
{
    double wp = 0.0, value = 0.0;
    for (size_t g = 0; g < t->G; g++) {
        t->group_present[g] = t->group_pairs[g] > 0;
        t->group_tmp[g] = t->group_present[g] ? t->group_sum[g] / (double)t->group_pairs[g] : 0.0;
        if (t->group_present[g]) {
            wp += t->group_w[g];
            value += t->group_w[g] * t->group_tmp[g];
        }
    }
    for (size_t j = 0; j < b->n; j++) {
        size_t g = (size_t)b->group[j];
        t->pair_w[j] = t->group_w[g] / wp / (double)t->group_pairs[g];
    }
    /* group_tmp[0, G) holds the losses; the update's scratch starts past it */
    drpo__group_update(cfg, t->G, t->group_w, t->group_tmp, t->group_present, t->next_group_w,
                       t->group_tmp + t->G);
    return value / wp;
}

/* Per-pair weights of the batch for the objective's mode; stages the dual
 * (or group weight) update and the diagnostics.  Changes no state. */
static drpo_status compute_weights(drpo_trainer *t, const drpo_batch *b, const double *loss)
{
    drpo_objective_config cfg;
    drpo__objective_config(t->obj, &cfg);
    drpo_status st = check_config(t, b, &cfg);
    drpo_units un;
    if (st == DRPO_OK)
        st = drpo__units_build(t, b, loss, &cfg, &un);
    if (st != DRPO_OK)
        return st;
    size_t n = b->n, U = un.U;
    const size_t *pu = un.pair_unit;
    double value, dual_grad = 0.0, eta = 0.0, lambda = 0.0;
    int has_eta = 0, has_lambda = 0, solved_units = 0;
    t->next_diag_set = 0;
    t->next_duals = t->duals;

    if (cfg.mode == DRPO_MODE_GROUP) {
        value = group_weights(t, b, &cfg);
    } else if (cfg.mode == DRPO_MODE_STOCHASTIC && cfg.set != DRPO_SET_NONE) {
        drpo_duals cur = t->duals;
        if (!cur.init) { /* start from the first batch's exact solution */
            st = drpo_objective_solve(t->obj, U, t->unit_loss, t->unit_base, NULL, NULL);
            if (st != DRPO_OK)
                return objective_failed(t, st);
            double scale = 0.0;
            for (size_t u = 0; u < U; u++)
                scale += t->unit_base[u] * fabs(t->unit_loss[u]);
            drpo__duals_init(&cur, &cfg, t->obj, scale);
        }
        value = drpo__duals_weights(&cur, &cfg, U, t->unit_loss, t->unit_base, t->unit_q,
                                    &t->next_duals, &dual_grad);
        for (size_t j = 0; j < n; j++) /* p_u a_u / pairs of u = a_u / N */
            t->pair_w[j] = t->unit_q[pu[j]] / un.N;
        drpo__duals_report(&cur, &cfg, &eta, &lambda, &has_lambda);
        has_eta = 1;
        stage(t, DRPO_TDIAG_DUAL_GRAD, dual_grad);
    } else { /* exact (and ERM in any mode) */
        st = drpo_objective_solve(t->obj, U, t->unit_loss, t->unit_base, t->unit_q, &value);
        if (st != DRPO_OK)
            return objective_failed(t, st);
        for (size_t j = 0; j < n; j++) { /* (a quotient by 1 is the same bits) */
            size_t c = un.count[pu[j]];
            t->pair_w[j] = c == 1 ? t->unit_q[pu[j]] : t->unit_q[pu[j]] / (double)c;
        }
        solved_units = !cfg.coll; /* (with one: rebuilt from every rank's pairs) */
        has_eta = drpo_objective_diag(t->obj, DRPO_DIAG_ETA, &eta) == DRPO_OK;
        has_lambda = drpo_objective_diag(t->obj, DRPO_DIAG_LAMBDA, &lambda) == DRPO_OK;
    }
    if (!isfinite(value))
        return drpo__fail(t->err, DRPO_ERR_NONFINITE, "the robust objective is not finite");
    /* Fix (issue 7, found by fuzz_api): stochastic chi-square with a
     * denormal penalty gave weights p (l - eta)+ / lambda = +inf with a
     * finite value, and drpo_trainer_weights returned them with DRPO_OK */
    for (size_t j = 0; j < n; j++)
        if (!isfinite(t->pair_w[j]))
            return drpo__fail(t->err, DRPO_ERR_NONFINITE,
                              "the weight of pair %zu is not finite (a penalty too small for the "
                              "losses?)", j);

    /* unit weights (over all ranks) normalised: ESS, max weight, divergence
     * (without a collective, an exact solve's are its q already) */
    if (!solved_units) {
        for (size_t u = 0; u < U; u++)
            t->unit_q[u] = 0.0;
        for (size_t j = 0; j < n; j++)
            t->unit_q[pu[j]] += t->pair_w[j];
    }
    for (size_t g = 0; g < t->G; g++)
        t->next_gdiag[g] = 0.0;
    /* group ids >= G are ignored (an objective without groups takes batches
     * that have them: G = 0 and next_gdiag is empty) */
    for (size_t j = 0; t->G && j < n; j++)
        if (b->group[j] >= 0 && (size_t)b->group[j] < t->G)
            t->next_gdiag[b->group[j]] += t->pair_w[j];
    if ((st = drpo__units_allreduce(t, &cfg, t->unit_q, U)) != DRPO_OK ||
        (st = drpo__units_allreduce(t, &cfg, t->next_gdiag, t->G)) != DRPO_OK)
        return st;
    double total = 0.0;
    for (size_t u = 0; u < U; u++)
        total += t->unit_q[u];
    double q2 = 0.0, qmax = 0.0;
    for (size_t u = 0; u < U; u++) {
        double q = total > 0.0 ? t->unit_q[u] / total : 0.0;
        t->unit_q[u] = q;
        q2 += q * q;
        qmax = q > qmax ? q : qmax;
    }
    stage(t, DRPO_TDIAG_ROBUST, value);
    stage(t, DRPO_TDIAG_MEAN_LOSS, un.mean);
    if (has_eta)
        stage(t, DRPO_TDIAG_ETA, eta);
    if (has_lambda)
        stage(t, DRPO_TDIAG_LAMBDA, lambda);
    stage(t, DRPO_TDIAG_ESS, q2 > 0.0 ? 1.0 / q2 : 0.0);
    stage(t, DRPO_TDIAG_MAX_WEIGHT, qmax);
    stage(t, DRPO_TDIAG_DIVERGENCE,
          drpo__set_ops(cfg.set)->divergence(U, t->unit_q, t->unit_base));
    stage(t, DRPO_TDIAG_UNITS, (double)U);

    /* per-group mean loss and share of the weight */
    for (size_t g = 0; g < t->G; g++) {
        t->next_gdiag[g] = cfg.mode == DRPO_MODE_GROUP ? t->next_group_w[g]
                                                       : (total > 0.0 ? t->next_gdiag[g] / total
                                                                      : 0.0);
        t->next_gdiag[t->G + g] = t->group_pairs[g] ? t->group_sum[g] / (double)t->group_pairs[g]
                                                    : NAN;
        t->next_gdiag[2 * t->G + g] = (double)t->group_pairs[g];
    }
    t->next_group_mode = cfg.mode == DRPO_MODE_GROUP;
    t->next_stochastic = cfg.mode == DRPO_MODE_STOCHASTIC && cfg.set != DRPO_SET_NONE;
    return DRPO_OK;
}

/* Apply what compute_weights staged and count a step. */
static void commit_staged(drpo_trainer *t)
{
    if (t->next_stochastic)
        t->duals = t->next_duals;
    if (t->next_group_mode)
        memcpy(t->group_w, t->next_group_w, t->G * sizeof *t->group_w);
    for (size_t g = 0; g < t->G; g++) {
        t->gdiag[3 * g] = t->next_gdiag[t->G + g];
        t->gdiag[3 * g + 1] = t->next_gdiag[g];
        t->gdiag[3 * g + 2] = t->next_gdiag[2 * t->G + g];
    }
    double code = t->diag[DRPO_TDIAG_CALLBACK_CODE], by = t->diag[DRPO_TDIAG_CONVERGED_BY];
    unsigned keep = t->diag_set & ((1u << DRPO_TDIAG_CONVERGED_BY) | (1u << DRPO_TDIAG_CALLBACK_CODE));
    memcpy(t->diag, t->next_diag, sizeof t->diag);
    t->diag[DRPO_TDIAG_CALLBACK_CODE] = code;
    t->diag[DRPO_TDIAG_CONVERGED_BY] = by;
    t->diag_set = t->next_diag_set | keep;

    double f = t->diag[DRPO_TDIAG_ROBUST];
    double beta = t->test.smoothing;
    t->smoothed = t->hist_len == 0 ? f : beta * t->smoothed + (1.0 - beta) * f;
    t->history[t->hist_pos] = t->smoothed;
    t->hist_pos = (t->hist_pos + 1) % (DRPO__MAX_WINDOW + 1);
    if (t->hist_len < DRPO__MAX_WINDOW + 1)
        t->hist_len++;
    t->steps++;
    t->diag[DRPO_TDIAG_STEPS] = (double)t->steps;
    t->diag[DRPO_TDIAG_SMOOTHED] = t->smoothed;
    t->diag_set |= (1u << DRPO_TDIAG_STEPS) | (1u << DRPO_TDIAG_SMOOTHED);
    t->staged = 0;
}

static drpo_status check_losses(drpo_trainer *t, size_t n, const double *loss, const char *who)
{
    for (size_t j = 0; j < n; j++)
        if (!isfinite(loss[j]))
            return drpo__fail(t->err, DRPO_ERR_NONFINITE, "%s: loss of pair %zu is %g", who, j,
                              loss[j]);
    return DRPO_OK;
}

static drpo_status run_callback(drpo_trainer *t, int rc, const char *which)
{
    if (rc == 0)
        return DRPO_OK;
    t->diag[DRPO_TDIAG_CALLBACK_CODE] = rc;
    t->diag_set |= 1u << DRPO_TDIAG_CALLBACK_CODE;
    /* Fix (issue 7, tests/test_faults.c): a built-in model whose scratch
     * cannot grow is an allocation failure of the library, not a host error */
    if (rc == DRPO_BUILTIN_NOMEM && t->model && t->model->builtin)
        return drpo__fail(t->err, DRPO_ERR_NOMEM, "%s: the built-in model cannot allocate scratch",
                          which);
    return drpo__fail(t->err, DRPO_ERR_CALLBACK, "%s callback returned %d", which, rc);
}

/* Gradient of sum_j w_j loss_j into t->grad; its squared norm in *norm2.
 * With gmax (and tmax) not NULL, also the largest |gradient| (and
 * |parameter|, read in the same pass: the host may have changed the
 * parameters since the last step) as float bits, for the optimiser's bound. */
static drpo_status gradient(drpo_trainer *t, const drpo_batch *b, double *norm2, uint32_t *gmax,
                            uint32_t *tmax)
{
    drpo_model *m = t->model;
    if (!t->grad_clear) /* (after a committed update it is: no pass) */
        memset(t->grad, 0, m->n_params * sizeof(float));
    t->grad_clear = 0;
    drpo_status st =
        run_callback(t, m->cb.backward(m->user, m->params, b, t->pair_w, t->grad), "backward");
    if (st != DRPO_OK)
        return st;
    double s;
    uint32_t gm, tm;
    drpo__grad_stats(m->n_params, t->grad, tmax ? m->params : NULL, &s, &gm, &tm);
    if (gmax)
        *gmax = gm;
    if (tmax)
        *tmax = tm;
    if (!isfinite(s)) {
        for (size_t i = 0; i < m->n_params; i++)
            if (!isfinite(t->grad[i]))
                return drpo__fail(t->err, DRPO_ERR_NONFINITE,
                                  "backward: gradient of parameter %zu is %g", i,
                                  (double)t->grad[i]);
        return drpo__fail(t->err, DRPO_ERR_NONFINITE, "the gradient norm overflows");
    }
    *norm2 = s;
    return DRPO_OK;
}

static drpo_status forward(drpo_trainer *t, const drpo_batch *b)
{
    drpo_model *m = t->model;
    drpo_status st =
        run_callback(t, m->cb.forward(m->user, m->params, b, t->pair_loss), "forward");
    if (st != DRPO_OK)
        return st;
    return check_losses(t, b->n, t->pair_loss, "forward");
}

/* keep_staged: drpo_trainer_evaluate changes no state, so it must not drop
 * what drpo_trainer_weights staged for a commit (fix: it used to). */
static drpo_status begin(drpo_trainer *t, const drpo_batch *b, int need_model, int keep_staged)
{
    if (need_model && !t->model)
        return drpo__fail(t->err, DRPO_ERR_STATE, "this trainer has no model (weights only)");
    drpo_objective_config cfg;
    drpo__objective_config(t->obj, &cfg);
    /* with a collective, a rank whose shard is empty still takes part in the
     * collectives (and the host's all-reduce in backward); the global batch
     * must not be empty, which every rank finds out together */
    if (b->n == 0 && !cfg.coll)
        return drpo__fail(t->err, DRPO_ERR_SIZE, "the batch is empty");
    if (!keep_staged)
        t->staged = 0;
    return ensure_scratch(t, b->n, b->n_units);
}

drpo_status drpo_trainer_step(drpo_trainer *t, const drpo_batch *b)
{
    if (!t || !b)
        return DRPO_ERR_NULL;
    drpo_status st = begin(t, b, 1, 0);
    if (st == DRPO_OK)
        st = drpo__trainer_moments(t);
    if (st != DRPO_OK)
        return st;
    if (t->opt.schedule == DRPO_SCHED_COSINE && !(t->opt.total_steps > t->opt.warmup))
        return drpo__fail(t->err, DRPO_ERR_PARAM_RANGE,
                          "the cosine schedule needs total steps > warm-up steps");
    double g2;
    uint32_t gmax, tmax;
    if ((st = forward(t, b)) != DRPO_OK || (st = compute_weights(t, b, t->pair_loss)) != DRPO_OK ||
        (st = gradient(t, b, &g2, &gmax, &tmax)) != DRPO_OK)
        return st;
    double gnorm = sqrt(g2), clip = t->opt.clip_norm;
    double gscale = clip > 0.0 && gnorm > clip ? clip / gnorm : 1.0;
    double lr = drpo__lr_at(&t->opt, t->steps);
    drpo_model *m = t->model;
    drpo_optim_stats os;
    /* Atomicity: an update that would make a value non-finite is refused
     * before anything is written.  When bounds on the gradient, parameters
     * and moments prove every new value finite (the common case), the
     * update is applied in one pass; otherwise it is measured first. */
    if (!t->moments_max_known ||
        !drpo__optim_bounded(&t->opt, t->steps, lr, gscale, gmax, tmax, t->m1_max, t->m2_max)) {
        drpo__optim_update(&t->opt, m->n_params, m->params, t->grad, gscale, t->m1, t->m2,
                           t->steps, lr, 0, &os);
        if (!os.finite)
            return drpo__fail(t->err, DRPO_ERR_NONFINITE,
                              "the update would make a parameter or moment non-finite");
    }
    drpo__optim_update(&t->opt, m->n_params, m->params, t->grad, gscale, t->m1, t->m2, t->steps,
                       lr, 1, &os);
    t->grad_clear = 1;
    t->m1_max = os.m1_max;
    t->m2_max = os.m2_max;
    t->moments_max_known = 1;
    stage(t, DRPO_TDIAG_GRAD_NORM, gnorm);
    stage(t, DRPO_TDIAG_UPDATE_NORM, sqrt(os.update_norm2));
    stage(t, DRPO_TDIAG_PARAM_NORM, sqrt(os.param_norm2));
    stage(t, DRPO_TDIAG_LR, lr);
    commit_staged(t);
    return DRPO_OK;
}

drpo_status drpo_trainer_weights(drpo_trainer *t, const drpo_batch *b, const double *pair_loss,
                                 double *pair_weight, double *robust_value)
{
    if (!t || !b || !pair_loss)
        return DRPO_ERR_NULL;
    drpo_status st = begin(t, b, 0, 0);
    if (st == DRPO_OK)
        st = check_losses(t, b->n, pair_loss, "weights");
    if (st == DRPO_OK)
        st = compute_weights(t, b, pair_loss);
    if (st != DRPO_OK)
        return st;
    /* Fix (issue 7, found by make check-asan, UBSan): a rank's empty shard
     * (b->n = 0, no scratch yet) passed NULL to memcpy, undefined even for
     * 0 bytes */
    if (pair_weight && b->n)
        memcpy(pair_weight, t->pair_w, b->n * sizeof *pair_weight);
    if (robust_value)
        *robust_value = t->next_diag[DRPO_TDIAG_ROBUST];
    t->staged = 1;
    return DRPO_OK;
}

drpo_status drpo_trainer_commit(drpo_trainer *t)
{
    if (!t)
        return DRPO_ERR_NULL;
    if (!t->staged)
        return drpo__fail(t->err, DRPO_ERR_STATE,
                          "nothing to commit: call drpo_trainer_weights first");
    commit_staged(t);
    return DRPO_OK;
}

/* ---- full-data evaluation ----------------------------------------------- */

drpo_status drpo_trainer_evaluate(drpo_trainer *t, const drpo_batch *b, double *robust_value,
                                  double *grad_norm)
{
    if (!t || !b)
        return DRPO_ERR_NULL;
    drpo_status st = begin(t, b, 1, 1);
    if (st != DRPO_OK || (st = forward(t, b)) != DRPO_OK)
        return st;
    drpo_objective_config cfg;
    drpo__objective_config(t->obj, &cfg);
    drpo_units un;
    if ((st = check_config(t, b, &cfg)) != DRPO_OK ||
        (st = drpo__units_build(t, b, t->pair_loss, &cfg, &un)) != DRPO_OK)
        return st;
    double value;
    if (cfg.mode == DRPO_MODE_GROUP) {
        /* the worst case over groups: the set's ball around the uniform
         * prior of the groups present (no set: the worst group) */
        size_t k = 0;
        double *loss = t->group_tmp, *base = t->group_tmp + t->G, *q = t->group_tmp + 2 * t->G;
        size_t present = 0;
        for (size_t g = 0; g < t->G; g++)
            present += t->group_pairs[g] > 0;
        for (size_t g = 0; g < t->G; g++)
            if (t->group_pairs[g]) {
                loss[k] = t->group_sum[g] / (double)t->group_pairs[g];
                base[k++] = 1.0 / (double)present;
            }
        if (cfg.set == DRPO_SET_NONE) {
            size_t arg = 0;
            for (size_t i = 1; i < k; i++)
                arg = loss[i] > loss[arg] ? i : arg;
            for (size_t i = 0; i < k; i++)
                q[i] = i == arg;
            value = loss[arg];
        } else if ((st = drpo_objective_solve(t->obj, k, loss, base, q, &value)) != DRPO_OK) {
            return objective_failed(t, st);
        }
        /* weight of each group into `base` (free after the solve; base[g]
         * lies below q[i] for i <= g), not into the staging next_group_w */
        for (size_t g = 0, i = 0; g < t->G; g++)
            base[g] = t->group_pairs[g] ? q[i++] : 0.0;
        for (size_t j = 0; j < b->n; j++) {
            size_t g = (size_t)b->group[j];
            t->pair_w[j] = base[g] / (double)t->group_pairs[g];
        }
    } else {
        st = drpo_objective_solve(t->obj, un.U, t->unit_loss, t->unit_base, t->unit_q, &value);
        if (st != DRPO_OK)
            return objective_failed(t, st);
        for (size_t j = 0; j < b->n; j++)
            t->pair_w[j] = t->unit_q[un.pair_unit[j]] / (double)un.count[un.pair_unit[j]];
    }
    double g2;
    if ((st = gradient(t, b, &g2, NULL, NULL)) != DRPO_OK)
        return st;
    if (robust_value)
        *robust_value = value;
    if (grad_norm)
        *grad_norm = sqrt(g2);
    return DRPO_OK;
}

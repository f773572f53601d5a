/*
 * drpo-bench.c - the shifted-preference benchmark end to end: ERM against
 * every robust set (KL, chi-square, CVaR, TV) on the three problems of
 * robust preference learning, with the data of synth.h.
 *
 *   1. reward estimation   a linear Bradley-Terry reward r(x, y) = theta . phi
 *                          fitted to the training pairs; measured by the
 *                          accuracy of its preferences on the test sets;
 *   2. policy optimisation a log-linear softmax policy over each prompt's
 *                          candidates, trained against the reward learned by
 *                          ERM in (1) with a KL penalty to the reference;
 *                          measured by the true reward it gains over the
 *                          reference (and its KL to the reference);
 *   3. DPO                 a log-linear DPO policy fitted to the training
 *                          pairs directly; measured as in (2).
 *
 * Every problem trains on the chat/code-dominated training mixture.  The
 * radius (or level) of each set is chosen from a small grid on a validation
 * split drawn from the training distribution, by the worst domain's
 * validation accuracy (1), learned-reward objective (2) or DPO loss (3);
 * the test sets are used for the tables only.
 *
 * Usage: drpo-bench [--out DIR] [--seed S] [--mode exact|stochastic] [--help]
 * Writes SVG plots into DIR (training curves and per-domain results) and
 * DIR/results.txt (the tables).
 */
#include "plot.h"
#include "synth.h"

#include <drpo.h>

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define D SYNTH_DIM
#define G SYNTH_DOMAINS
#define BETA 1.0      /* KL penalty of the policy step and DPO's beta */
#define MAX_EPOCHS 64
#define MAX_GRID 6

/* ---- the methods and their grids ------------------------------------------ */

typedef struct method {
    const char *name;
    int32_t set;
    int32_t key; /* DRPO_PARAM_RADIUS or _LEVEL; 0 for ERM */
    const char *param_name;
    size_t n_grid;
    double grid[MAX_GRID];
} method;

static const method methods[] = {
    {"ERM", DRPO_SET_NONE, 0, "-", 1, {0}},
    {"KL", DRPO_SET_KL, DRPO_PARAM_RADIUS, "rho", 5, {0.1, 0.25, 0.5, 1.0, 2.0}},
    {"chi2", DRPO_SET_CHI2, DRPO_PARAM_RADIUS, "rho", 5, {0.25, 0.5, 1.0, 2.0, 4.0}},
    {"CVaR", DRPO_SET_CVAR, DRPO_PARAM_LEVEL, "alpha", 5, {0.5, 0.3, 0.2, 0.1, 0.05}},
    {"TV", DRPO_SET_TV, DRPO_PARAM_RADIUS, "rho", 5, {0.05, 0.1, 0.2, 0.3, 0.5}},
};
#define N_METHODS (sizeof methods / sizeof methods[0])

/* ---- training ------------------------------------------------------------- */

typedef struct run_opts {
    int32_t mode;         /* DRPO_MODE_EXACT or _STOCHASTIC (TV and ERM: exact) */
    int32_t optimizer;    /* DRPO_OPT_* */
    size_t batch_prompts; /* prompts per minibatch */
    int epochs;
    double lr, weight_decay;
    uint64_t seed;        /* minibatch order */
} run_opts;

/* Per-epoch record of one training run (index 0: before training). */
typedef struct curve {
    int n;
    double robust[MAX_EPOCHS + 1]; /* the exact robust objective on all training data */
    double mean[MAX_EPOCHS + 1];   /* the mean loss on all training data */
    double share[MAX_EPOCHS + 1][G]; /* each domain's share of the robust weight */
} curve;

/* A batch of the given prompts of a split: all their pairs (per_pair) or
 * one entry per prompt.  The prompt index is the unit's key, its domain the
 * group. */
static drpo_status fill_batch(drpo_batch *b, const synth_split *s, int per_pair,
                              const size_t *prompts, size_t n)
{
    drpo_batch_clear(b);
    drpo_status st = DRPO_OK;
    for (size_t i = 0; i < n && st == DRPO_OK; i++) {
        size_t p = prompts[i];
        if (!per_pair) {
            st = drpo_batch_add_key(b, p, s->domain[p], (int64_t)p);
            continue;
        }
        for (size_t h = s->pair_offsets[p]; h < s->pair_offsets[p + 1] && st == DRPO_OK; h++)
            st = drpo_batch_add_key(b, p, s->domain[p], (int64_t)h);
    }
    return st;
}

static drpo_status make_objective(drpo_objective **o, const method *me, double param,
                                  int32_t mode)
{
    drpo_status st = drpo_objective_create(o, me->set);
    if (st == DRPO_OK && me->key)
        st = drpo_objective_set(*o, me->key, param);
    if (st == DRPO_OK && me->set != DRPO_SET_NONE && me->set != DRPO_SET_TV)
        st = drpo_objective_set(*o, DRPO_PARAM_MODE, mode);
    if (st == DRPO_OK) /* per-domain diagnostics */
        st = drpo_objective_set(*o, DRPO_PARAM_GROUPS, G);
    return st;
}

/* Train model m on split s with method me at parameter param; record the
 * curve.  The model's parameters are where training starts. */
static drpo_status train(drpo_model *m, const method *me, double param, const synth_split *s,
                         int per_pair, const run_opts *o, curve *c)
{
    drpo_objective *obj = NULL, *erm = NULL;
    drpo_trainer *t = NULL, *mean_t = NULL;
    drpo_batch *b = NULL, *all = NULL;
    size_t np = s->n_prompts, *order = malloc(np * sizeof *order);
    drpo_status st = order ? DRPO_OK : DRPO_ERR_NOMEM;
    if (st == DRPO_OK)
        st = make_objective(&obj, me, param, o->mode);
    if (st == DRPO_OK)
        st = make_objective(&erm, &methods[0], 0.0, DRPO_MODE_EXACT);
    if (st == DRPO_OK)
        st = drpo_trainer_create(&t, m, obj);
    if (st == DRPO_OK) /* a second trainer on the same model measures the mean loss */
        st = drpo_trainer_create(&mean_t, m, erm);
    if (st == DRPO_OK)
        st = drpo_trainer_set(t, DRPO_TRAIN_OPTIMIZER, o->optimizer);
    if (st == DRPO_OK)
        st = drpo_trainer_set(t, DRPO_TRAIN_LR, o->lr);
    if (st == DRPO_OK)
        st = drpo_trainer_set(t, DRPO_TRAIN_WEIGHT_DECAY, o->weight_decay);
    if (st == DRPO_OK)
        st = drpo_batch_create(&b);
    if (st == DRPO_OK)
        st = drpo_batch_create(&all);
    for (size_t i = 0; i < np && order; i++)
        order[i] = i;
    if (st == DRPO_OK)
        st = fill_batch(all, s, per_pair, order, np);

    synth_rng rng;
    synth_rng_seed(&rng, o->seed);
    c->n = 0;
    for (int e = 0; st == DRPO_OK && e <= o->epochs; e++) {
        double share[G] = {0};
        size_t steps = 0;
        for (size_t i = np; e > 0 && i > 1; i--) { /* Fisher-Yates */
            size_t j = (size_t)(synth_rng_next(&rng) % i), tmp = order[i - 1];
            order[i - 1] = order[j];
            order[j] = tmp;
        }
        for (size_t at = 0; e > 0 && at < np && st == DRPO_OK; at += o->batch_prompts, steps++) {
            size_t n = np - at < o->batch_prompts ? np - at : o->batch_prompts;
            st = fill_batch(b, s, per_pair, order + at, n);
            if (st == DRPO_OK)
                st = drpo_trainer_step(t, b);
            for (int g = 0; g < G && st == DRPO_OK; g++) {
                double w;
                drpo_trainer_group_diag(t, g, DRPO_GDIAG_WEIGHT, &w);
                share[g] += w;
            }
        }
        if (st == DRPO_OK)
            st = drpo_trainer_evaluate(t, all, &c->robust[e], NULL);
        if (st == DRPO_OK)
            st = drpo_trainer_evaluate(mean_t, all, &c->mean[e], NULL);
        for (int g = 0; g < G; g++) /* before training: the base weights */
            c->share[e][g] = steps ? share[g] / (double)steps : NAN;
        c->n = e + 1;
    }
    if (st != DRPO_OK)
        fprintf(stderr, "drpo-bench: training %s: %s (%s)\n", me->name, drpo_status_string(st),
                t ? drpo_trainer_last_error(t) : "");
    drpo_batch_free(all);
    drpo_batch_free(b);
    drpo_trainer_free(mean_t);
    drpo_trainer_free(t);
    drpo_objective_free(erm);
    drpo_objective_free(obj);
    free(order);
    return st;
}

/* Running means of two quantities, overall and per domain. */
typedef struct domain_means {
    double sum[2], n, dom_sum[G][2], dom_n[G];
} domain_means;

static void means_add(domain_means *m, int g, double a, double b)
{
    m->sum[0] += a;
    m->sum[1] += b;
    m->n++;
    m->dom_sum[g][0] += a;
    m->dom_sum[g][1] += b;
    m->dom_n[g]++;
}

/* The means, overall and per domain (NAN for a domain without data). */
static void means_get(const domain_means *m, double *a, double *b, double *dom_a, double *dom_b)
{
    *a = m->sum[0] / m->n;
    *b = m->sum[1] / m->n;
    for (int g = 0; g < G; g++) {
        dom_a[g] = m->dom_n[g] ? m->dom_sum[g][0] / m->dom_n[g] : NAN;
        dom_b[g] = m->dom_n[g] ? m->dom_sum[g][1] / m->dom_n[g] : NAN;
    }
}

/* ---- measuring a reward model ---------------------------------------------- */

/* Preference accuracy and mean BT loss of the reward theta . phi on a split,
 * overall and per domain (NAN for a domain without pairs).  theta_ref, if
 * given, is subtracted first and the difference scaled (DPO's implied
 * reward beta (theta - theta_ref) . phi). */
typedef struct pair_metrics {
    double acc, loss, acc_dom[G], loss_dom[G];
} pair_metrics;

static void measure_pairs(const float *theta, const float *theta_ref, double scale,
                          const synth_split *s, pair_metrics *pm)
{
    float eff[D];
    for (int j = 0; j < D; j++)
        eff[j] = (float)(scale * (theta[j] - (theta_ref ? theta_ref[j] : 0.0f)));
    double *margin = malloc(s->n_pairs * sizeof *margin);
    domain_means m = {0};
    if (!margin || drpo_linear_scores(eff, D, s->n_pairs, s->diff, margin) != DRPO_OK) {
        fprintf(stderr, "drpo-bench: out of memory\n");
        exit(1);
    }
    for (size_t h = 0; h < s->n_pairs; h++) {
        double ok = margin[h] > 0 ? 1.0 : margin[h] == 0 ? 0.5 : 0.0;
        double l = margin[h] > 0 ? log1p(exp(-margin[h])) : -margin[h] + log1p(exp(margin[h]));
        means_add(&m, s->domain[s->pair_prompt[h]], ok, l);
    }
    means_get(&m, &pm->acc, &pm->loss, pm->acc_dom, pm->loss_dom);
    free(margin);
}

/* The largest (or smallest) of a per-domain array, ignoring NaN. */
static double worst_of(const double *v, int largest, int *arg)
{
    double w = NAN;
    for (int g = 0; g < G; g++)
        if (!isnan(v[g]) && (isnan(w) || (largest ? v[g] > w : v[g] < w))) {
            w = v[g];
            if (arg)
                *arg = g;
        }
    return w;
}

/* ---- measuring a policy ------------------------------------------------------ */

/* A softmax policy model over a split's candidates, used only to measure a
 * policy pi_theta: E_pi r and KL(pi || pi_ref) per prompt. */
typedef struct policy_probe {
    const synth_split *s;
    drpo_model *m;
    double *ref_reward; /* [n_prompts] E_{pi_ref} r* */
} policy_probe;

static drpo_status probe_create(policy_probe *p, const synth_split *s, const float *theta_ref,
                                const double *reward)
{
    p->s = s;
    p->ref_reward = malloc(s->n_prompts * sizeof *p->ref_reward);
    drpo_status st = p->ref_reward ? DRPO_OK : DRPO_ERR_NOMEM;
    if (st == DRPO_OK)
        st = drpo_softmax_policy_create(&p->m, D, s->n_prompts, s->offsets, s->features, reward,
                                        theta_ref, BETA);
    if (st == DRPO_OK)
        memcpy(drpo_model_params(p->m), theta_ref, D * sizeof(float));
    for (size_t i = 0; i < s->n_prompts && st == DRPO_OK; i++)
        st = drpo_softmax_policy_stats(p->m, i, s->true_reward, &p->ref_reward[i], NULL);
    return st;
}

static void probe_free(policy_probe *p)
{
    drpo_model_free(p->m);
    free(p->ref_reward);
}

/* Mean reward and KL to the reference, overall and per domain.  With
 * reward NULL: the true reward's gain over the reference policy; otherwise
 * the mean of the given per-candidate reward. */
typedef struct policy_metrics {
    double gain, kl, gain_dom[G], kl_dom[G];
} policy_metrics;

static void measure_policy(policy_probe *p, const float *theta, const double *reward,
                           policy_metrics *pm)
{
    const synth_split *s = p->s;
    memcpy(drpo_model_params(p->m), theta, D * sizeof(float));
    domain_means m = {0};
    for (size_t i = 0; i < s->n_prompts; i++) {
        double er, k;
        drpo_softmax_policy_stats(p->m, i, reward ? reward : s->true_reward, &er, &k);
        if (!reward)
            er -= p->ref_reward[i];
        means_add(&m, s->domain[i], er, k);
    }
    means_get(&m, &pm->gain, &pm->kl, pm->gain_dom, pm->kl_dom);
}

/* ---- output --------------------------------------------------------------- */

static FILE *results_file; /* the tables go to stdout and here */

static void out(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    if (results_file) {
        va_start(ap, fmt);
        vfprintf(results_file, fmt, ap);
        va_end(ap);
    }
}

static void die(const char *what, drpo_status st)
{
    fprintf(stderr, "drpo-bench: %s: %s\n", what, drpo_status_string(st));
    exit(1);
}

/* ---- the three experiments --------------------------------------------------- */

/* What each method ends with: the chosen parameter, the validation
 * criterion, the curve of the chosen run and its parameters. */
typedef struct result {
    double param, criterion;
    curve curve;
    float theta[D];
} result;

/* Keep a grid point's run if its validation criterion beats the best so far
 * (lower is better when `lower`). */
static void keep_best(result *r, double crit, int lower, double param, const curve *c,
                      drpo_model *m)
{
    if (lower ? !(crit < r->criterion) : !(crit > r->criterion))
        return;
    r->criterion = crit;
    r->param = param;
    r->curve = *c;
    memcpy(r->theta, drpo_model_params(m), sizeof r->theta);
}

/* The test measures of a reward (experiment 1) or a policy (2, 3). */
typedef struct test_pairs {
    pair_metrics id, ood, dom[G];
} test_pairs;

typedef struct test_policy {
    policy_metrics id, ood, dom[G];
} test_policy;

/* Everything the experiments share. */
typedef struct bench_ctx {
    synth_bench data;
    run_opts reward_opts, policy_opts;
    policy_probe probe_id, probe_ood, probe_dom[G]; /* true-reward probes on the test sets */
} bench_ctx;

/* Worst-domain accuracy over the per-domain test sets. */
static double worst_test_acc(const test_pairs *tp, int *arg)
{
    double acc[G];
    for (int g = 0; g < G; g++)
        acc[g] = tp->dom[g].acc;
    return worst_of(acc, 0, arg);
}

static double worst_test_gain(const test_policy *tp, int *arg)
{
    double gain[G];
    for (int g = 0; g < G; g++)
        gain[g] = tp->dom[g].gain;
    return worst_of(gain, 0, arg);
}

static void test_policy_measure(bench_ctx *cx, const float *theta, test_policy *tp)
{
    measure_policy(&cx->probe_id, theta, NULL, &tp->id);
    measure_policy(&cx->probe_ood, theta, NULL, &tp->ood);
    for (int g = 0; g < G; g++)
        measure_policy(&cx->probe_dom[g], theta, NULL, &tp->dom[g]);
}

/* Experiment 1: the linear Bradley-Terry reward.  Criterion: the smallest
 * per-domain validation accuracy (higher is better). */
static void reward_estimation(bench_ctx *cx, result *res, test_pairs *tp)
{
    const synth_split *tr = &cx->data.train;
    for (size_t k = 0; k < N_METHODS; k++) {
        const method *me = &methods[k];
        res[k].criterion = -INFINITY;
        for (size_t gi = 0; gi < me->n_grid; gi++) {
            drpo_model *m = NULL;
            curve c;
            drpo_status st = drpo_pairwise_linear_create(&m, D, tr->n_pairs, tr->diff,
                                                         DRPO_LOSS_BT, 0.0, 0.0, NULL);
            if (st != DRPO_OK)
                die("reward model", st);
            if ((st = train(m, me, me->grid[gi], tr, 1, &cx->reward_opts, &c)) != DRPO_OK)
                exit(1);
            pair_metrics val;
            measure_pairs(drpo_model_params(m), NULL, 1.0, &cx->data.val, &val);
            double crit = worst_of(val.acc_dom, 0, NULL);
            keep_best(&res[k], crit, 0, me->grid[gi], &c, m);
            drpo_model_free(m);
        }
        measure_pairs(res[k].theta, NULL, 1.0, &cx->data.test_id, &tp[k].id);
        measure_pairs(res[k].theta, NULL, 1.0, &cx->data.test_ood, &tp[k].ood);
        for (int g = 0; g < G; g++)
            measure_pairs(res[k].theta, NULL, 1.0, &cx->data.test_domain[g], &tp[k].dom[g]);
    }
}

/* The learned reward theta_r . phi of every candidate of a split, centred
 * per prompt on its mean under the reference policy, so that a prompt's
 * policy loss is minus its improvement over the reference (a baseline: the
 * robust weights then follow how little a prompt improves, not how good its
 * candidates happen to be). */
static double *learned_rewards(const synth_split *s, const float *theta_r, const float *theta_ref)
{
    size_t rows = s->offsets[s->n_prompts];
    double *r = malloc(rows * sizeof *r), *ref = malloc(rows * sizeof *ref);
    if (!r || !ref || drpo_linear_scores(theta_r, D, rows, s->features, r) != DRPO_OK ||
        drpo_linear_scores(theta_ref, D, rows, s->features, ref) != DRPO_OK) {
        fprintf(stderr, "drpo-bench: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < s->n_prompts; i++) {
        size_t a = s->offsets[i], k = s->offsets[i + 1] - a;
        double top = -INFINITY, z = 0, mean = 0;
        for (size_t c = 0; c < k; c++)
            top = fmax(top, ref[a + c]);
        for (size_t c = 0; c < k; c++) {
            double p = exp(ref[a + c] - top);
            z += p;
            mean += p * r[a + c];
        }
        for (size_t c = 0; c < k; c++)
            r[a + c] -= mean / z;
    }
    free(ref);
    return r;
}

/* Experiment 2: the policy step against the ERM reward of experiment 1.
 * Criterion: the smallest per-domain validation objective
 * E_pi r - beta KL(pi || pi_ref) under the learned reward (higher is
 * better): the true reward is not available for model selection. */
static void policy_optimisation(bench_ctx *cx, const float *theta_r, result *res,
                                test_policy *tp)
{
    const synth_split *tr = &cx->data.train, *va = &cx->data.val;
    const float *ref = cx->data.theta_ref;
    double *r_train = learned_rewards(tr, theta_r, ref), *r_val = learned_rewards(va, theta_r, ref);
    policy_probe vp;
    drpo_status st = probe_create(&vp, va, ref, r_val);
    if (st != DRPO_OK)
        die("validation probe", st);
    for (size_t k = 0; k < N_METHODS; k++) {
        const method *me = &methods[k];
        res[k].criterion = -INFINITY;
        for (size_t gi = 0; gi < me->n_grid; gi++) {
            drpo_model *m = NULL;
            curve c;
            st = drpo_softmax_policy_create(&m, D, tr->n_prompts, tr->offsets, tr->features,
                                            r_train, ref, BETA);
            if (st != DRPO_OK)
                die("policy model", st);
            memcpy(drpo_model_params(m), ref, D * sizeof(float)); /* start at the reference */
            if (train(m, me, me->grid[gi], tr, 0, &cx->policy_opts, &c) != DRPO_OK)
                exit(1);
            policy_metrics val;
            measure_policy(&vp, drpo_model_params(m), r_val, &val);
            double obj[G];
            for (int g = 0; g < G; g++)
                obj[g] = val.gain_dom[g] - BETA * val.kl_dom[g];
            double crit = worst_of(obj, 0, NULL);
            keep_best(&res[k], crit, 0, me->grid[gi], &c, m);
            drpo_model_free(m);
        }
        test_policy_measure(cx, res[k].theta, &tp[k]);
    }
    probe_free(&vp);
    free(r_train);
    free(r_val);
}

/* Experiment 3: robust DPO with a log-linear policy.  Criterion: the largest
 * per-domain validation DPO loss (lower is better). */
static void dpo(bench_ctx *cx, result *res, test_policy *tp)
{
    const synth_split *tr = &cx->data.train;
    const float *ref = cx->data.theta_ref;
    for (size_t k = 0; k < N_METHODS; k++) {
        const method *me = &methods[k];
        res[k].criterion = INFINITY;
        for (size_t gi = 0; gi < me->n_grid; gi++) {
            drpo_model *m = NULL;
            curve c;
            drpo_status st = drpo_pairwise_linear_create(&m, D, tr->n_pairs, tr->diff,
                                                         DRPO_LOSS_DPO, BETA, 0.0, ref);
            if (st != DRPO_OK)
                die("DPO model", st);
            memcpy(drpo_model_params(m), ref, D * sizeof(float)); /* start at the reference */
            if (train(m, me, me->grid[gi], tr, 1, &cx->reward_opts, &c) != DRPO_OK)
                exit(1);
            pair_metrics val;
            measure_pairs(drpo_model_params(m), ref, BETA, &cx->data.val, &val);
            double crit = worst_of(val.loss_dom, 1, NULL);
            keep_best(&res[k], crit, 1, me->grid[gi], &c, m);
            drpo_model_free(m);
        }
        test_policy_measure(cx, res[k].theta, &tp[k]);
    }
}

/* ---- tables -------------------------------------------------------------------- */

static void param_text(const method *me, double p, char *buf, size_t size)
{
    if (me->key)
        snprintf(buf, size, "%s=%g", me->param_name, p);
    else
        snprintf(buf, size, "-");
}

/* A Markdown table header: the given columns, then one per domain. */
static void table_head(const char *columns)
{
    out("%s", columns);
    for (int g = 0; g < G; g++)
        out(" %s |", synth_domain_name(g));
    out("\n|");
    for (const char *s = columns; *s; s++)
        if (*s == '|' && s[1])
            out("---|");
    for (int g = 0; g < G; g++)
        out("---|");
    out("\n");
}

static void table_reward(const result *res, const test_pairs *tp)
{
    out("\n1. Robust reward estimation (linear Bradley-Terry reward): test accuracy\n\n");
    table_head("| method | chosen | val worst acc | ID | OOD | worst domain |");
    for (size_t k = 0; k < N_METHODS; k++) {
        char p[32];
        int arg = 0;
        param_text(&methods[k], res[k].param, p, sizeof p);
        double w = worst_test_acc(&tp[k], &arg);
        out("| %s | %s | %.4f | %.4f | %.4f | %.4f (%s) |", methods[k].name, p, res[k].criterion,
            tp[k].id.acc, tp[k].ood.acc, w, synth_domain_name(arg));
        for (int g = 0; g < G; g++)
            out(" %.4f |", tp[k].dom[g].acc);
        out("\n");
    }
}

static void table_policy(const char *title, const char *criterion, const result *res,
                         const test_policy *tp)
{
    char head[160];
    snprintf(head, sizeof head,
             "| method | chosen | %s | ID gain | OOD gain | worst domain gain | ID KL | OOD KL |",
             criterion);
    out("\n%s\n\n", title);
    table_head(head);
    for (size_t k = 0; k < N_METHODS; k++) {
        char p[32];
        int arg = 0;
        param_text(&methods[k], res[k].param, p, sizeof p);
        double w = worst_test_gain(&tp[k], &arg);
        out("| %s | %s | %.4f | %.4f | %.4f | %.4f (%s) | %.3f | %.3f |", methods[k].name, p,
            res[k].criterion, tp[k].id.gain, tp[k].ood.gain, w, synth_domain_name(arg),
            tp[k].id.kl, tp[k].ood.kl);
        for (int g = 0; g < G; g++)
            out(" %.4f |", tp[k].dom[g].gain);
        out("\n");
    }
}

/* ---- plots --------------------------------------------------------------------- */

/* One SVG per experiment: training curves of each method's chosen run (the
 * robust objective and the mean loss on all training data, the minority
 * domains' share of the robust weight) and the per-domain test measure. */
static void plot_experiment(const char *dir, const char *file, const char *title,
                            const char *loss_name, const result *res,
                            const double measure[][G + 2], const char *measure_name)
{
    char path[4096], label[128];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    plot_doc *d = plot_create(title, 2);
    plot_panel *robust = plot_add_lines(d, "Robust objective (all training data)", "epoch",
                                        loss_name);
    plot_panel *mean = plot_add_lines(d, "Mean loss (all training data)", "epoch", loss_name);
    plot_panel *share = plot_add_lines(d, "Share of the robust weight on math + safety + "
                                          "reasoning (training: 10% of prompts)",
                                       "epoch", "share of weight");
    const char *cats[G + 2] = {"ID", "OOD"};
    for (int g = 0; g < G; g++)
        cats[g + 2] = synth_domain_name(g);
    snprintf(label, sizeof label, "Test: %s (ID, OOD, each domain)", measure_name);
    plot_panel *bars = plot_add_bars(d, label, measure_name, G + 2, cats);
    if (!d || !robust || !mean || !share || !bars) {
        fprintf(stderr, "drpo-bench: out of memory\n");
        exit(1);
    }
    for (size_t k = 0; k < N_METHODS; k++) {
        const curve *c = &res[k].curve;
        double minority[MAX_EPOCHS + 1];
        char name[64];
        param_text(&methods[k], res[k].param, label, sizeof label);
        snprintf(name, sizeof name, k ? "%s %s" : "%s", methods[k].name, label);
        for (int e = 0; e < c->n; e++)
            minority[e] = c->share[e][SYNTH_MATH] + c->share[e][SYNTH_SAFETY] +
                          c->share[e][SYNTH_REASONING];
        plot_line(robust, name, (size_t)c->n, NULL, c->robust);
        plot_line(mean, name, (size_t)c->n, NULL, c->mean);
        plot_line(share, name, (size_t)c->n, NULL, minority);
        plot_bars(bars, name, measure[k]);
    }
    plot_bar_labels(bars, NULL); /* 5 x 7 bars: the values are in the tables */
    FILE *f = fopen(path, "w");
    if (!f || plot_write(d, f) || fclose(f)) {
        fprintf(stderr, "drpo-bench: cannot write %s\n", path);
        exit(1);
    }
    plot_free(d);
    printf("wrote %s\n", path);
}

/* ---- main ------------------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: drpo-bench [--out DIR] [--seed S] [--mode exact|stochastic] [--help]\n"
            "  --out DIR     where the SVG plots and results.txt go (default out/demo)\n"
            "  --seed S      data seed (default 20250101); minibatch order uses S + 1\n"
            "  --mode M      how the robust sets are trained: exact worst case of each\n"
            "                minibatch, or stochastic duals (TV is always exact)\n");
}

int main(int argc, char **argv)
{
    const char *dir = "out/demo";
    synth_config cfg;
    synth_default_config(&cfg);
    int32_t mode = DRPO_MODE_EXACT;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--out") && i + 1 < argc) {
            dir = argv[++i];
        } else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
            cfg.seed = strtoull(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--mode") && i + 1 < argc) {
            i++;
            if (strcmp(argv[i], "exact") && strcmp(argv[i], "stochastic")) {
                usage(stderr);
                return 2;
            }
            mode = !strcmp(argv[i], "exact") ? DRPO_MODE_EXACT : DRPO_MODE_STOCHASTIC;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (mkdir(dir, 0777) && errno != EEXIST) {
        fprintf(stderr, "drpo-bench: cannot create %s: %s\n", dir, strerror(errno));
        return 1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/results.txt", dir);
    results_file = fopen(path, "w");
    if (!results_file) {
        fprintf(stderr, "drpo-bench: cannot write %s: %s\n", path, strerror(errno));
        return 1;
    }

    static bench_ctx cx;
    clock_t t0 = clock();
    if (synth_generate(&cfg, &cx.data)) {
        fprintf(stderr, "drpo-bench: cannot generate the data\n");
        return 1;
    }
    /* reward and DPO: AdamW, no regulariser; the policy step: momentum SGD
     * with weight decay (an L2 penalty for SGD), which makes the prompts
     * compete for the policy's parameters (see docs/results.md) */
    cx.reward_opts = (run_opts){mode, DRPO_OPT_ADAMW, 256, 20, 0.05, 0.0, cfg.seed + 1};
    cx.policy_opts = (run_opts){mode, DRPO_OPT_MOMENTUM, 256, 20, 0.1, 0.1, cfg.seed + 1};
    drpo_status st = probe_create(&cx.probe_id, &cx.data.test_id, cx.data.theta_ref, cx.data.test_id.true_reward);
    if (st == DRPO_OK)
        st = probe_create(&cx.probe_ood, &cx.data.test_ood, cx.data.theta_ref, cx.data.test_ood.true_reward);
    for (int g = 0; g < G && st == DRPO_OK; g++)
        st = probe_create(&cx.probe_dom[g], &cx.data.test_domain[g], cx.data.theta_ref,
                          cx.data.test_domain[g].true_reward);
    if (st != DRPO_OK)
        die("test probes", st);

    out("drpo-bench: data seed %llu, minibatch seed %llu, mode %s, %zu train pairs "
        "(%zu prompts), %zu validation pairs\n",
        (unsigned long long)cfg.seed, (unsigned long long)(cfg.seed + 1),
        mode == DRPO_MODE_EXACT ? "exact" : "stochastic", cx.data.train.n_pairs,
        cx.data.train.n_prompts, cx.data.val.n_pairs);

    static result rr[N_METHODS], pr[N_METHODS], dr[N_METHODS];
    static test_pairs tr[N_METHODS];
    static test_policy tpp[N_METHODS], tpd[N_METHODS];
    reward_estimation(&cx, rr, tr);
    table_reward(rr, tr);
    double m[N_METHODS][G + 2];
    for (size_t k = 0; k < N_METHODS; k++) {
        m[k][0] = tr[k].id.acc;
        m[k][1] = tr[k].ood.acc;
        for (int g = 0; g < G; g++)
            m[k][g + 2] = tr[k].dom[g].acc;
    }
    plot_experiment(dir, "reward.svg", "1. Robust reward estimation", "BT loss", rr, m,
                    "preference accuracy");
    policy_optimisation(&cx, rr[0].theta, pr, tpp);
    table_policy("2. Robust policy optimisation against the ERM reward: true-reward gain over "
                 "the reference",
                 "val worst obj", pr, tpp);
    dpo(&cx, dr, tpd);
    table_policy("3. Robust DPO (log-linear policy): true-reward gain over the reference",
                 "val worst loss", dr, tpd);
    for (int e = 0; e < 2; e++) {
        const test_policy *tp = e ? tpd : tpp;
        for (size_t k = 0; k < N_METHODS; k++) {
            m[k][0] = tp[k].id.gain;
            m[k][1] = tp[k].ood.gain;
            for (int g = 0; g < G; g++)
                m[k][g + 2] = tp[k].dom[g].gain;
        }
        if (e)
            plot_experiment(dir, "dpo.svg", "3. Robust DPO", "DPO loss", dr, m,
                            "true-reward gain over the reference");
        else
            plot_experiment(dir, "policy.svg", "2. Robust policy optimisation",
                            "-(reward - beta KL)", pr, m, "true-reward gain over the reference");
    }
    out("\n(%.1f s of CPU)\n", (double)(clock() - t0) / CLOCKS_PER_SEC);

    probe_free(&cx.probe_id);
    probe_free(&cx.probe_ood);
    for (int g = 0; g < G; g++)
        probe_free(&cx.probe_dom[g]);
    synth_free(&cx.data);
    fclose(results_file);
    return 0;
}

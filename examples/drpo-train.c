/*
 * drpo-train.c - train a linear preference model with a robust objective,
 * from CSV files, and report in-distribution and shifted-test accuracy.
 *
 *     drpo-train --train train.csv --test ood.csv --set cvar --level 0.2 \
 *                --report report.json --plot curves.svg
 *
 * What it does, in order:
 *  1. reads the training file and the test files (csv.h describes the
 *     format): each pair contributes the feature difference
 *     x = phi(chosen) - phi(rejected), a prompt and a group;
 *  2. builds libdrpo's built-in pairwise linear model over those rows:
 *     --model bt   the Bradley-Terry reward model r = theta . phi
 *                  (loss -log sigmoid(theta . x)),
 *     --model dpo  the log-linear DPO policy pi_theta ∝ exp(theta . phi)
 *                  against a reference theta_ref (0, or --ref FILE), with
 *                  the DPO, IPO, hinge or conservative-DPO loss of the
 *                  margin (theta - theta_ref) . x;
 *  3. trains for --epochs epochs of minibatches (pairs shuffled each epoch
 *     with a seeded generator) with drpo_trainer_step: each step the
 *     library weights the batch's prompts by their worst case in the
 *     ambiguity set (--set, --radius / --penalty / --level, --mode);
 *  4. evaluates the robust and mean training objective on all the data,
 *     and each set's accuracy overall and per group;
 *  5. writes the metrics, report, plot and checkpoint it was asked for.
 *     Output files appear only complete: each is written to a temporary
 *     file and renamed at the very end, and removed on any error.
 *
 * Exit status: 0 on success, 1 on bad data or a failed step or write,
 * 2 on a usage error, 130 when interrupted.
 */
#include "csv.h"
#include "plot.h"
#include "report.h"
#include "rng.h"

#include <drpo.h>

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PROG "drpo-train"

/* ---- usage ------------------------------------------------------------------ */

static const char usage_text[] =
    "Usage: " PROG " --train FILE [options]\n"
    "\n"
    "Train a linear preference model on pairs from a CSV file with a\n"
    "distributionally robust objective (libdrpo), and report its accuracy on\n"
    "test files, overall and per group.\n"
    "\n"
    "Data (CSV with a header row; columns in any order, others ignored):\n"
    "  prompt                  prompt text; pairs with the same text share a prompt\n"
    "  group                   optional group label (empty: no group)\n"
    "  chosen_0..chosen_{d-1}, rejected_0..rejected_{d-1}   features (numbers)\n"
    "\n"
    "Input:\n"
    "  --train FILE            training pairs (required)\n"
    "  --test FILE[,FILE...]   test sets (repeatable); each is named by its file\n"
    "                          name without directory and extension\n"
    "\n"
    "Model:\n"
    "  --model bt|dpo          bt: Bradley-Terry reward model r = theta.phi (default);\n"
    "                          dpo: log-linear DPO policy against theta_ref\n"
    "  --loss dpo|ipo|hinge|cdpo   loss of the dpo model (default dpo)\n"
    "  --beta B                DPO temperature (default 0.1)\n"
    "  --smoothing E           label smoothing of cdpo, in [0, 0.5] (default 0.1)\n"
    "  --ref FILE              theta_ref: d numbers separated by spaces, commas or\n"
    "                          newlines (default: all zero)\n"
    "\n"
    "Robust objective (over prompts):\n"
    "  --set none|kl|chi2|cvar|tv   ambiguity set (default none: plain ERM)\n"
    "  --radius R              kl, chi2, tv: D(q||p) <= R\n"
    "  --penalty L             kl, chi2, tv: subtract L * D(q||p)\n"
    "  --level A               cvar: q <= p / A, A in (0, 1]\n"
    "  --mode exact|stochastic|group\n"
    "                          exact: worst case of each minibatch (default);\n"
    "                          stochastic: dual variables kept across batches\n"
    "                          (kl, chi2, cvar); group: group DRO over the groups\n"
    "  --dual-lr X             step size of the stochastic duals / group weights\n"
    "                          (default: the library's, 0.1)\n"
    "\n"
    "Optimisation:\n"
    "  --epochs N              passes over the training pairs (default 20)\n"
    "  --batch B               pairs per step (default 32)\n"
    "  --lr X                  learning rate (default 0.1)\n"
    "  --optimizer sgd|momentum|adamw   (default sgd)\n"
    "  --momentum M            momentum coefficient (default 0.9)\n"
    "  --weight-decay W        decoupled weight decay (default 0)\n"
    "  --clip C                clip the gradient to L2 norm C (default 0: off)\n"
    "  --seed S                seed of the epoch shuffles (default 1)\n"
    "\n"
    "Output (each file written whole or not at all):\n"
    "  --metrics FILE.csv      one row per step: step, epoch, robust, mean, eta,\n"
    "                          lambda, ess, grad_norm, lr\n"
    "  --report FILE.json      configuration, training objective, accuracies\n"
    "  --plot FILE.svg         training curves, duals, per-group test accuracy\n"
    "  --save FILE             checkpoint of the trainer at the end\n"
    "  --resume FILE           continue from a checkpoint (its optimiser options and\n"
    "                          objective parameters are used; --epochs counts from\n"
    "                          the start of the original run)\n"
    "  --quiet                 no progress bar and no summary\n"
    "  --help, --version\n"
    "\n"
    "Accuracy is the fraction of pairs whose chosen response gets the higher\n"
    "reward: margin (theta - theta_ref).x > 0 (ties count as wrong).\n"
    "The same seed and options give the same report (but for the times) and the\n"
    "same metrics file.\n"
    "\n"
    "Exit status: 0 ok, 1 bad data or a failed run, 2 usage error, 130 interrupted.\n";

/* ---- small helpers ----------------------------------------------------------- */

static int quiet;

/* Print "drpo-train: message" to stderr. */
static void errorf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs(PROG ": ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* A usage error: message, hint, exit status 2. */
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs(PROG ": ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\nTry '" PROG " --help' for the options.\n", stderr);
    va_end(ap);
    return 2;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Ctrl-C and SIGTERM stop training between steps; outputs are removed. */
static volatile sig_atomic_t interrupted;
static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* The order of the pairs in epoch e: a Fisher-Yates shuffle seeded by
 * (seed, e) alone, so a resumed run sees the same orders. */
static void epoch_order(uint64_t seed, uint64_t epoch, size_t n, size_t *order)
{
    rng r;
    rng_seed(&r, seed ^ (epoch * 0xD1B54A32D192ED03u));
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)rng_below(&r, i);
        size_t t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
}

/* ---- options ------------------------------------------------------------------- */

typedef struct options {
    const char *train;
    char **tests; /* split at commas */
    size_t n_tests;
    int dpo;            /* --model dpo */
    int32_t loss;       /* DRPO_LOSS_* */
    double beta, smoothing;
    int loss_set, beta_set, smoothing_set;
    const char *ref;
    int32_t set;
    int32_t form;       /* DRPO_PARAM_RADIUS / PENALTY / LEVEL, or 0 */
    double param;
    int32_t mode;
    double dual_lr;     /* 0: the library's default */
    long epochs, batch;
    double lr, momentum, weight_decay, clip;
    int32_t optimizer;
    uint64_t seed;
    const char *metrics, *report, *plot, *save, *resume;
} options;

/* Names of the enumerations, indexed by value. */
static const char *const set_names[] = {"none", "kl", "chi2", "cvar", "tv"};
static const char *const mode_names[] = {"exact", "stochastic", "group"};
static const char *const opt_names[] = {"sgd", "momentum", "adamw"};
static const char *const loss_names[] = {"bt", "dpo", "ipo", "hinge", "cdpo"};

/* Index of s in names[n], or -1. */
static int lookup(const char *s, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(s, names[i]))
            return i;
    return -1;
}

static int parse_double(const char *flag, const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno == ERANGE || !isfinite(v))
        return usage_error("%s: not a finite number: '%s'", flag, s);
    *out = v;
    return 0;
}

static int parse_count(const char *flag, const char *s, long min, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno == ERANGE || v < min)
        return usage_error("%s: expected an integer >= %ld: '%s'", flag, min, s);
    *out = v;
    return 0;
}

/* Split a comma-separated list of test files onto o->tests. */
static int add_tests(options *o, const char *list)
{
    for (const char *p = list;;) {
        size_t n = strcspn(p, ",");
        if (n) {
            char **t = realloc(o->tests, (o->n_tests + 1) * sizeof *t);
            if (!t)
                return -1;
            o->tests = t;
            if (!(t[o->n_tests] = malloc(n + 1)))
                return -1;
            memcpy(t[o->n_tests], p, n);
            t[o->n_tests++][n] = '\0';
        }
        if (!p[n])
            return 0;
        p += n + 1;
    }
}

enum {
    OPT_TRAIN, OPT_TEST, OPT_MODEL, OPT_LOSS, OPT_BETA, OPT_SMOOTHING, OPT_REF, OPT_SET,
    OPT_RADIUS, OPT_PENALTY, OPT_LEVEL, OPT_MODE, OPT_DUAL_LR, OPT_EPOCHS, OPT_BATCH, OPT_LR,
    OPT_OPTIMIZER, OPT_MOMENTUM, OPT_WEIGHT_DECAY, OPT_CLIP, OPT_SEED, OPT_METRICS, OPT_REPORT,
    OPT_PLOT, OPT_SAVE, OPT_RESUME, OPT_QUIET, OPT_HELP, OPT_VERSION
};

static const struct flag {
    const char *name;
    int id, has_arg;
} flags[] = {
    {"train", OPT_TRAIN, 1},         {"test", OPT_TEST, 1},
    {"model", OPT_MODEL, 1},         {"loss", OPT_LOSS, 1},
    {"beta", OPT_BETA, 1},           {"smoothing", OPT_SMOOTHING, 1},
    {"ref", OPT_REF, 1},             {"set", OPT_SET, 1},
    {"radius", OPT_RADIUS, 1},       {"penalty", OPT_PENALTY, 1},
    {"level", OPT_LEVEL, 1},         {"mode", OPT_MODE, 1},
    {"dual-lr", OPT_DUAL_LR, 1},     {"epochs", OPT_EPOCHS, 1},
    {"batch", OPT_BATCH, 1},         {"lr", OPT_LR, 1},
    {"optimizer", OPT_OPTIMIZER, 1}, {"momentum", OPT_MOMENTUM, 1},
    {"weight-decay", OPT_WEIGHT_DECAY, 1}, {"clip", OPT_CLIP, 1},
    {"seed", OPT_SEED, 1},           {"metrics", OPT_METRICS, 1},
    {"report", OPT_REPORT, 1},       {"plot", OPT_PLOT, 1},
    {"save", OPT_SAVE, 1},           {"resume", OPT_RESUME, 1},
    {"quiet", OPT_QUIET, 0},         {"help", OPT_HELP, 0},
    {"version", OPT_VERSION, 0},
};

/* Parse argv into o.  Returns 0 to go on, 2 on a usage error, -1 when
 * --help or --version has been answered. */
static int parse_args(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    o->beta = 0.1;
    o->smoothing = 0.1;
    o->set = DRPO_SET_NONE;
    o->mode = DRPO_MODE_EXACT;
    o->epochs = 20;
    o->batch = 32;
    o->lr = 0.1;
    o->momentum = 0.9;
    o->optimizer = DRPO_OPT_SGD;
    o->seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0)
            return usage_error("unexpected argument '%s'", arg);
        /* --name VALUE or --name=VALUE */
        const char *eq = strchr(arg, '=');
        size_t len = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
        const struct flag *fl = NULL;
        for (size_t k = 0; k < sizeof flags / sizeof flags[0]; k++)
            if (strlen(flags[k].name) == len && !strncmp(arg + 2, flags[k].name, len))
                fl = &flags[k];
        if (!fl)
            return usage_error("unknown option '%.*s'", (int)len + 2, arg);
        const char *v = NULL;
        if (fl->has_arg) {
            if (eq)
                v = eq + 1;
            else if (i + 1 < argc)
                v = argv[++i];
            else
                return usage_error("--%s needs a value", fl->name);
        } else if (eq) {
            return usage_error("--%s takes no value", fl->name);
        }
        int k, rc = 0;
        switch (fl->id) {
        case OPT_TRAIN: o->train = v; break;
        case OPT_TEST:
            if (add_tests(o, v))
                return usage_error("out of memory");
            break;
        case OPT_MODEL:
            if (strcmp(v, "bt") && strcmp(v, "dpo"))
                return usage_error("--model: expected bt or dpo, not '%s'", v);
            o->dpo = !strcmp(v, "dpo");
            break;
        case OPT_LOSS:
            if ((k = lookup(v, loss_names, 5)) < 1)
                return usage_error("--loss: expected dpo, ipo, hinge or cdpo, not '%s'", v);
            o->loss = k;
            o->loss_set = 1;
            break;
        case OPT_BETA:
            rc = parse_double("--beta", v, &o->beta);
            o->beta_set = 1;
            if (!rc && o->beta <= 0)
                return usage_error("--beta must be > 0");
            break;
        case OPT_SMOOTHING:
            rc = parse_double("--smoothing", v, &o->smoothing);
            o->smoothing_set = 1;
            if (!rc && (o->smoothing < 0 || o->smoothing > 0.5))
                return usage_error("--smoothing must lie in [0, 0.5]");
            break;
        case OPT_REF: o->ref = v; break;
        case OPT_SET:
            if ((k = lookup(v, set_names, 5)) < 0)
                return usage_error("--set: expected none, kl, chi2, cvar or tv, not '%s'", v);
            o->set = k;
            break;
        case OPT_RADIUS:
        case OPT_PENALTY:
        case OPT_LEVEL: {
            int32_t form = fl->id == OPT_RADIUS    ? DRPO_PARAM_RADIUS
                           : fl->id == OPT_PENALTY ? DRPO_PARAM_PENALTY
                                                   : DRPO_PARAM_LEVEL;
            if (o->form && o->form != form)
                return usage_error("give only one of --radius, --penalty and --level");
            o->form = form;
            rc = parse_double(arg, v, &o->param);
            break;
        }
        case OPT_MODE:
            if ((k = lookup(v, mode_names, 3)) < 0)
                return usage_error("--mode: expected exact, stochastic or group, not '%s'", v);
            o->mode = k;
            break;
        case OPT_DUAL_LR:
            rc = parse_double("--dual-lr", v, &o->dual_lr);
            if (!rc && o->dual_lr <= 0)
                return usage_error("--dual-lr must be > 0");
            break;
        case OPT_EPOCHS: rc = parse_count("--epochs", v, 0, &o->epochs); break;
        case OPT_BATCH: rc = parse_count("--batch", v, 1, &o->batch); break;
        case OPT_LR: rc = parse_double("--lr", v, &o->lr); break;
        case OPT_OPTIMIZER:
            if ((k = lookup(v, opt_names, 3)) < 0)
                return usage_error("--optimizer: expected sgd, momentum or adamw, not '%s'", v);
            o->optimizer = k;
            break;
        case OPT_MOMENTUM: rc = parse_double("--momentum", v, &o->momentum); break;
        case OPT_WEIGHT_DECAY: rc = parse_double("--weight-decay", v, &o->weight_decay); break;
        case OPT_CLIP: rc = parse_double("--clip", v, &o->clip); break;
        case OPT_SEED: {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(v, &end, 10);
            if (end == v || *end || errno == ERANGE || *v == '-')
                return usage_error("--seed: expected a non-negative integer: '%s'", v);
            o->seed = s;
            break;
        }
        case OPT_METRICS: o->metrics = v; break;
        case OPT_REPORT: o->report = v; break;
        case OPT_PLOT: o->plot = v; break;
        case OPT_SAVE: o->save = v; break;
        case OPT_RESUME: o->resume = v; break;
        case OPT_QUIET: quiet = 1; break;
        case OPT_HELP: fputs(usage_text, stdout); return -1;
        case OPT_VERSION:
            printf(PROG " (libdrpo %s)\n", drpo_version_string());
            return -1;
        }
        if (rc)
            return rc;
    }

    /* combinations */
    if (!o->train)
        return usage_error("--train FILE is required");
    if (!o->dpo && (o->loss_set || o->beta_set || o->ref))
        return usage_error("--loss, --beta and --ref apply to --model dpo");
    o->loss = o->dpo ? (o->loss_set ? o->loss : DRPO_LOSS_DPO) : DRPO_LOSS_BT;
    if (o->smoothing_set && o->loss != DRPO_LOSS_CDPO)
        return usage_error("--smoothing applies to --loss cdpo");
    if (o->loss != DRPO_LOSS_CDPO)
        o->smoothing = 0;
    if (o->set == DRPO_SET_NONE && o->form)
        return usage_error("--set none takes no --radius, --penalty or --level");
    if (o->set == DRPO_SET_CVAR && o->form != DRPO_PARAM_LEVEL)
        return usage_error("--set cvar needs --level A (and no --radius or --penalty)");
    if (o->set != DRPO_SET_NONE && o->set != DRPO_SET_CVAR &&
        (o->form == 0 || o->form == DRPO_PARAM_LEVEL))
        return usage_error("--set %s needs --radius R or --penalty L", set_names[o->set]);
    if (o->mode == DRPO_MODE_STOCHASTIC && o->set == DRPO_SET_TV)
        return usage_error("--mode stochastic does not support --set tv");
    if (o->mode == DRPO_MODE_GROUP && o->form == DRPO_PARAM_PENALTY)
        return usage_error("--mode group keeps group weights in a ball: use --radius or --level");
    if (o->lr <= 0)
        return usage_error("--lr must be > 0");
    return 0;
}

/* ---- the reference parameters (--ref) ------------------------------------------ */

/* Read exactly `dim` numbers separated by spaces, commas or newlines. */
static float *read_ref(const char *path, size_t dim)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        errorf("%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    float *ref = calloc(dim, sizeof *ref);
    size_t n = 0, line = 1;
    char tok[128];
    int c = 0, bad = !ref;
    while (!bad && c != EOF) {
        size_t k = 0;
        while ((c = fgetc(f)) != EOF && (c == ' ' || c == '\t' || c == ',' || c == '\n' || c == '\r'))
            line += c == '\n';
        while (c != EOF && !(c == ' ' || c == '\t' || c == ',' || c == '\n' || c == '\r')) {
            if (k + 1 < sizeof tok)
                tok[k++] = (char)c;
            c = fgetc(f);
        }
        if (!k)
            break;
        tok[k] = '\0';
        char *end;
        double v = strtod(tok, &end);
        if (*end || !isfinite(v) || fabs(v) > 3.4e38) {
            errorf("%s:%zu: not a number: '%s'", path, line, tok);
            bad = 1;
        } else if (n == dim) {
            errorf("%s:%zu: more than %zu numbers (the data has d = %zu)", path, line, dim, dim);
            bad = 1;
        } else {
            ref[n++] = (float)v;
        }
        line += c == '\n';
    }
    fclose(f);
    if (!bad && n != dim) {
        errorf("%s: %zu numbers, but the data has d = %zu features", path, n, dim);
        bad = 1;
    }
    if (bad) {
        free(ref);
        return NULL;
    }
    return ref;
}

/* ---- evaluation -------------------------------------------------------------- */

/* One data set to evaluate: rows of feature differences with global group ids. */
typedef struct eval_set {
    const char *name, *file;
    size_t n;
    const float *diff;  /* n x dim */
    const int32_t *gid; /* [n] global group id or -1 */
    /* results */
    double accuracy, mean_loss;
    size_t *g_pairs, *g_correct; /* [n_groups] */
    size_t ungrouped;
    double worst;       /* NaN without groups */
    int32_t worst_group; /* -1 without groups */
} eval_set;

/* Accuracy (margin > 0), mean loss and per-group accuracy of one set. */
static int evaluate_set(eval_set *e, const float *eff, size_t dim, const options *o,
                        size_t n_groups)
{
    double *margin = malloc(e->n * sizeof *margin), *loss = malloc(e->n * sizeof *loss);
    e->g_pairs = calloc(n_groups + 1, sizeof *e->g_pairs);
    e->g_correct = calloc(n_groups + 1, sizeof *e->g_correct);
    drpo_status st = DRPO_ERR_NOMEM;
    if (margin && loss && e->g_pairs && e->g_correct &&
        (st = drpo_linear_scores(eff, dim, e->n, e->diff, margin)) == DRPO_OK)
        st = drpo_loss_from_margins(o->loss, e->n, margin, o->beta, o->smoothing, loss, NULL);
    if (st != DRPO_OK) {
        errorf("evaluating %s: %s", e->name, drpo_status_string(st));
        free(margin);
        free(loss);
        return -1;
    }
    size_t correct = 0;
    double sum = 0;
    e->ungrouped = 0;
    for (size_t i = 0; i < e->n; i++) {
        int ok = margin[i] > 0;
        correct += ok;
        sum += loss[i];
        if (e->gid[i] < 0) {
            e->ungrouped++;
        } else {
            e->g_pairs[e->gid[i]]++;
            e->g_correct[e->gid[i]] += ok;
        }
    }
    e->accuracy = (double)correct / (double)e->n;
    e->mean_loss = sum / (double)e->n;
    e->worst = NAN;
    e->worst_group = -1;
    for (size_t g = 0; g < n_groups; g++) {
        if (!e->g_pairs[g])
            continue;
        double a = (double)e->g_correct[g] / (double)e->g_pairs[g];
        if (e->worst_group < 0 || a < e->worst) {
            e->worst = a;
            e->worst_group = (int32_t)g;
        }
    }
    free(margin);
    free(loss);
    return 0;
}

/* ---- progress bar --------------------------------------------------------------- */

typedef struct progress {
    int on;
    double t0, last;
    size_t first, total; /* steps: first of this run, and the end */
} progress;

/* Redraw at most ten times a second, and at the last step. */
static void progress_draw(progress *p, size_t step, size_t epoch, size_t epochs, double robust)
{
    if (!p->on)
        return;
    double t = now_seconds();
    if (step < p->total && t - p->last < 0.1)
        return;
    p->last = t;
    size_t done = step - p->first, todo = p->total - p->first;
    double frac = todo ? (double)done / (double)todo : 1.0;
    double rate = t > p->t0 ? (double)done / (t - p->t0) : 0.0;
    double eta = rate > 0 ? (double)(p->total - step) / rate : 0.0;
    char bar[31];
    int fill = (int)(frac * 30 + 0.5);
    for (int i = 0; i < 30; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[30] = '\0';
    long e = (long)(eta + 0.5);
    fprintf(stderr, "\r[%s] %3.0f%% step %zu/%zu epoch %zu/%zu %.0f steps/s ETA %ld:%02ld:%02ld "
                    "robust %.4g\033[K",
            bar, 100 * frac, step, p->total, epoch, epochs, rate, e / 3600, e / 60 % 60, e % 60,
            robust);
    if (step >= p->total)
        fputc('\n', stderr);
    fflush(stderr);
}

/* ---- the run -------------------------------------------------------------------- */

/* Everything a run holds, freed by run_free. */
typedef struct run {
    options opt;
    csv_pairs train;
    csv_pairs *tests;
    char **test_names;
    int32_t **test_gid;    /* per test set: global group id per pair */
    const char **groups;   /* global group names: the training file's first */
    size_t n_groups, n_train_groups;
    float *ref, *work, *eff;
    size_t *order;
    int32_t *work_gid;      /* group id of each row of work */
    size_t *work_src;       /* the training pair each row of work came from */
    drpo_model *model;
    drpo_objective *obj;
    drpo_trainer *trainer;
    drpo_batch *batch;
    out_file metrics, report, plot;
    /* the curves, one value per step of this run */
    double *c_step, *c_robust, *c_mean, *c_eta, *c_lambda;
    size_t n_curve;
    eval_set *evals;       /* [0] the training set, then the test sets */
    size_t n_evals;
} run;

static void run_free(run *r)
{
    out_file_abort(&r->metrics);
    out_file_abort(&r->report);
    out_file_abort(&r->plot);
    drpo_trainer_free(r->trainer);
    drpo_objective_free(r->obj);
    drpo_model_free(r->model);
    drpo_batch_free(r->batch);
    for (size_t i = 0; i < r->opt.n_tests; i++) {
        if (r->tests)
            csv_pairs_free(&r->tests[i]);
        if (r->test_gid)
            free(r->test_gid[i]);
        if (r->test_names)
            free(r->test_names[i]);
        free(r->opt.tests[i]);
    }
    for (size_t i = 0; r->evals && i < r->n_evals; i++) {
        free(r->evals[i].g_pairs);
        free(r->evals[i].g_correct);
    }
    free(r->evals);
    free(r->opt.tests);
    free(r->tests);
    free(r->test_gid);
    free(r->test_names);
    free(r->groups);
    csv_pairs_free(&r->train);
    free(r->ref);
    free(r->work);
    free(r->eff);
    free(r->order);
    free(r->work_gid);
    free(r->work_src);
    free(r->c_step);
    free(r->c_robust);
    free(r->c_mean);
    free(r->c_eta);
    free(r->c_lambda);
}

/* A test set's name: its file name without directory and extension. */
static char *stem(const char *path)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    const char *dot = strrchr(b, '.');
    size_t n = dot && dot != b ? (size_t)(dot - b) : strlen(b);
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, b, n);
        s[n] = '\0';
    }
    return s;
}

/* Global id of a group name: the training file's ids first, then new ids
 * for names only the test files have.  -1 when out of memory. */
static int32_t global_group(run *r, const char *name)
{
    for (size_t g = 0; g < r->n_groups; g++)
        if (!strcmp(r->groups[g], name))
            return (int32_t)g;
    const char **gr = realloc(r->groups, (r->n_groups + 1) * sizeof *gr);
    if (!gr)
        return -1;
    r->groups = gr;
    gr[r->n_groups] = name;
    return (int32_t)r->n_groups++;
}

/* Read the training and test files; map groups to global ids. */
static int load_data(run *r)
{
    const options *o = &r->opt;
    char err[512];
    if (csv_read_pairs(o->train, NULL, &r->train, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    r->n_train_groups = r->n_groups = r->train.n_groups;
    r->groups = malloc((r->n_groups + 1) * sizeof *r->groups);
    if (!r->groups)
        return -1;
    for (size_t g = 0; g < r->n_groups; g++)
        r->groups[g] = r->train.group_names[g];
    if (o->mode == DRPO_MODE_GROUP) {
        if (!r->train.group_col) {
            errorf("%s: --mode group needs a \"group\" column", o->train);
            return -1;
        }
        for (size_t i = 0; i < r->train.n; i++)
            if (r->train.group[i] < 0) {
                fprintf(stderr, "%s:%zu:%zu: --mode group needs a group for every pair (this "
                                "one is empty)\n",
                        o->train, r->train.line[i], r->train.group_col);
                return -1;
            }
    }
    r->tests = calloc(o->n_tests + 1, sizeof *r->tests);
    r->test_gid = calloc(o->n_tests + 1, sizeof *r->test_gid);
    r->test_names = calloc(o->n_tests + 1, sizeof *r->test_names);
    if (!r->tests || !r->test_gid || !r->test_names)
        return -1;
    csv_options copt = {r->train.dim, o->train};
    for (size_t t = 0; t < o->n_tests; t++) {
        if (csv_read_pairs(o->tests[t], &copt, &r->tests[t], err, sizeof err)) {
            fprintf(stderr, "%s\n", err);
            return -1;
        }
        if (!(r->test_names[t] = stem(o->tests[t])))
            return -1;
        for (size_t u = 0; u < t; u++)
            if (!strcmp(r->test_names[u], r->test_names[t])) {
                errorf("test sets %s and %s have the same name '%s': rename one", o->tests[u],
                       o->tests[t], r->test_names[t]);
                return -1;
            }
        const csv_pairs *p = &r->tests[t];
        int32_t *map = malloc((p->n_groups + 1) * sizeof *map);
        if (!map || !(r->test_gid[t] = malloc(p->n * sizeof(int32_t)))) {
            free(map);
            return -1;
        }
        for (size_t g = 0; g < p->n_groups; g++)
            if ((map[g] = global_group(r, p->group_names[g])) < 0) {
                free(map);
                return -1;
            }
        for (size_t i = 0; i < p->n; i++)
            r->test_gid[t][i] = p->group[i] < 0 ? -1 : map[p->group[i]];
        free(map);
    }
    if (o->ref && !(r->ref = read_ref(o->ref, r->train.dim)))
        return -1;
    return 0;
}

/* Report a failed library call on the trainer (or objective) with its message. */
static int lib_fail(const run *r, drpo_status st, const char *what)
{
    const char *msg = r->trainer ? drpo_trainer_last_error(r->trainer)
                      : r->obj   ? drpo_objective_last_error(r->obj)
                                 : "";
    errorf("%s: %s%s%s", what, drpo_status_string(st), *msg ? ": " : "", msg);
    return -1;
}

/* Model, objective and trainer, configured from the options (or the checkpoint). */
static int build_trainer(run *r)
{
    const options *o = &r->opt;
    size_t n = r->train.n, d = r->train.dim;
    r->work = malloc(n * d * sizeof(float));
    r->eff = malloc(d * sizeof(float));
    r->order = malloc(n * sizeof(size_t));
    r->work_gid = malloc(n * sizeof(int32_t));
    r->work_src = malloc(n * sizeof(size_t));
    if (!r->work || !r->eff || !r->order || !r->work_gid || !r->work_src) {
        errorf("out of memory");
        return -1;
    }
    memcpy(r->work, r->train.diff, n * d * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        r->work_gid[i] = r->train.group[i];
        r->work_src[i] = i;
    }
    drpo_status st;
    /* the model reads its rows from r->work, which each epoch reorders */
    if ((st = drpo_pairwise_linear_create(&r->model, d, n, r->work, o->loss, o->beta,
                                          o->smoothing, r->ref)) != DRPO_OK)
        return lib_fail(r, st, "creating the model");
    if ((st = drpo_objective_create(&r->obj, o->set)) != DRPO_OK)
        return lib_fail(r, st, "creating the objective");
    if ((o->form && (st = drpo_objective_set(r->obj, o->form, o->param)) != DRPO_OK) ||
        (st = drpo_objective_set(r->obj, DRPO_PARAM_MODE, o->mode)) != DRPO_OK ||
        (o->dual_lr > 0 && (st = drpo_objective_set(r->obj, DRPO_PARAM_DUAL_LR, o->dual_lr))) ||
        (r->n_train_groups &&
         (st = drpo_objective_set(r->obj, DRPO_PARAM_GROUPS, (double)r->n_train_groups))))
        return lib_fail(r, st, "configuring the objective");
    if ((st = drpo_trainer_create(&r->trainer, r->model, r->obj)) != DRPO_OK)
        return lib_fail(r, st, "creating the trainer");
    if ((st = drpo_trainer_set(r->trainer, DRPO_TRAIN_OPTIMIZER, o->optimizer)) ||
        (st = drpo_trainer_set(r->trainer, DRPO_TRAIN_LR, o->lr)) ||
        (st = drpo_trainer_set(r->trainer, DRPO_TRAIN_MOMENTUM, o->momentum)) ||
        (st = drpo_trainer_set(r->trainer, DRPO_TRAIN_WEIGHT_DECAY, o->weight_decay)) ||
        (st = drpo_trainer_set(r->trainer, DRPO_TRAIN_CLIP_NORM, o->clip)))
        return lib_fail(r, st, "configuring the trainer");
    if (o->resume && (st = drpo_trainer_load(r->trainer, o->resume)) != DRPO_OK)
        return lib_fail(r, st, "resuming");
    if ((st = drpo_batch_create(&r->batch)) != DRPO_OK)
        return lib_fail(r, st, "creating a batch");
    return 0;
}

/* Reorder the rows of r->work (and their groups) for epoch e. */
static void shuffle_epoch(run *r, uint64_t e)
{
    size_t n = r->train.n, d = r->train.dim;
    epoch_order(r->opt.seed, e, n, r->order);
    for (size_t i = 0; i < n; i++) {
        size_t src = r->order[i];
        memcpy(r->work + i * d, r->train.diff + src * d, d * sizeof(float));
        r->work_gid[i] = r->train.group[src];
        r->work_src[i] = src;
    }
}

/* Fill the batch with rows [a, b) of r->work. */
static int fill_batch(run *r, size_t a, size_t b)
{
    drpo_batch_clear(r->batch);
    for (size_t row = a; row < b; row++) {
        size_t src = r->work_src[row];
        int32_t g = r->work_gid[row] < 0 ? DRPO_GROUP_NONE : r->work_gid[row];
        drpo_status st = drpo_batch_add(r->batch, csv_prompt(&r->train, src),
                                        r->train.prompt_len[src], g, (int64_t)row);
        if (st != DRPO_OK)
            return lib_fail(r, st, "building a batch");
    }
    return 0;
}

static double tdiag(const drpo_trainer *t, int32_t key)
{
    double v;
    return drpo_trainer_diag(t, key, &v) == DRPO_OK ? v : NAN;
}

/* A metrics cell: the shortest exact form, empty when not available. */
static void metric(FILE *f, double v, int last)
{
    char buf[32];
    if (isfinite(v))
        fputs(format_double(v, buf), f);
    fputc(last ? '\n' : ',', f);
}

/* The training loop: steps from the trainer's count up to epochs * steps per
 * epoch.  Returns the steps taken by this run, or -1. */
static long train(run *r)
{
    const options *o = &r->opt;
    size_t n = r->train.n, B = (size_t)o->batch;
    size_t per_epoch = (n + B - 1) / B;
    size_t total = (size_t)o->epochs * per_epoch;
    double done = tdiag(r->trainer, DRPO_TDIAG_STEPS); /* > 0 after --resume */
    size_t first = isfinite(done) && done > 0 ? (size_t)done : 0;
    size_t todo = total > first ? total - first : 0;
    double **curves[] = {&r->c_step, &r->c_robust, &r->c_mean, &r->c_eta, &r->c_lambda};
    for (size_t k = 0; k < 5; k++)
        if (!(*curves[k] = malloc((todo ? todo : 1) * sizeof(double)))) {
            errorf("out of memory");
            return -1;
        }
    FILE *mf = r->metrics.f;
    if (mf)
        fputs("step,epoch,robust,mean,eta,lambda,ess,grad_norm,lr\n", mf);
    progress pg = {isatty(STDERR_FILENO) && !quiet && todo > 0, now_seconds(), 0, first, total};
    size_t shuffled = SIZE_MAX; /* the epoch r->work is ordered for */
    for (size_t s = first; s < total; s++) {
        if (interrupted) {
            if (pg.on)
                fputc('\n', stderr);
            errorf("interrupted after %zu steps; no output written", s);
            return -1;
        }
        size_t e = s / per_epoch, k = s % per_epoch;
        if (e != shuffled) {
            shuffle_epoch(r, e);
            shuffled = e;
        }
        size_t a = k * B, b = a + B < n ? a + B : n;
        if (fill_batch(r, a, b))
            return -1;
        drpo_status st = drpo_trainer_step(r->trainer, r->batch);
        if (st != DRPO_OK) {
            if (pg.on)
                fputc('\n', stderr);
            char what[64];
            snprintf(what, sizeof what, "step %zu (epoch %zu)", s + 1, e + 1);
            return lib_fail(r, st, what);
        }
        const drpo_trainer *t = r->trainer;
        double robust = tdiag(t, DRPO_TDIAG_ROBUST), mean = tdiag(t, DRPO_TDIAG_MEAN_LOSS);
        double eta = tdiag(t, DRPO_TDIAG_ETA), lambda = tdiag(t, DRPO_TDIAG_LAMBDA);
        size_t c = r->n_curve++;
        r->c_step[c] = (double)(s + 1);
        r->c_robust[c] = robust;
        r->c_mean[c] = mean;
        r->c_eta[c] = eta;
        r->c_lambda[c] = lambda;
        if (mf) {
            fprintf(mf, "%zu,%zu,", s + 1, e + 1);
            metric(mf, robust, 0);
            metric(mf, mean, 0);
            metric(mf, eta, 0);
            metric(mf, lambda, 0);
            metric(mf, tdiag(t, DRPO_TDIAG_ESS), 0);
            metric(mf, tdiag(t, DRPO_TDIAG_GRAD_NORM), 0);
            metric(mf, tdiag(t, DRPO_TDIAG_LR), 1);
        }
        progress_draw(&pg, s + 1, e + 1, (size_t)o->epochs, robust);
    }
    return (long)todo;
}

/* ---- outputs -------------------------------------------------------------------- */

static void json_eval(json *j, const char *key, const run *r, const eval_set *e)
{
    json_object_begin(j, key);
    json_string(j, "file", e->file);
    json_int(j, "pairs", (int64_t)e->n);
    json_number(j, "accuracy", e->accuracy);
    json_number(j, "mean_loss", e->mean_loss);
    json_number(j, "worst_group_accuracy", e->worst);
    json_string(j, "worst_group", e->worst_group >= 0 ? r->groups[e->worst_group] : NULL);
    json_int(j, "ungrouped_pairs", (int64_t)e->ungrouped);
    json_object_begin(j, "groups");
    for (size_t g = 0; g < r->n_groups; g++) {
        if (!e->g_pairs[g])
            continue;
        json_object_begin(j, r->groups[g]);
        json_int(j, "pairs", (int64_t)e->g_pairs[g]);
        json_number(j, "accuracy", (double)e->g_correct[g] / (double)e->g_pairs[g]);
        json_object_end(j);
    }
    json_object_end(j);
    json_object_end(j);
}

/* Final state of the objective and the options actually in force (after
 * --resume they are the checkpoint's). */
typedef struct final_state {
    double robust, mean, grad_norm, seconds, train_seconds;
    long steps_run;
    size_t steps, prompts;
} final_state;

static void write_report(run *r, const final_state *fs)
{
    const options *o = &r->opt;
    json j;
    json_init(&j, r->report.f);
    json_object_begin(&j, NULL);
    json_string(&j, "program", PROG);
    json_string(&j, "libdrpo_version", drpo_version_string());

    json_object_begin(&j, "config");
    json_string(&j, "train", o->train);
    json_array_begin(&j, "tests");
    for (size_t t = 0; t < o->n_tests; t++)
        json_string(&j, NULL, o->tests[t]);
    json_array_end(&j);
    json_string(&j, "model", o->dpo ? "dpo" : "bt");
    json_string(&j, "loss", loss_names[o->loss]);
    if (o->dpo)
        json_number(&j, "beta", o->beta);
    else
        json_null(&j, "beta");
    if (o->loss == DRPO_LOSS_CDPO)
        json_number(&j, "smoothing", o->smoothing);
    else
        json_null(&j, "smoothing");
    json_string(&j, "ref", o->ref);
    json_string(&j, "set", set_names[o->set]);
    static const char *const form_keys[] = {NULL, "radius", "penalty", "level"};
    for (int32_t k = DRPO_PARAM_RADIUS; k <= DRPO_PARAM_LEVEL; k++) {
        double v;
        if (drpo_objective_get(r->obj, k, &v) == DRPO_OK)
            json_number(&j, form_keys[k], v);
        else
            json_null(&j, form_keys[k]);
    }
    double v;
    drpo_objective_get(r->obj, DRPO_PARAM_MODE, &v);
    json_string(&j, "mode", mode_names[(int)v]);
    drpo_objective_get(r->obj, DRPO_PARAM_DUAL_LR, &v);
    json_number(&j, "dual_lr", v);
    json_int(&j, "epochs", o->epochs);
    json_int(&j, "batch", o->batch);
    drpo_trainer_get(r->trainer, DRPO_TRAIN_OPTIMIZER, &v);
    json_string(&j, "optimizer", opt_names[(int)v]);
    static const struct {
        const char *name;
        int32_t key;
    } topts[] = {{"lr", DRPO_TRAIN_LR},
                 {"momentum", DRPO_TRAIN_MOMENTUM},
                 {"weight_decay", DRPO_TRAIN_WEIGHT_DECAY},
                 {"clip", DRPO_TRAIN_CLIP_NORM}};
    for (size_t k = 0; k < sizeof topts / sizeof topts[0]; k++) {
        drpo_trainer_get(r->trainer, topts[k].key, &v);
        json_number(&j, topts[k].name, v);
    }
    json_uint(&j, "seed", o->seed);
    json_string(&j, "resume", o->resume);
    json_object_end(&j);

    json_int(&j, "dim", (int64_t)r->train.dim);
    json_int(&j, "steps", (int64_t)fs->steps);
    json_int(&j, "steps_this_run", fs->steps_run);
    json_number(&j, "seconds", fs->seconds);
    json_number(&j, "train_seconds", fs->train_seconds);

    /* the training set: the objective, then accuracy like a test set */
    const eval_set *tr = &r->evals[0];
    json_object_begin(&j, "train");
    json_string(&j, "file", tr->file);
    json_int(&j, "pairs", (int64_t)tr->n);
    json_int(&j, "prompts", (int64_t)fs->prompts);
    json_number(&j, "robust_objective", fs->robust);
    json_number(&j, "mean_loss", fs->mean);
    json_number(&j, "grad_norm", fs->grad_norm);
    json_number(&j, "accuracy", tr->accuracy);
    json_number(&j, "worst_group_accuracy", tr->worst);
    json_string(&j, "worst_group", tr->worst_group >= 0 ? r->groups[tr->worst_group] : NULL);
    json_int(&j, "ungrouped_pairs", (int64_t)tr->ungrouped);
    json_object_begin(&j, "groups");
    for (size_t g = 0; g < r->n_train_groups; g++) {
        if (!tr->g_pairs[g])
            continue;
        json_object_begin(&j, r->groups[g]);
        json_int(&j, "pairs", (int64_t)tr->g_pairs[g]);
        json_number(&j, "accuracy", (double)tr->g_correct[g] / (double)tr->g_pairs[g]);
        json_object_end(&j);
    }
    json_object_end(&j);
    json_object_end(&j);

    if (o->n_tests == 1) {
        json_eval(&j, "test", r, &r->evals[1]);
    } else if (o->n_tests > 1) {
        json_object_begin(&j, "tests");
        for (size_t t = 0; t < o->n_tests; t++)
            json_eval(&j, r->evals[1 + t].name, r, &r->evals[1 + t]);
        json_object_end(&j);
    }

    const float *theta = drpo_model_params(r->model);
    json_array_begin(&j, "theta");
    for (size_t i = 0; i < r->train.dim; i++)
        json_number(&j, NULL, theta[i]);
    json_array_end(&j);
    json_object_end(&j);
    json_finish(&j);
}

static int write_plot(run *r)
{
    char title[256];
    snprintf(title, sizeof title, "drpo-train on %s", r->opt.train);
    plot_doc *d = plot_create(title, 2);
    if (!d)
        return -1;
    plot_panel_size(d, 600, 340);
    if (r->opt.set == DRPO_SET_NONE)
        snprintf(title, sizeof title, "Training loss per step (ERM)");
    else
        snprintf(title, sizeof title, "Training loss per step (%s, %s)", set_names[r->opt.set],
                 mode_names[r->opt.mode]);
    plot_panel *p = plot_add_lines(d, title, "step", "loss on the minibatch");
    int bad = !p;
    if (r->opt.set == DRPO_SET_NONE) /* one line: under ERM the two coincide */
        bad = bad || plot_line(p, "mean = robust (ERM)", r->n_curve, r->c_step, r->c_mean);
    else
        bad = bad || plot_line(p, "robust", r->n_curve, r->c_step, r->c_robust) ||
              plot_line(p, "mean", r->n_curve, r->c_step, r->c_mean);
    if (!bad && !r->n_curve)
        bad = plot_note(p, "no steps were run");

    /* the duals, if the set has any */
    int has_eta = 0, has_lambda = 0;
    for (size_t i = 0; i < r->n_curve; i++) {
        has_eta |= isfinite(r->c_eta[i]);
        has_lambda |= isfinite(r->c_lambda[i]);
    }
    if (!bad) {
        p = plot_add_lines(d, "Dual variables per step", "step", "value (loss units)");
        bad = !p;
        if (!bad && has_eta)
            bad = plot_line(p, "eta", r->n_curve, r->c_step, r->c_eta);
        if (!bad && has_lambda)
            bad = plot_line(p, "lambda", r->n_curve, r->c_step, r->c_lambda);
        if (!bad && !has_eta && !has_lambda)
            bad = plot_note(p, r->opt.set == DRPO_SET_NONE ? "no dual variables (ERM)"
                                                           : "no dual variables reported");
    }

    /* accuracy per group (and overall), one series per data set */
    size_t ncat = r->n_groups + 1;
    const char **cats = malloc(ncat * sizeof *cats);
    double *vals = malloc(ncat * sizeof *vals);
    if (!bad && cats && vals) {
        cats[0] = "all pairs";
        for (size_t g = 0; g < r->n_groups; g++)
            cats[g + 1] = r->groups[g];
        p = plot_add_bars(d, "Accuracy per group (chosen ranked above rejected)", "accuracy",
                          ncat, cats);
        bad = !p;
        for (size_t k = 0; !bad && k < r->n_evals; k++) {
            const eval_set *e = &r->evals[k];
            vals[0] = e->accuracy;
            for (size_t g = 0; g < r->n_groups; g++)
                vals[g + 1] = e->g_pairs[g] ? (double)e->g_correct[g] / (double)e->g_pairs[g]
                                            : NAN;
            char name[160];
            snprintf(name, sizeof name, "%s", k == 0 ? "training set" : e->name);
            bad = plot_bars(p, name, vals);
        }
        if (!bad) {
            plot_y_range(p, 0.0, 1.0);
            plot_bar_labels(p, "%.2f");
        }
    } else {
        bad = 1;
    }
    free(cats);
    free(vals);
    if (!bad)
        bad = plot_write(d, r->plot.f);
    plot_free(d);
    return bad ? -1 : 0;
}

/* Open the temporary files of the outputs asked for. */
static int open_outputs(run *r)
{
    char err[512];
    const char *paths[3] = {r->opt.metrics, r->opt.report, r->opt.plot};
    out_file *files[3] = {&r->metrics, &r->report, &r->plot};
    for (int k = 0; k < 3; k++)
        if (paths[k] && out_file_open(files[k], paths[k], err, sizeof err)) {
            errorf("%s", err);
            return -1;
        }
    return 0;
}

/* Evaluate every set at the final parameters. */
static int evaluate_all(run *r, final_state *fs)
{
    const options *o = &r->opt;
    size_t d = r->train.dim;
    const float *theta = drpo_model_params(r->model);
    for (size_t i = 0; i < d; i++)
        r->eff[i] = theta[i] - (r->ref ? r->ref[i] : 0.0f);

    /* the exact robust objective over all the training pairs */
    if (fill_batch(r, 0, r->train.n))
        return -1;
    fs->prompts = drpo_batch_units(r->batch);
    drpo_status st = drpo_trainer_evaluate(r->trainer, r->batch, &fs->robust, &fs->grad_norm);
    if (st != DRPO_OK)
        return lib_fail(r, st, "evaluating the training objective");

    r->n_evals = 1 + o->n_tests;
    if (!(r->evals = calloc(r->n_evals, sizeof *r->evals)))
        return -1;
    r->evals[0] = (eval_set){.name = "train", .file = o->train, .n = r->train.n,
                             .diff = r->work, .gid = r->work_gid};
    for (size_t t = 0; t < o->n_tests; t++)
        r->evals[1 + t] = (eval_set){.name = r->test_names[t], .file = o->tests[t],
                                     .n = r->tests[t].n, .diff = r->tests[t].diff,
                                     .gid = r->test_gid[t]};
    for (size_t k = 0; k < r->n_evals; k++)
        if (evaluate_set(&r->evals[k], r->eff, d, o, r->n_groups))
            return -1;
    fs->mean = r->evals[0].mean_loss;
    return 0;
}

static void print_summary(const run *r, const final_state *fs)
{
    printf("%s: %zu pairs, %zu prompts, %zu groups, d = %zu; %zu steps (%ld this run) in %.2f s\n",
           r->opt.train, r->train.n, fs->prompts, r->n_train_groups, r->train.dim, fs->steps,
           fs->steps_run, fs->seconds);
    printf("training objective: robust %.6g, mean loss %.6g\n", fs->robust, fs->mean);
    for (size_t k = 0; k < r->n_evals; k++) {
        const eval_set *e = &r->evals[k];
        printf("%-12s accuracy %.4f", e->name, e->accuracy);
        if (e->worst_group >= 0)
            printf("  worst group %.4f (%s)", e->worst, r->groups[e->worst_group]);
        printf("  [%zu pairs]\n", e->n);
    }
}

int main(int argc, char **argv)
{
    run r;
    memset(&r, 0, sizeof r);
    int rc = parse_args(argc, argv, &r.opt);
    if (rc) {
        run_free(&r);
        return rc < 0 ? 0 : rc;
    }
    double t0 = now_seconds();
    final_state fs;
    memset(&fs, 0, sizeof fs);
    rc = 1;
    if (load_data(&r) || build_trainer(&r))
        goto done;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    if (open_outputs(&r))
        goto done;
    double t_train = now_seconds();
    if ((fs.steps_run = train(&r)) < 0 || interrupted)
        goto done;
    fs.train_seconds = now_seconds() - t_train;
    double steps = tdiag(r.trainer, DRPO_TDIAG_STEPS);
    fs.steps = isfinite(steps) && steps > 0 ? (size_t)steps : 0;
    if (evaluate_all(&r, &fs))
        goto done;
    fs.seconds = now_seconds() - t0;
    if (r.report.f)
        write_report(&r, &fs);
    if (r.plot.f && write_plot(&r)) {
        errorf("%s: cannot write the plot", r.opt.plot);
        goto done;
    }
    if (r.opt.save) {
        drpo_status st = drpo_trainer_save(r.trainer, r.opt.save);
        if (st != DRPO_OK) {
            lib_fail(&r, st, "saving the checkpoint");
            goto done;
        }
    }
    char err[512];
    out_file *files[3] = {&r.metrics, &r.report, &r.plot};
    for (int k = 0; k < 3; k++)
        if (out_file_commit(files[k], err, sizeof err)) {
            errorf("%s", err);
            goto done;
        }
    if (!quiet)
        print_summary(&r, &fs);
    rc = 0;
done:
    if (interrupted)
        rc = 130;
    run_free(&r);
    return rc;
}

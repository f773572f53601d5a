/*
 * drpo-demo.c - the worst case of one batch under every ambiguity set.
 *
 * A batch of preference pairs covers 8 prompts.  Pairs that share a prompt
 * form one unit: its loss is the mean loss of its pairs and its base weight
 * is its share of the pairs in the batch.  The last prompt is a rare, hard
 * one (a reasoning question with a single pair): it carries little base
 * weight but the largest loss, so a robust objective moves weight onto it.
 *
 * For each set and form the program asks libdrpo for the exact worst case
 *
 *     max_q  sum_i q_i loss_i  [ - penalty * D(q || base) ]
 *
 * over the ambiguity set around the base weights, and prints the robust
 * value, its diagnostics and dual variables, and the worst-case weights.
 *
 * Build against an installed libdrpo:
 *     cc drpo-demo.c $(pkg-config --cflags --libs libdrpo) -o drpo-demo
 */
#include <drpo.h>

#include <stdio.h>
#include <stdlib.h>

#define N_PROMPTS 8

/* Mean per-pair loss of each prompt (e.g. DPO losses; log 2 ~ 0.69 is chance). */
static const double loss[N_PROMPTS] = {0.21, 0.35, 0.48, 0.52, 0.69, 0.74, 1.10, 2.30};
/* Preference pairs of each prompt in the batch: base weight = pairs / 28. */
static const int pairs[N_PROMPTS] = {6, 5, 4, 4, 3, 2, 3, 1};

/* One robust objective: a set and, except for "none", one parameter. */
struct demo_case {
    int32_t set;
    const char *set_name;
    int32_t key; /* DRPO_PARAM_*, or 0 for none */
    double param;
};

static const struct demo_case cases[] = {
    {DRPO_SET_NONE, "none", 0, 0.0},
    {DRPO_SET_KL, "KL", DRPO_PARAM_RADIUS, 0.1},
    {DRPO_SET_KL, "KL", DRPO_PARAM_PENALTY, 0.5},
    {DRPO_SET_CHI2, "chi2", DRPO_PARAM_RADIUS, 0.25},
    {DRPO_SET_CHI2, "chi2", DRPO_PARAM_PENALTY, 1.0},
    {DRPO_SET_CVAR, "CVaR", DRPO_PARAM_LEVEL, 0.25},
    {DRPO_SET_TV, "TV", DRPO_PARAM_RADIUS, 0.1},
    {DRPO_SET_TV, "TV", DRPO_PARAM_PENALTY, 1.5},
};
#define N_CASES (sizeof cases / sizeof cases[0])

/* What one solve reports. */
struct result {
    double value, mean, max_weight, ess, divergence;
    double eta, lambda;
    int has_eta, has_lambda;
    double weights[N_PROMPTS];
};

static const char *form_name(int32_t key)
{
    switch (key) {
    case DRPO_PARAM_RADIUS:
        return "radius";
    case DRPO_PARAM_PENALTY:
        return "penalty";
    case DRPO_PARAM_LEVEL:
        return "level";
    default:
        return "-";
    }
}

/* Report a failed call with the handle's own message; returns -1. */
static int fail(const drpo_objective *obj, drpo_status st, const char *what)
{
    fprintf(stderr, "drpo-demo: %s failed: %s (%d)", what, drpo_status_string(st), (int)st);
    if (obj && *drpo_objective_last_error(obj))
        fprintf(stderr, ": %s", drpo_objective_last_error(obj));
    fputc('\n', stderr);
    return -1;
}

/* A diagnostic that the set may not define (the duals): *has = 0 if so. */
static int optional_diag(const drpo_objective *obj, int32_t key, double *value, int *has)
{
    drpo_status st = drpo_objective_diag(obj, key, value);
    *has = st == DRPO_OK;
    return st == DRPO_OK || st == DRPO_ERR_UNAVAILABLE ? 0 : fail(obj, st, "drpo_objective_diag");
}

/* Solve one case and collect its diagnostics; returns 0 or -1. */
static int solve_case(const struct demo_case *c, const double *base, struct result *r)
{
    drpo_objective *obj = NULL;
    drpo_status st = drpo_objective_create(&obj, c->set);
    if (st != DRPO_OK)
        return fail(NULL, st, "drpo_objective_create");

    int rc = -1;
    if (c->key != 0 && (st = drpo_objective_set(obj, c->key, c->param)) != DRPO_OK) {
        fail(obj, st, "drpo_objective_set");
        goto done;
    }
    st = drpo_objective_solve(obj, N_PROMPTS, loss, base, r->weights, &r->value);
    if (st != DRPO_OK) {
        fail(obj, st, "drpo_objective_solve");
        goto done;
    }

    /* Diagnostics every solve defines. */
    const struct {
        int32_t key;
        double *out;
    } diags[] = {
        {DRPO_DIAG_MEAN, &r->mean},
        {DRPO_DIAG_MAX_WEIGHT, &r->max_weight},
        {DRPO_DIAG_ESS, &r->ess},
        {DRPO_DIAG_DIVERGENCE, &r->divergence},
    };
    for (size_t i = 0; i < sizeof diags / sizeof diags[0]; i++) {
        if ((st = drpo_objective_diag(obj, diags[i].key, diags[i].out)) != DRPO_OK) {
            fail(obj, st, "drpo_objective_diag");
            goto done;
        }
    }
    /* The dual variables exist only for the sets and forms that have them. */
    if (optional_diag(obj, DRPO_DIAG_ETA, &r->eta, &r->has_eta) != 0 ||
        optional_diag(obj, DRPO_DIAG_LAMBDA, &r->lambda, &r->has_lambda) != 0)
        goto done;
    rc = 0;
done:
    drpo_objective_free(obj);
    return rc;
}

/* A number in a fixed-width column, or "-" when it is not defined. */
static void print_opt(int has, double value)
{
    if (has)
        printf(" %8.4f", value);
    else
        printf(" %8s", "-");
}

static void print_case_label(const struct demo_case *c)
{
    printf("%-5s %-8s", c->set_name, form_name(c->key));
    print_opt(c->key != 0, c->param);
}

int main(void)
{
    double base[N_PROMPTS];
    int total = 0;
    for (int i = 0; i < N_PROMPTS; i++)
        total += pairs[i];
    for (int i = 0; i < N_PROMPTS; i++)
        base[i] = (double)pairs[i] / total;

    static struct result results[N_CASES];
    for (size_t k = 0; k < N_CASES; k++)
        if (solve_case(&cases[k], base, &results[k]) != 0)
            return EXIT_FAILURE;

    printf("libdrpo %s: worst case of one batch of %d pairs over %d prompts\n\n",
           drpo_version_string(), total, N_PROMPTS);

    printf("%-5s %-8s %8s %8s %8s %8s %8s %8s %8s %8s\n", "set", "form", "param", "robust",
           "mean", "max q", "ESS", "diverg.", "eta", "lambda");
    for (size_t k = 0; k < N_CASES; k++) {
        const struct result *r = &results[k];
        print_case_label(&cases[k]);
        printf(" %8.4f %8.4f %8.4f %8.3f %8.4f", r->value, r->mean, r->max_weight, r->ess,
               r->divergence);
        print_opt(r->has_eta, r->eta);
        print_opt(r->has_lambda, r->lambda);
        putchar('\n');
    }
    printf("\n(CVaR's divergence column is max q/base; ESS = 1 / sum q^2.)\n\n");

    printf("worst-case weights q by prompt\n");
    printf("%-5s %-8s %8s", "", "", "prompt");
    for (int i = 0; i < N_PROMPTS; i++)
        printf(" %6d", i + 1);
    printf("\n%-5s %-8s %8s", "", "", "loss");
    for (int i = 0; i < N_PROMPTS; i++)
        printf(" %6.2f", loss[i]);
    printf("\n%-5s %-8s %8s", "", "", "pairs");
    for (int i = 0; i < N_PROMPTS; i++)
        printf(" %6d", pairs[i]);
    putchar('\n');
    for (size_t k = 0; k < N_CASES; k++) {
        print_case_label(&cases[k]);
        for (int i = 0; i < N_PROMPTS; i++)
            printf(" %6.4f", results[k].weights[i]);
        putchar('\n');
    }
    return EXIT_SUCCESS;
}

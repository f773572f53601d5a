/*
 * synth.c - the shifted-preference benchmark generator (see synth.h for the
 * model of the data).  Every table of the model is at the top of this file.
 */
#include "synth.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the model's tables --------------------------------------------------- */

static const char *const domain_names[SYNTH_DOMAINS] = {"chat", "code", "math", "safety",
                                                        "reasoning"};

/* Coordinates of phi:
 *   0-3  general quality (helpfulness, accuracy, clarity, relevance)
 *   4    length             5  compliance        6  refusal
 *   7-8  code correctness   9-10 math correctness  11-12 reasoning validity
 *   13   formatting         14 assertiveness     15 noise (nobody cares)
 *
 * True reward weights before the domain's scale: the shared component
 * (0-3) is the same for every domain, the rest differs. */
static const double base_weights[SYNTH_DOMAINS][SYNTH_DIM] = {
    /*           quality          len   comp   ref  code      math      reason    fmt  assert noise */
    [SYNTH_CHAT] = {1.0, 0.8, 0.6, 0.4, 0.8, 0.8, -0.5, 0.2, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5, 0.4, 0.0},
    [SYNTH_CODE] = {1.0, 0.8, 0.6, 0.4, 0.2, 0.4, -0.5, 1.5, 0.8, 0.0, 0.0, 0.2, 0.0, 0.3, 0.0, 0.0},
    [SYNTH_MATH] = {1.0, 0.8, 0.6, 0.4, -1.0, 0.0, -0.3, 0.0, 0.0, 1.5, 0.8, 0.4, 0.2, 0.0, -0.6, 0.0},
    [SYNTH_SAFETY] = {1.0, 0.8, 0.6, 0.4, -0.3, -1.2, 1.2, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -0.3,
                      0.0},
    [SYNTH_REASONING] = {1.0, 0.8, 0.6, 0.4, -1.0, 0.0, -0.3, 0.0, 0.0, 0.3, 0.0, 1.5, 0.8, -0.3,
                         -0.6, 0.0},
};

/* How decisive each domain's preferences are (multiplies its weights):
 * chat is subjective, the others can be checked. */
static const double domain_scale[SYNTH_DOMAINS] = {1.0, 1.5, 1.5, 1.5, 1.5};

/* s_g: the spread of candidate features per coordinate in each domain. */
static const double spread[SYNTH_DOMAINS][SYNTH_DIM] = {
    /*           quality          len  comp ref  code      math      reason    fmt  asrt noise */
    [SYNTH_CHAT] = {1, 1, 1, 1, 1.0, 1.0, 0.3, 0.3, 0.3, 0.2, 0.2, 0.2, 0.2, 0.6, 0.6, 0.5},
    [SYNTH_CODE] = {1, 1, 1, 1, 0.8, 0.6, 0.2, 1.0, 1.0, 0.2, 0.2, 0.2, 0.2, 0.6, 0.6, 0.5},
    [SYNTH_MATH] = {1, 1, 1, 1, 1.2, 0.4, 0.2, 0.2, 0.2, 1.0, 1.0, 0.5, 0.5, 0.6, 0.8, 0.5},
    [SYNTH_SAFETY] = {1, 1, 1, 1, 0.8, 1.0, 1.0, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.6, 0.6, 0.5},
    [SYNTH_REASONING] = {1, 1, 1, 1, 1.2, 0.4, 0.2, 0.2, 0.2, 0.5, 0.5, 1.0, 1.0, 0.6, 0.8, 0.5},
};

/* mu_g: the domain's typical response (prompt features centre here).  It
 * cancels in every comparison and only moves the level of the reward. */
static const double prompt_mean[SYNTH_DOMAINS][SYNTH_DIM] = {
    [SYNTH_CHAT] = {[4] = 0.5, [13] = 0.5},
    [SYNTH_CODE] = {[7] = 0.5, [13] = 0.3},
    [SYNTH_MATH] = {[4] = -0.3, [9] = 0.5},
    [SYNTH_SAFETY] = {[5] = -0.5, [6] = 0.5},
    [SYNTH_REASONING] = {[4] = 0.3, [11] = 0.5},
};

#define PROMPT_SD 0.5   /* spread of a_x around mu_g */
#define LOG_SPREAD 0.3  /* c_x = exp(LOG_SPREAD * N(0, 1)) */

/* ---- the PRNG ---------------------------------------------------------------- */

double synth_rng_normal(synth_rng *r)
{
    /* Box-Muller, one of the pair (no cached state: a stream is its draws) */
    double u = 1.0 - synth_rng_uniform(r), v = synth_rng_uniform(r);
    return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

/* ---- configuration ------------------------------------------------------------ */

void synth_default_config(synth_config *cfg)
{
    static const double train_mix[SYNTH_DOMAINS] = {0.50, 0.40, 0.04, 0.03, 0.03};
    static const double ood_mix[SYNTH_DOMAINS] = {0.10, 0.10, 0.30, 0.20, 0.30};
    memset(cfg, 0, sizeof *cfg);
    cfg->seed = 20250101;
    cfg->candidates = 8;
    cfg->pairs_per_prompt = 2;
    cfg->train_pairs = 20000;
    cfg->val_pairs = 20000;
    cfg->test_pairs = 8000;
    cfg->domain_pairs = 3000;
    memcpy(cfg->train_mix, train_mix, sizeof train_mix);
    memcpy(cfg->ood_mix, ood_mix, sizeof ood_mix);
}

static int mix_ok(const double *mix)
{
    double s = 0.0;
    for (int g = 0; g < SYNTH_DOMAINS; g++) {
        if (!(mix[g] >= 0.0))
            return 0;
        s += mix[g];
    }
    return fabs(s - 1.0) < 1e-9;
}

const char *synth_domain_name(int32_t domain)
{
    return domain >= 0 && domain < SYNTH_DOMAINS ? domain_names[domain] : "?";
}

void synth_prompt_text(const synth_split *s, size_t prompt, char *buf, size_t size)
{
    snprintf(buf, size, "%s-%06zu", synth_domain_name(s->domain[prompt]), prompt);
}

/* ---- one split ------------------------------------------------------------------ */

static void split_free(synth_split *s)
{
    free(s->domain);
    free(s->offsets);
    free(s->features);
    free(s->true_reward);
    free(s->pair_offsets);
    free(s->pair_prompt);
    free(s->chosen);
    free(s->rejected);
    free(s->diff);
    memset(s, 0, sizeof *s);
}

/* A domain drawn from a mixture. */
static int32_t draw_domain(synth_rng *r, const double *mix)
{
    double u = synth_rng_uniform(r), c = 0.0;
    for (int32_t g = 0; g < SYNTH_DOMAINS; g++) {
        c += mix[g];
        if (u < c)
            return g;
    }
    for (int32_t g = SYNTH_DOMAINS - 1; g >= 0; g--) /* u beyond the rounded sum */
        if (mix[g] > 0.0)
            return g;
    return 0;
}

/* Prompt i: its domain, candidates' features and true rewards. */
static void make_prompt(synth_rng *r, const synth_bench *b, const double *mix, synth_split *s,
                        size_t i)
{
    size_t k = s->k, d = SYNTH_DIM;
    int32_t g = draw_domain(r, mix);
    s->domain[i] = g;
    s->offsets[i + 1] = s->offsets[i] + k;
    double a[SYNTH_DIM];
    for (size_t j = 0; j < d; j++)
        a[j] = prompt_mean[g][j] + PROMPT_SD * synth_rng_normal(r);
    double c = exp(LOG_SPREAD * synth_rng_normal(r));
    for (size_t y = 0; y < k; y++) {
        float *phi = s->features + (s->offsets[i] + y) * d;
        double rew = 0.0;
        for (size_t j = 0; j < d; j++) {
            phi[j] = (float)(a[j] + c * spread[g][j] * synth_rng_normal(r));
            rew += b->weights[g][j] * (double)phi[j];
        }
        s->true_reward[s->offsets[i] + y] = rew;
    }
}

/* Pair h on prompt i: two distinct candidates, labelled by Bradley-Terry. */
static void make_pair(synth_rng *r, synth_split *s, size_t i, size_t h)
{
    size_t k = s->k, d = SYNTH_DIM;
    uint32_t a = (uint32_t)(synth_rng_next(r) % k);
    uint32_t o = (uint32_t)(synth_rng_next(r) % (k - 1));
    uint32_t c = o >= a ? o + 1 : o; /* uniform over the others */
    double margin = s->true_reward[s->offsets[i] + a] - s->true_reward[s->offsets[i] + c];
    int a_wins = synth_rng_uniform(r) < 1.0 / (1.0 + exp(-margin));
    s->pair_prompt[h] = i;
    s->chosen[h] = a_wins ? a : c;
    s->rejected[h] = a_wins ? c : a;
    const float *w = s->features + (s->offsets[i] + s->chosen[h]) * d;
    const float *l = s->features + (s->offsets[i] + s->rejected[h]) * d;
    for (size_t j = 0; j < d; j++)
        s->diff[h * d + j] = w[j] - l[j];
}

/* A split of n_pairs pairs from `mix`, on its own stream (seed, tag). */
static int make_split(const synth_bench *b, const char *name, uint64_t tag, const double *mix,
                      size_t n_pairs, synth_split *s)
{
    const synth_config *cfg = &b->cfg;
    size_t ppp = cfg->pairs_per_prompt, k = cfg->candidates, d = SYNTH_DIM;
    size_t np = (n_pairs + ppp - 1) / ppp;
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->n_prompts = np;
    s->n_pairs = n_pairs;
    s->k = k;
    s->domain = malloc(np * sizeof *s->domain);
    s->offsets = malloc((np + 1) * sizeof *s->offsets);
    s->features = malloc(np * k * d * sizeof *s->features);
    s->true_reward = malloc(np * k * sizeof *s->true_reward);
    s->pair_offsets = malloc((np + 1) * sizeof *s->pair_offsets);
    s->pair_prompt = malloc(n_pairs * sizeof *s->pair_prompt);
    s->chosen = malloc(n_pairs * sizeof *s->chosen);
    s->rejected = malloc(n_pairs * sizeof *s->rejected);
    s->diff = malloc(n_pairs * d * sizeof *s->diff);
    if (!s->domain || !s->offsets || !s->features || !s->true_reward || !s->pair_offsets ||
        !s->pair_prompt || !s->chosen || !s->rejected || !s->diff) {
        split_free(s);
        return -1;
    }
    synth_rng r;
    uint64_t mixed = cfg->seed ^ (tag * 0xd1b54a32d192ed03ull);
    synth_rng_seed(&r, rng_splitmix64(&mixed));
    s->offsets[0] = 0;
    s->pair_offsets[0] = 0;
    for (size_t i = 0, h = 0; i < np; i++) {
        make_prompt(&r, b, mix, s, i);
        for (size_t p = 0; p < ppp && h < n_pairs; p++, h++)
            make_pair(&r, s, i, h);
        s->pair_offsets[i + 1] = h;
    }
    return 0;
}

/* ---- the benchmark -------------------------------------------------------------- */

int synth_generate(const synth_config *cfg, synth_bench *out)
{
    memset(out, 0, sizeof *out);
    if (cfg->candidates < 2 || cfg->candidates > SYNTH_MAX_CANDIDATES ||
        cfg->pairs_per_prompt < 1 || !cfg->train_pairs || !cfg->val_pairs || !cfg->test_pairs ||
        !cfg->domain_pairs || !mix_ok(cfg->train_mix) || !mix_ok(cfg->ood_mix))
        return -1;
    out->cfg = *cfg;
    for (int g = 0; g < SYNTH_DOMAINS; g++)
        for (int j = 0; j < SYNTH_DIM; j++)
            out->weights[g][j] = domain_scale[g] * base_weights[g][j];
    for (int j = 0; j < 4; j++) /* the reference: half the shared quality component */
        out->theta_ref[j] = (float)(0.5 * base_weights[SYNTH_CHAT][j]);

    int rc = make_split(out, "train", 1, cfg->train_mix, cfg->train_pairs, &out->train);
    if (!rc)
        rc = make_split(out, "val", 2, cfg->train_mix, cfg->val_pairs, &out->val);
    if (!rc)
        rc = make_split(out, "test-id", 3, cfg->train_mix, cfg->test_pairs, &out->test_id);
    if (!rc)
        rc = make_split(out, "test-ood", 4, cfg->ood_mix, cfg->test_pairs, &out->test_ood);
    for (int g = 0; g < SYNTH_DOMAINS && !rc; g++) {
        double one[SYNTH_DOMAINS] = {0};
        char name[32];
        one[g] = 1.0;
        snprintf(name, sizeof name, "test-%s", domain_names[g]);
        rc = make_split(out, name, 5 + (uint64_t)g, one, cfg->domain_pairs, &out->test_domain[g]);
    }
    if (rc)
        synth_free(out);
    return rc;
}

void synth_free(synth_bench *b)
{
    split_free(&b->train);
    split_free(&b->val);
    split_free(&b->test_id);
    split_free(&b->test_ood);
    for (int g = 0; g < SYNTH_DOMAINS; g++)
        split_free(&b->test_domain[g]);
}

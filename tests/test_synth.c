/* test_synth.c - the shifted-preference benchmark generator (examples/synth.c):
 * determinism, mixture proportions, Bradley-Terry labels, domain weights. */
#include "../examples/synth.h"
#include "suites.h"

#include <math.h>
#include <string.h>

/* A configuration big enough for the statistical tests, small enough to be fast. */
static void config(synth_config *cfg, uint64_t seed)
{
    synth_default_config(cfg);
    cfg->seed = seed;
    cfg->train_pairs = 40000;
    cfg->val_pairs = 1000;
    cfg->test_pairs = 20000;
    cfg->domain_pairs = 500;
}

static int same_split(const synth_split *a, const synth_split *b)
{
    size_t rows = a->n_prompts * a->k;
    return a->n_prompts == b->n_prompts && a->n_pairs == b->n_pairs &&
           !memcmp(a->domain, b->domain, a->n_prompts * sizeof *a->domain) &&
           !memcmp(a->features, b->features, rows * SYNTH_DIM * sizeof *a->features) &&
           !memcmp(a->chosen, b->chosen, a->n_pairs * sizeof *a->chosen) &&
           !memcmp(a->rejected, b->rejected, a->n_pairs * sizeof *a->rejected);
}

START_TEST(deterministic_for_a_seed)
{
    synth_config cfg;
    synth_bench a, b, c;
    config(&cfg, 7);
    ck_assert_int_eq(synth_generate(&cfg, &a), 0);
    ck_assert_int_eq(synth_generate(&cfg, &b), 0);
    ck_assert(same_split(&a.train, &b.train));
    ck_assert(same_split(&a.test_ood, &b.test_ood));
    for (int g = 0; g < SYNTH_DOMAINS; g++)
        ck_assert(same_split(&a.test_domain[g], &b.test_domain[g]));
    /* another seed gives other data; another training size leaves the other splits alone */
    cfg.seed = 8;
    ck_assert_int_eq(synth_generate(&cfg, &c), 0);
    ck_assert(!same_split(&a.train, &c.train));
    synth_free(&c);
    cfg.seed = 7;
    cfg.train_pairs = 1000;
    ck_assert_int_eq(synth_generate(&cfg, &c), 0);
    ck_assert(same_split(&a.val, &c.val));
    ck_assert(same_split(&a.test_id, &c.test_id));
    /* a fixed value pins the PRNG and the normals across platforms */
    synth_rng r;
    synth_rng_seed(&r, 1);
    uint64_t first = synth_rng_next(&r);
    synth_rng_seed(&r, 1);
    ck_assert_uint_eq(synth_rng_next(&r), first);
    synth_free(&a);
    synth_free(&b);
    synth_free(&c);
}
END_TEST

/* Domain shares of a split against its mixture: 4.5 binomial standard errors. */
static void check_mixture(const synth_split *s, const double *mix)
{
    double count[SYNTH_DOMAINS] = {0};
    for (size_t i = 0; i < s->n_prompts; i++) {
        ck_assert(s->domain[i] >= 0 && s->domain[i] < SYNTH_DOMAINS);
        count[s->domain[i]]++;
    }
    for (int g = 0; g < SYNTH_DOMAINS; g++) {
        double n = (double)s->n_prompts, f = count[g] / n;
        double tol = 4.5 * sqrt(mix[g] * (1 - mix[g]) / n) + 1e-12;
        ck_assert_msg(fabs(f - mix[g]) <= tol, "%s: %s share %.4f, mixture %.4f", s->name,
                      synth_domain_name(g), f, mix[g]);
    }
}

START_TEST(mixture_proportions)
{
    synth_config cfg;
    synth_bench b;
    config(&cfg, 11);
    ck_assert_int_eq(synth_generate(&cfg, &b), 0);
    check_mixture(&b.train, cfg.train_mix);
    check_mixture(&b.test_id, cfg.train_mix);
    check_mixture(&b.test_ood, cfg.ood_mix);
    for (int g = 0; g < SYNTH_DOMAINS; g++) {
        double one[SYNTH_DOMAINS] = {0};
        one[g] = 1.0;
        check_mixture(&b.test_domain[g], one);
    }
    /* the training mixture is dominated by chat and code, the shift moves
     * weight to math, safety and reasoning */
    ck_assert(cfg.train_mix[SYNTH_CHAT] + cfg.train_mix[SYNTH_CODE] >= 0.8);
    ck_assert(cfg.ood_mix[SYNTH_MATH] + cfg.ood_mix[SYNTH_SAFETY] + cfg.ood_mix[SYNTH_REASONING] >=
              0.6);
    synth_free(&b);
}
END_TEST

/* Pair h seen from its lower-indexed candidate: 1 if that one was chosen,
 * and the true margin r(lower) - r(higher). */
static int lower_won(const synth_split *s, size_t h, double *margin)
{
    size_t i = s->pair_prompt[h], a = s->chosen[h], c = s->rejected[h];
    size_t lo = a < c ? a : c, hi = a < c ? c : a;
    *margin = s->true_reward[s->offsets[i] + lo] - s->true_reward[s->offsets[i] + hi];
    return lo == a;
}

START_TEST(labels_follow_bradley_terry)
{
    enum { BINS = 8 };
    synth_config cfg;
    synth_bench b;
    config(&cfg, 13);
    ck_assert_int_eq(synth_generate(&cfg, &b), 0);
    const synth_split *s = &b.train;
    double n[BINS] = {0}, won[BINS] = {0}, expect[BINS] = {0};
    for (size_t h = 0; h < s->n_pairs; h++) {
        double m;
        int w = lower_won(s, h, &m);
        int bin = (int)floor((m + 4.0) / 8.0 * BINS); /* margins in [-4, 4) */
        if (bin < 0 || bin >= BINS)
            continue;
        n[bin]++;
        won[bin] += w;
        expect[bin] += 1.0 / (1.0 + exp(-m));
        /* the stored difference is phi(chosen) - phi(rejected) */
        const float *fc = s->features + (s->offsets[s->pair_prompt[h]] + s->chosen[h]) * SYNTH_DIM;
        const float *fr =
            s->features + (s->offsets[s->pair_prompt[h]] + s->rejected[h]) * SYNTH_DIM;
        for (int j = 0; j < SYNTH_DIM; j++)
            ck_assert(s->diff[h * SYNTH_DIM + j] == fc[j] - fr[j]);
    }
    for (int k = 0; k < BINS; k++) {
        ck_assert_msg(n[k] >= 500, "bin %d has only %.0f pairs", k, n[k]);
        double f = won[k] / n[k], p = expect[k] / n[k];
        double tol = 4.5 * sqrt(p * (1 - p) / n[k]);
        ck_assert_msg(fabs(f - p) <= tol, "bin %d: frequency %.4f, BT %.4f (n %.0f)", k, f, p,
                      n[k]);
    }
    /* the true reward is the domain's weights times the features */
    for (size_t i = 0; i < 50; i++)
        for (size_t y = 0; y < s->k; y++) {
            double r = 0;
            for (int j = 0; j < SYNTH_DIM; j++)
                r += b.weights[s->domain[i]][j] * s->features[(s->offsets[i] + y) * SYNTH_DIM + j];
            ck_assert_double_eq_tol(r, s->true_reward[s->offsets[i] + y], 1e-9);
        }
    synth_free(&b);
}
END_TEST

START_TEST(domain_weights_differ)
{
    synth_config cfg;
    synth_bench b;
    synth_default_config(&cfg);
    cfg.train_pairs = cfg.val_pairs = cfg.test_pairs = cfg.domain_pairs = 10;
    ck_assert_int_eq(synth_generate(&cfg, &b), 0);
    for (int g = 0; g < SYNTH_DOMAINS; g++)
        for (int h = g + 1; h < SYNTH_DOMAINS; h++) {
            /* the directions differ, not only the scale */
            double dot = 0, ng = 0, nh = 0;
            for (int j = 0; j < SYNTH_DIM; j++) {
                dot += b.weights[g][j] * b.weights[h][j];
                ng += b.weights[g][j] * b.weights[g][j];
                nh += b.weights[h][j] * b.weights[h][j];
            }
            double cosine = dot / sqrt(ng * nh);
            ck_assert_msg(cosine < 0.8, "%s and %s: cosine %.3f", synth_domain_name(g),
                          synth_domain_name(h), cosine);
            /* some coordinate has opposite signs or one is zero (a conflict) */
            int conflict = 0;
            for (int j = 0; j < SYNTH_DIM; j++)
                conflict |= b.weights[g][j] * b.weights[h][j] <= 0 &&
                            fabs(b.weights[g][j] - b.weights[h][j]) >= 0.5;
            ck_assert(conflict);
        }
    /* the reference policy prefers generally good responses in every domain */
    for (int g = 0; g < SYNTH_DOMAINS; g++) {
        double dot = 0;
        for (int j = 0; j < SYNTH_DIM; j++)
            dot += b.weights[g][j] * b.theta_ref[j];
        ck_assert(dot > 0);
    }
    synth_free(&b);
}
END_TEST

START_TEST(bad_configuration)
{
    synth_config cfg;
    synth_bench b;
    synth_default_config(&cfg);
    cfg.candidates = 1;
    ck_assert_int_eq(synth_generate(&cfg, &b), -1);
    synth_default_config(&cfg);
    cfg.train_mix[0] += 0.1; /* does not sum to 1 */
    ck_assert_int_eq(synth_generate(&cfg, &b), -1);
}
END_TEST

Suite *suite_synth(void)
{
    Suite *s = suite_create("synth");
    TCase *tc = tcase_create("generator");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, deterministic_for_a_seed);
    tcase_add_test(tc, mixture_proportions);
    tcase_add_test(tc, labels_follow_bradley_terry);
    tcase_add_test(tc, domain_weights_differ);
    tcase_add_test(tc, bad_configuration);
    suite_add_tcase(s, tc);
    return s;
}

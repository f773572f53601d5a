/*
 * synth.h - the shifted-preference benchmark: synthetic preference data with
 * several prompt domains, a training mixture dominated by two of them, and
 * test mixtures that shift weight to the others.
 *
 * The model of the data
 * ---------------------
 * There are five prompt domains (chat, code, math, safety, reasoning).  A
 * prompt x of domain g has K candidate responses y_1..y_K, each described by
 * a response feature vector phi(x, y) in R^16:
 *
 *     phi(x, y_k) = a_x + c_x * (s_g ⊙ z_k),      z_k ~ N(0, I_16)
 *
 *   a_x ~ N(mu_g, 0.5^2 I)   the prompt's own features (shared by all its
 *                            candidates, so they cancel in every comparison)
 *   c_x ~ LogNormal(0, 0.3^2) how far apart the prompt's candidates are
 *   s_g                      the domain's spread per coordinate: math
 *                            responses differ a lot in answer correctness and
 *                            hardly in code quality, chat responses the
 *                            other way round (table in synth.c)
 *
 * The true reward of a response is linear with domain-specific weights:
 *
 *     r*(x, y) = w_g . phi(x, y)
 *
 * w_g = a shared "general quality" component (coordinates 0-3, the same in
 * every domain) plus domain-specific directions: length (4) and compliance
 * (5) are liked in chat but penalised in math, reasoning and safety; refusal
 * (6) is right for safety prompts only; code (7, 8), math (9, 10) and
 * reasoning (11, 12) correctness matter in their own domains; formatting
 * (13) and assertiveness (14) differ in sign; coordinate 15 is noise.  The
 * table is in synth.c (synth_weights).  Verifiable domains (code, math,
 * reasoning, safety) have larger weights than chat: their preferences are
 * more decisive.  Because the domains disagree on coordinates 4, 5, 6, 13
 * and 14, no single linear reward theta . phi fits every domain at once, as
 * no real reward model does: a reward fitted to a chat/code mixture gets the
 * sign of length and compliance wrong for math, reasoning and safety.
 *
 * A preference pair picks two distinct candidates a, b of a prompt uniformly
 * and labels them by the Bradley-Terry model of the true reward:
 *     P(a preferred to b) = sigmoid(r*(x, a) - r*(x, b)).
 *
 * Splits
 * ------
 * Each split draws its prompts' domains i.i.d. from a mixture, PAIRS_PER_PROMPT
 * pairs per prompt (the last prompt may have fewer):
 *   train, val      the training mixture  (chat .50, code .40, math .04,
 *                   safety .03, reasoning .03 by default)
 *   test-id         the training mixture
 *   test-ood        the shifted mixture   (chat .10, code .10, math .30,
 *                   safety .20, reasoning .30 by default)
 *   test-<domain>   one domain alone
 * Each split has its own random stream derived from the seed and the split,
 * so changing the size of one split leaves the others unchanged.
 *
 * For the policy experiments every split also keeps its prompts' candidate
 * sets (features and true rewards) and the benchmark defines a reference
 * policy pi_ref(y|x) ∝ exp(theta_ref . phi(x, y)) with theta_ref half the
 * shared quality component: an "SFT" policy that prefers generally good
 * responses and knows nothing domain-specific.
 *
 * The generator uses its own PRNG (xoshiro256** seeded by splitmix64) and
 * Box-Muller normals, so the data are the same on every platform.
 */
#ifndef SYNTH_H
#define SYNTH_H

#include <stddef.h>
#include <stdint.h>

#include "rng.h"

#define SYNTH_DIM 16           /* d, the response feature dimension */
#define SYNTH_MAX_CANDIDATES 64

enum { SYNTH_CHAT, SYNTH_CODE, SYNTH_MATH, SYNTH_SAFETY, SYNTH_REASONING, SYNTH_DOMAINS };

/* Every parameter of the benchmark. */
typedef struct synth_config {
    uint64_t seed;                   /* default 20250101 */
    size_t candidates;               /* K per prompt, 2..SYNTH_MAX_CANDIDATES (default 8) */
    size_t pairs_per_prompt;         /* >= 1 (default 2) */
    size_t train_pairs;              /* default 20000 */
    size_t val_pairs;                /* default 20000 */
    size_t test_pairs;               /* test-id and test-ood, default 8000 each */
    size_t domain_pairs;             /* each test-<domain>, default 3000 */
    double train_mix[SYNTH_DOMAINS]; /* the training mixture (sums to 1) */
    double ood_mix[SYNTH_DOMAINS];   /* the shifted test mixture (sums to 1) */
} synth_config;

/* One split: prompts with their candidate sets, and preference pairs. */
typedef struct synth_split {
    char name[32];           /* "train", "val", "test-id", "test-ood", "test-math", ... */
    size_t n_prompts, n_pairs, k;
    int32_t *domain;         /* [n_prompts] SYNTH_* */
    size_t *offsets;         /* [n_prompts + 1] candidate rows of prompt i: offsets[i]..+k */
    float *features;         /* [n_prompts * k * SYNTH_DIM] phi of every candidate */
    double *true_reward;     /* [n_prompts * k] r* of every candidate */
    size_t *pair_offsets;    /* [n_prompts + 1] prompt i's pairs: pair_offsets[i]..[i+1]-1 */
    size_t *pair_prompt;     /* [n_pairs] the prompt of each pair */
    uint32_t *chosen;        /* [n_pairs] candidate index (0..k-1) of the preferred response */
    uint32_t *rejected;      /* [n_pairs] and of the other one */
    float *diff;             /* [n_pairs * SYNTH_DIM] phi(chosen) - phi(rejected) */
} synth_split;

/* The whole benchmark. */
typedef struct synth_bench {
    synth_config cfg;
    double weights[SYNTH_DOMAINS][SYNTH_DIM]; /* true reward weights w_g */
    float theta_ref[SYNTH_DIM];               /* the reference policy */
    synth_split train, val, test_id, test_ood;
    synth_split test_domain[SYNTH_DOMAINS];
} synth_bench;

/* The defaults listed above. */
void synth_default_config(synth_config *cfg);

/* Generate every split.  Returns 0, or -1 (bad configuration or out of
 * memory; nothing to free then).  Free with synth_free. */
int synth_generate(const synth_config *cfg, synth_bench *out);
void synth_free(synth_bench *b);

/* "chat", "code", "math", "safety", "reasoning". */
const char *synth_domain_name(int32_t domain);

/* A split's prompt as text, e.g. "math-000042" (unique within the split). */
void synth_prompt_text(const synth_split *s, size_t prompt, char *buf, size_t size);

/* The PRNG (rng.h: xoshiro256** seeded by splitmix64), exposed for
 * programs that need seeded randomness of their own (shuffling minibatches). */
typedef rng synth_rng;

static inline void synth_rng_seed(synth_rng *r, uint64_t seed) { rng_seed(r, seed); }
static inline uint64_t synth_rng_next(synth_rng *r) { return rng_next(r); }
static inline double synth_rng_uniform(synth_rng *r) { return rng_uniform(r); } /* [0, 1) */
double synth_rng_normal(synth_rng *r); /* N(0, 1), Box-Muller */

#endif

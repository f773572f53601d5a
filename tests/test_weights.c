/* test_weights.c - the weights passes of a step rule and of a ramp over a
 * uniform base (lib/sets/weights.c, compiled into this test to reach its
 * instances): the AVX-512, AVX2 and baseline instances write the same
 * weights and return the same bits (counts, sums, the argmax units'
 * indices), on every length around the eight-lane groups, the four-lane
 * tail and the blocks of 256, streamed and not; and they match a plain
 * loop (the sums within rounding of a long double one). */
#include "check_util.h"
#include "suites.h"

/* the kernels' vectors are passed only between inlined functions */
#pragma GCC diagnostic ignored "-Wpsabi"
#include "../lib/sets/weights.c"
#include "instances.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef step_counts (*step_instance)(const drpo_problem *, const drpo_qrule *, double *);

typedef struct step_kernel_set {
    const char *name;
    int measure;
    step_instance inst[3]; /* baseline, AVX2, AVX-512 (NULL: not built or not this CPU) */
} step_kernel_set;

#define STEP_SET(name, measure) {#name, measure, TU_INSTANCES(name)}

static const step_kernel_set step_sets[] = {
    STEP_SET(step_uniform, STEP_PLAIN),
    STEP_SET(step_uniform_excess, STEP_EXCESS),
    STEP_SET(step_uniform_deficit, STEP_DEFICIT),
};

/* What a plain loop finds. */
typedef struct step_reference {
    size_t zero, below, at, tops;
    long double excess, deficit;
} step_reference;

static step_reference step_by_loop(const drpo_problem *pb, const drpo_qrule *r, double *q,
                                   size_t *tops)
{
    const double w[4] = {(pb->pu * r->c_top) * r->scale, (pb->pu * r->c_below) * r->scale,
                         (pb->pu * r->c_at) * r->scale, (pb->pu * r->c_above) * r->scale};
    step_reference s = {0, 0, 0, 0, 0.0L, 0.0L};
    for (size_t j = 0; j < pb->m; j++) {
        double d = pb->top - pb->x[j] * pb->down;
        q[j] = d == 0.0 ? w[0] : d < r->t ? w[1] : d == r->t ? w[2] : w[3];
        s.zero += d == 0.0;
        s.below += d < r->t;
        s.at += d == r->t;
        if (d == 0.0)
            tops[s.tops++] = j;
        if (d > r->t)
            s.excess += (long double)d - r->t;
        if (d < r->t)
            s.deficit += (long double)r->t - d;
    }
    return s;
}

static size_t lanes_total(drpo_v4i v) { return (size_t)(v[0] + v[1] + v[2] + v[3]); }

/* Losses from 40 levels (ties everywhere, at the top and at the threshold)
 * or continuous; the threshold the gap of one of them. */
static void step_case(tu_rng *rng, size_t m, int levels, double *x, drpo_problem *pb,
                      drpo_qrule *r)
{
    double top = -INFINITY;
    for (size_t j = 0; j < m; j++) {
        x[j] = levels ? (double)tu_below(rng, 40) / 40.0 : tu_unif(rng);
        top = x[j] > top ? x[j] : top;
    }
    pb->m = m;
    pb->x = x;
    pb->top = top;
    pb->down = 1.0;
    pb->uniform = 1;
    pb->pu = 1.0 / (double)m;
    memset(r, 0, sizeof *r);
    r->kind = DRPO__Q_STEP;
    r->t = top - x[tu_below(rng, m)];
    r->c_top = 3.0;
    r->c_below = 2.0;
    r->c_at = 0.5;
    r->c_above = 0.25;
    r->scale = 1.25;
}

/* Every kernel set's instances on m units (m >= 2^22 takes the streamed
 * stores); out and pairs have room for m. */
static void check_length(tu_rng *rng, size_t m, int levels, double *x, double *out[4],
                         drpo_pair *pairs, size_t *ref_tops)
{
    drpo_problem pb;
    drpo_qrule r;
    memset(&pb, 0, sizeof pb);
    step_case(rng, m, levels, x, &pb, &r);
    pb.pairs = pairs;
    step_reference ref = step_by_loop(&pb, &r, out[3], ref_tops);
    for (size_t k = 0; k < sizeof step_sets / sizeof step_sets[0]; k++) {
        const step_kernel_set *set = &step_sets[k];
        step_counts got[3];
        for (int i = 0; i < 3; i++) {
            if (!set->inst[i] || !tu_instance_runs(i))
                continue;
            memset(out[i], 0xff, m * sizeof(double));
            got[i] = set->inst[i](&pb, &r, out[i]);
            ck_assert_msg(!memcmp(out[i], out[3], m * sizeof(double)),
                          "%s instance %d, m = %zu: other weights", set->name, i, m);
            ck_assert_msg(lanes_total(got[i].zero) == ref.zero &&
                              lanes_total(got[i].below) == ref.below &&
                              lanes_total(got[i].at) == ref.at,
                          "%s instance %d, m = %zu: counts %zu %zu %zu, not %zu %zu %zu",
                          set->name, i, m, lanes_total(got[i].zero), lanes_total(got[i].below),
                          lanes_total(got[i].at), ref.zero, ref.below, ref.at);
            double excess = drpo__v4_hsum(got[i].excess);
            double deficit = drpo__v4_hsum(got[i].deficit);
            if (set->measure == STEP_EXCESS) {
                ck_assert_msg(got[i].tops == ref.tops &&
                                  !memcmp(pairs, ref_tops, ref.tops * sizeof(size_t)),
                              "%s instance %d, m = %zu: argmax units %zu, not %zu", set->name,
                              i, m, got[i].tops, ref.tops);
                ck_assert_msg(fabsl(excess - ref.excess) <= 1e-13L * (ref.excess + 1.0L),
                              "%s instance %d, m = %zu: excess %.17g, not %.17Lg", set->name,
                              i, m, excess, ref.excess);
            }
            if (set->measure == STEP_DEFICIT)
                ck_assert_msg(fabsl(deficit - ref.deficit) <= 1e-13L * (ref.deficit + 1.0L),
                              "%s instance %d, m = %zu: deficit %.17g, not %.17Lg", set->name,
                              i, m, deficit, ref.deficit);
            if (i > 0 && set->inst[0]) {
                double e0 = drpo__v4_hsum(got[0].excess), f0 = drpo__v4_hsum(got[0].deficit);
                ck_assert_msg(!memcmp(&excess, &e0, sizeof e0) &&
                                  !memcmp(&deficit, &f0, sizeof f0),
                              "%s instance %d, m = %zu: not the baseline's sums (%a %a vs %a %a)",
                              set->name, i, m, excess, deficit, e0, f0);
            }
        }
    }
}

/* A test's arrays for up to cap units: the losses, four outputs (three
 * instances' and the loop's) 16 bytes past a cache line (aligned enough to
 * be streamed, not more), the scratch pairs and the loop's argmax units. */
typedef struct step_buffers {
    double *x, *buf[4], *out[4];
    drpo_pair *pairs;
    size_t *tops;
} step_buffers;

static void buffers_alloc(step_buffers *b, size_t cap)
{
    b->x = malloc(cap * sizeof *b->x);
    b->pairs = malloc(cap * sizeof *b->pairs);
    b->tops = malloc(cap * sizeof *b->tops);
    ck_assert(b->x && b->pairs && b->tops);
    for (int i = 0; i < 4; i++) {
        b->buf[i] = aligned_alloc(64, ((cap + 2) * sizeof(double) + 63) / 64 * 64);
        ck_assert(b->buf[i]);
        b->out[i] = b->buf[i] + 2;
    }
}

static void buffers_free(step_buffers *b)
{
    free(b->x);
    free(b->pairs);
    free(b->tops);
    for (int i = 0; i < 4; i++)
        free(b->buf[i]);
}

START_TEST(test_step_instances_agree)
{
    static const size_t lengths[] = {1,   2,   3,   4,   5,   7,   8,   9,   12,   13,  15,
                                     16,  17,  20,  255, 256, 257, 259, 260, 263,  264, 268,
                                     511, 512, 515, 1000, 1028, 4099};
    step_buffers b;
    buffers_alloc(&b, 4099);
    tu_rng rng;
    tu_rng_seed(&rng, 4242);
    for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++)
        for (int levels = 0; levels < 2; levels++)
            check_length(&rng, lengths[li], levels, b.x, b.out, b.pairs, b.tops);
    buffers_free(&b);
}
END_TEST

/* Outputs past the caches are streamed (drpo__stream_output): one length
 * there, not a multiple of eight. */
START_TEST(test_step_streamed)
{
    const size_t m = ((size_t)1 << 22) + 13;
    step_buffers b;
    buffers_alloc(&b, m);
    ck_assert(drpo__stream_output(b.out[0], m));
    tu_rng rng;
    tu_rng_seed(&rng, 77);
    check_length(&rng, m, 1, b.x, b.out, b.pairs, b.tops);
    buffers_free(&b);
}
END_TEST

typedef ramp_sums (*ramp_instance)(const drpo_problem *, const drpo_qrule *, double *);

#define RAMP_SET(name) {#name, TU_INSTANCES(name)}

static const struct {
    const char *name;
    ramp_instance inst[3];
} ramp_sets[] = {RAMP_SET(ramp_uniform_stream), RAMP_SET(ramp_uniform_cached)};

/* A ramp pass's totals: the sum of q, E and the support. */
static void ramp_totals(const ramp_sums *s, double out[3])
{
    out[0] = drpo__v4_ksum_total(s->sum_s, s->sum_c);
    out[1] = drpo__v4_hsum(s->e2);
    out[2] = -(double)(s->support[0] + s->support[1] + s->support[2] + s->support[3]);
}

/* The chi-square weights over a uniform base (q = (pu (t - d)_+) scale):
 * every instance, streamed or not (the streamed kernels take any 16-byte
 * aligned output), writes the loop's weights and the same totals, within
 * rounding of the loop's. */
START_TEST(test_ramp_instances_agree)
{
    static const size_t lengths[] = {1, 3, 7, 8, 9, 12, 15, 16, 17, 255, 256, 257, 263, 264,
                                     300, 511, 512, 519, 1000, 4099};
    step_buffers b;
    buffers_alloc(&b, 4099);
    tu_rng rng;
    tu_rng_seed(&rng, 99);
    for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
        size_t m = lengths[li];
        drpo_problem pb;
        drpo_qrule r;
        memset(&pb, 0, sizeof pb);
        step_case(&rng, m, (int)(li % 2), b.x, &pb, &r);
        r.kind = DRPO__Q_RAMP;
        r.scale = 1.0 / (r.t + 0.5);
        long double sum = 0.0L, e2 = 0.0L;
        double support = 0.0;
        for (size_t j = 0; j < m; j++) {
            double xj = r.t - (pb.top - b.x[j] * pb.down), c = xj > 0.0 ? xj : 0.0;
            b.out[3][j] = (pb.pu * c) * r.scale;
            sum += b.out[3][j];
            e2 += ((long double)c * r.scale - 1.0L) * ((long double)c * r.scale - 1.0L);
            support += xj > 0.0;
        }
        for (size_t k = 0; k < sizeof ramp_sets / sizeof ramp_sets[0]; k++) {
            double first[3];
            for (int i = 0; i < 3; i++) {
                if (!ramp_sets[k].inst[i] || !tu_instance_runs(i))
                    continue;
                memset(b.out[i], 0xff, m * sizeof(double));
                ramp_sums got = ramp_sets[k].inst[i](&pb, &r, b.out[i]);
                double tot[3];
                ramp_totals(&got, tot);
                ck_assert_msg(!memcmp(b.out[i], b.out[3], m * sizeof(double)),
                              "%s instance %d, m = %zu: other weights", ramp_sets[k].name, i, m);
                ck_assert_msg(fabsl(tot[0] - sum) <= 1e-14L * sum &&
                                  fabsl(tot[1] - e2) <= 1e-12L * (e2 + 1.0L) &&
                                  tot[2] == support,
                              "%s instance %d, m = %zu: sums %.17g %.17g %g, not %.17Lg %.17Lg %g",
                              ramp_sets[k].name, i, m, tot[0], tot[1], tot[2], sum, e2, support);
                if (i == 0)
                    memcpy(first, tot, sizeof first);
                else
                    ck_assert_msg(!memcmp(first, tot, sizeof first),
                                  "%s instance %d, m = %zu: not the baseline's bits (%a %a)",
                                  ramp_sets[k].name, i, m, tot[0], first[0]);
            }
        }
    }
    buffers_free(&b);
}
END_TEST

Suite *suite_weights(void)
{
    Suite *s = suite_create("weights");
    TCase *tc = tcase_create("step");
    tcase_add_test(tc, test_step_instances_agree);
    tcase_add_test(tc, test_step_streamed);
    tcase_add_test(tc, test_ramp_instances_agree);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}

/* test_checkpoint.c - checkpoints (issue 3): resuming is bitwise the same as
 * not stopping; truncated, damaged, incompatible and missing files are
 * rejected with their own status and change nothing; a failed save leaves
 * no temporary file. */
#include "check_util.h"
#include "suites.h"
#include "test_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const tm_cfg ccfgs[] = {
    {DRPO_SET_KL, DRPO_PARAM_PENALTY, 0.5, DRPO_MODE_EXACT, 0, DRPO_OPT_ADAMW, DRPO_SCHED_COSINE,
     "exact KL penalty, AdamW, cosine"},
    {DRPO_SET_CVAR, DRPO_PARAM_LEVEL, 0.3, DRPO_MODE_STOCHASTIC, 0, DRPO_OPT_MOMENTUM,
     DRPO_SCHED_WARMUP, "stochastic CVaR, Nesterov"},
    {DRPO_SET_KL, DRPO_PARAM_RADIUS, 0.2, DRPO_MODE_STOCHASTIC, 0, DRPO_OPT_ADAMW,
     DRPO_SCHED_COSINE, "stochastic KL radius, AdamW, cosine"},
    {DRPO_SET_CHI2, DRPO_PARAM_RADIUS, 0.1, DRPO_MODE_GROUP, 3, DRPO_OPT_ADAMW, DRPO_SCHED_COSINE,
     "group chi2 radius, AdamW, cosine"},
};

static void write_file(const char *path, const unsigned char *bytes, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(bytes, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

/* K steps, save, load into a fresh trainer over a fresh objective (and a
 * model whose parameters were scrambled), K more steps: bitwise the same
 * parameters and state as 2K uninterrupted steps. */
START_TEST(test_resume_bitwise)
{
    const tm_cfg *c = &ccfgs[_i];
    const int K = 12;
    char dir[TM_PATH], path[TM_PATH + 16];
    tm_tmpdir(dir);
    snprintf(path, sizeof path, "%s/ckpt", dir);
    tm_run a, b;
    tm_run_open(&a, c);
    tm_run_open(&b, c);
    for (int s = 0; s < 2 * K; s++) {
        tm_run_batch(&a, s, 6 + (size_t)(s % 3));
        ck_assert_int_eq(drpo_trainer_step(a.t, a.b), DRPO_OK);
    }
    for (int s = 0; s < K; s++) {
        tm_run_batch(&b, s, 6 + (size_t)(s % 3));
        ck_assert_int_eq(drpo_trainer_step(b.t, b.b), DRPO_OK);
    }
    ck_assert_int_eq(drpo_trainer_save(b.t, path), DRPO_OK);
    tm_cfg other = *c; /* fresh objective: other parameter, exact mode, other options */
    other.param = c->param * 0.5;
    other.mode = c->mode == DRPO_MODE_GROUP ? DRPO_MODE_GROUP : DRPO_MODE_EXACT;
    other.opt = DRPO_OPT_ADAMW;
    other.sched = DRPO_SCHED_CONSTANT;
    tm_run_renew(&b, &other);
    for (size_t i = 0; i < TM_RUN_D; i++)
        drpo_model_params(b.model)[i] = 123.0f;
    ck_assert_int_eq(drpo_trainer_load(b.t, path), DRPO_OK);
    double v;
    ck_assert_int_eq(drpo_objective_get(b.obj, c->key, &v), DRPO_OK);
    ck_assert(v == c->param);
    ck_assert_int_eq(drpo_objective_get(b.obj, DRPO_PARAM_MODE, &v), DRPO_OK);
    ck_assert(v == c->mode);
    ck_assert_int_eq(drpo_trainer_get(b.t, DRPO_TRAIN_OPTIMIZER, &v), DRPO_OK);
    ck_assert(v == c->opt);
    ck_assert_int_eq(drpo_trainer_diag(b.t, DRPO_TDIAG_STEPS, &v), DRPO_OK);
    ck_assert(v == K);
    for (int s = K; s < 2 * K; s++) {
        tm_run_batch(&b, s, 6 + (size_t)(s % 3));
        ck_assert_int_eq(drpo_trainer_step(b.t, b.b), DRPO_OK);
    }
    ck_assert_msg(memcmp(drpo_model_params(a.model), drpo_model_params(b.model),
                         TM_RUN_D * sizeof(float)) == 0,
                  "%s: resumed parameters differ", c->name);
    size_t la, lb;
    unsigned char *sa = tm_state_bytes(a.t, dir, &la), *sb = tm_state_bytes(b.t, dir, &lb);
    ck_assert_msg(la == lb && memcmp(sa, sb, la) == 0, "%s: resumed state differs", c->name);
    free(sa);
    free(sb);
    tm_run_close(&a);
    tm_run_close(&b);
    tm_rmdir(dir);
}
END_TEST

/* A file saved before the first step (no optimiser moments yet) loads, and
 * training from it matches training from the start bitwise. */
START_TEST(test_save_before_first_step)
{
    const tm_cfg *c = &ccfgs[0]; /* AdamW: two moments once it steps */
    char dir[TM_PATH], path[TM_PATH + 16];
    tm_tmpdir(dir);
    snprintf(path, sizeof path, "%s/ckpt", dir);
    tm_run a, b;
    tm_run_open(&a, c);
    tm_run_open(&b, c);
    ck_assert_int_eq(drpo_trainer_save(b.t, path), DRPO_OK);
    for (int s = 0; s < 3; s++) { /* b steps, then goes back to its start */
        tm_run_batch(&b, s, 6);
        ck_assert_int_eq(drpo_trainer_step(b.t, b.b), DRPO_OK);
    }
    for (size_t i = 0; i < TM_RUN_D; i++)
        drpo_model_params(b.model)[i] = 0.0f;
    ck_assert_int_eq(drpo_trainer_load(b.t, path), DRPO_OK);
    for (int s = 0; s < 5; s++) {
        tm_run_batch(&a, s, 6);
        tm_run_batch(&b, s, 6);
        ck_assert_int_eq(drpo_trainer_step(a.t, a.b), DRPO_OK);
        ck_assert_int_eq(drpo_trainer_step(b.t, b.b), DRPO_OK);
    }
    ck_assert(memcmp(drpo_model_params(a.model), drpo_model_params(b.model),
                     TM_RUN_D * sizeof(float)) == 0);
    tm_run_close(&a);
    tm_run_close(&b);
    tm_rmdir(dir);
}
END_TEST

/* A group-mode AdamW trainer after some steps, its file, and a victim
 * trainer (same configuration, other history) whose state must survive. */
typedef struct damage_setup {
    char dir[TM_PATH], path[TM_PATH + 16], bad[TM_PATH + 16];
    tm_run src, victim;
    unsigned char *good, *victim_state;
    size_t len, victim_len;
    float victim_params[TM_RUN_D];
} damage_setup;

static void damage_open(damage_setup *d)
{
    tm_tmpdir(d->dir);
    snprintf(d->path, sizeof d->path, "%s/ckpt", d->dir);
    snprintf(d->bad, sizeof d->bad, "%s/bad", d->dir);
    tm_run_open(&d->src, &ccfgs[3]);
    tm_run_open(&d->victim, &ccfgs[3]);
    for (int s = 0; s < 5; s++) {
        tm_run_batch(&d->src, s, 6);
        ck_assert_int_eq(drpo_trainer_step(d->src.t, d->src.b), DRPO_OK);
    }
    for (int s = 10; s < 13; s++) {
        tm_run_batch(&d->victim, s, 6);
        ck_assert_int_eq(drpo_trainer_step(d->victim.t, d->victim.b), DRPO_OK);
    }
    ck_assert_int_eq(drpo_trainer_save(d->src.t, d->path), DRPO_OK);
    d->good = tm_read_file(d->path, &d->len);
    ck_assert_ptr_nonnull(d->good);
    d->victim_state = tm_state_bytes(d->victim.t, d->dir, &d->victim_len);
    memcpy(d->victim_params, drpo_model_params(d->victim.model), sizeof d->victim_params);
}

static void damage_check_unchanged(damage_setup *d, const char *what, size_t at)
{
    ck_assert_msg(memcmp(d->victim_params, drpo_model_params(d->victim.model),
                         sizeof d->victim_params) == 0,
                  "%s at %zu: parameters changed", what, at);
}

static void damage_close(damage_setup *d)
{
    size_t len;
    unsigned char *now = tm_state_bytes(d->victim.t, d->dir, &len);
    ck_assert_msg(len == d->victim_len && memcmp(now, d->victim_state, len) == 0,
                  "a rejected load changed the trainer's state");
    /* the good file still loads */
    ck_assert_int_eq(drpo_trainer_load(d->victim.t, d->path), DRPO_OK);
    ck_assert_int_eq(memcmp(drpo_model_params(d->victim.model), drpo_model_params(d->src.model),
                            TM_RUN_D * sizeof(float)),
                     0);
    free(now);
    free(d->good);
    free(d->victim_state);
    tm_run_close(&d->src);
    tm_run_close(&d->victim);
    tm_rmdir(d->dir);
}

/* Which lengths / bytes to damage: every one in the first 512 bytes (the
 * header, options, parameters, moments, duals, group weights) and the last
 * 64 (the end of the history and the checksum), every 3rd in between (the
 * history ring), to keep the suite fast. */
static int sampled(size_t i, size_t len) { return i < 512 || i + 64 >= len || i % 3 == 0; }

/* Truncations (lengths 0 .. size-1, sampled) and the file with a trailing
 * byte: DRPO_ERR_CORRUPT, nothing changed. */
START_TEST(test_truncated_files)
{
    damage_setup d;
    damage_open(&d);
    ck_assert_uint_gt(d.len, 8000);
    for (size_t len = 0; len < d.len; len++) {
        if (!sampled(len, d.len))
            continue;
        write_file(d.bad, d.good, len);
        drpo_status st = drpo_trainer_load(d.victim.t, d.bad);
        ck_assert_msg(st == DRPO_ERR_CORRUPT, "truncated to %zu of %zu bytes: status %d", len,
                      d.len, (int)st);
        damage_check_unchanged(&d, "truncation", len);
    }
    unsigned char *longer = malloc(d.len + 1);
    memcpy(longer, d.good, d.len);
    longer[d.len] = 0;
    write_file(d.bad, longer, d.len + 1);
    ck_assert_int_eq(drpo_trainer_load(d.victim.t, d.bad), DRPO_ERR_CORRUPT);
    free(longer);
    damage_close(&d);
}
END_TEST

/* One bit flipped in each byte in turn (bit i % 8 of byte i; sampled):
 * DRPO_ERR_CORRUPT, nothing changed. */
START_TEST(test_bit_flips)
{
    damage_setup d;
    damage_open(&d);
    unsigned char *copy = malloc(d.len);
    memcpy(copy, d.good, d.len);
    size_t wrong = 0, first_wrong = 0;
    drpo_status wrong_st = DRPO_OK;
    for (size_t i = 0; i < d.len; i++) {
        if (!sampled(i, d.len))
            continue;
        copy[i] ^= (unsigned char)(1u << (i % 8));
        write_file(d.bad, copy, d.len);
        copy[i] = d.good[i];
        drpo_status st = drpo_trainer_load(d.victim.t, d.bad);
        if (st != DRPO_ERR_CORRUPT && wrong++ == 0) {
            first_wrong = i;
            wrong_st = st;
        }
        damage_check_unchanged(&d, "bit flip", i);
    }
    ck_assert_msg(wrong == 0,
                  "%zu of %zu damaged files not reported as DRPO_ERR_CORRUPT (first: byte %zu, "
                  "status %d)",
                  wrong, d.len, first_wrong, (int)wrong_st);
    free(copy);
    damage_close(&d);
}
END_TEST

/* Valid files of another model size, group count or set:
 * DRPO_ERR_INCOMPATIBLE; a missing file: DRPO_ERR_IO; nothing changed. */
START_TEST(test_incompatible_and_missing)
{
    damage_setup d;
    damage_open(&d);
    char missing[TM_PATH + 16];
    snprintf(missing, sizeof missing, "%s/no-such-file", d.dir);
    ck_assert_int_eq(drpo_trainer_load(d.victim.t, missing), DRPO_ERR_IO);
    ck_assert_int_eq(drpo_trainer_load(d.victim.t, NULL), DRPO_ERR_NULL);
    ck_assert_int_eq(drpo_trainer_load(NULL, d.path), DRPO_ERR_NULL);
    /* another set, same sizes */
    tm_cfg c = ccfgs[3];
    c.set = DRPO_SET_KL;
    tm_run other;
    tm_run_open(&other, &c);
    ck_assert_int_eq(drpo_trainer_save(other.t, d.bad), DRPO_OK);
    tm_run_close(&other);
    ck_assert_int_eq(drpo_trainer_load(d.victim.t, d.bad), DRPO_ERR_INCOMPATIBLE);
    /* other group count */
    c = ccfgs[3];
    c.groups = 2;
    tm_run_open(&other, &c);
    ck_assert_int_eq(drpo_trainer_save(other.t, d.bad), DRPO_OK);
    tm_run_close(&other);
    ck_assert_int_eq(drpo_trainer_load(d.victim.t, d.bad), DRPO_ERR_INCOMPATIBLE);
    /* other parameter count: a model of d + 1 parameters */
    tm_bt bt;
    tm_bt_init(&bt, TM_RUN_D + 1, 4);
    drpo_model *m = tm_bt_model(&bt, NULL);
    drpo_objective *o = tm_objective(ccfgs[3].set, ccfgs[3].key, ccfgs[3].param, ccfgs[3].mode,
                                     0.05, ccfgs[3].groups, NULL);
    drpo_trainer *t = NULL;
    ck_assert_int_eq(drpo_trainer_create(&t, m, o), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_load(t, d.path), DRPO_ERR_INCOMPATIBLE);
    ck_assert_int_eq(drpo_trainer_save(t, d.bad), DRPO_OK);
    ck_assert_int_eq(drpo_trainer_load(d.victim.t, d.bad), DRPO_ERR_INCOMPATIBLE);
    for (size_t i = 0; i < TM_RUN_D + 1; i++)
        ck_assert(drpo_model_params(m)[i] == 0.0f);
    drpo_trainer_free(t);
    drpo_objective_free(o);
    drpo_model_free(m);
    tm_bt_free(&bt);
    damage_check_unchanged(&d, "incompatible", 0);
    damage_close(&d);
}
END_TEST

/* A save that cannot complete reports DRPO_ERR_IO and leaves no temporary
 * file: a directory that does not exist, and a target that is a directory
 * (the rename fails after the temporary file was written). */
START_TEST(test_failed_save_leaves_nothing)
{
    damage_setup d;
    damage_open(&d);
    char path[2 * TM_PATH];
    snprintf(path, sizeof path, "%s/missing-dir/ckpt", d.dir);
    ck_assert_int_eq(drpo_trainer_save(d.victim.t, path), DRPO_ERR_IO);
    char sub[TM_PATH + 16];
    snprintf(sub, sizeof sub, "%s/sub", d.dir);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    snprintf(path, sizeof path, "%s/target", sub);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    ck_assert_int_eq(drpo_trainer_save(d.victim.t, path), DRPO_ERR_IO);
    ck_assert_uint_eq(tm_count_files(sub), 1); /* only the target directory itself */
    ck_assert_uint_eq(tm_count_files(path), 0);
    ck_assert_str_ne(drpo_trainer_last_error(d.victim.t), "");
    ck_assert_int_eq(drpo_trainer_save(NULL, path), DRPO_ERR_NULL);
    ck_assert_int_eq(drpo_trainer_save(d.victim.t, NULL), DRPO_ERR_NULL);
    rmdir(path);
    rmdir(sub);
    damage_close(&d);
}
END_TEST

Suite *suite_checkpoint(void)
{
    Suite *s = suite_create("checkpoint");
    TCase *tc = tcase_create("checkpoint");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_save_before_first_step);
    tcase_add_loop_test(tc, test_resume_bitwise, 0, (int)(sizeof ccfgs / sizeof ccfgs[0]));
    tcase_add_test(tc, test_truncated_files);
    tcase_add_test(tc, test_bit_flips);
    tcase_add_test(tc, test_incompatible_and_missing);
    tcase_add_test(tc, test_failed_save_leaves_nothing);
    suite_add_tcase(s, tc);
    return s;
}

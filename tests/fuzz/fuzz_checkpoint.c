/* fuzz_checkpoint.c - libFuzzer target: drpo_trainer_load on arbitrary
 * bytes (written to an in-memory file), into trainers of several
 * configurations.
 *
 * Each input is loaded twice per configuration: as it is (almost always a
 * checksum failure), and with its last 8 bytes replaced by the right XXH3-64
 * of the rest, so that the fuzzer explores the fields behind the checksum.
 * A rejected load must leave the trainer bitwise as it was (its saved bytes
 * and the model's parameters) and return a defined error; after an accepted
 * one the trainer must survive steps, the weights-only path, the
 * convergence test, every diagnostic and a save/load round trip that
 * reproduces the file byte for byte.  Every allocation is counted: nothing
 * may leak. */
#define XXH_STATIC_LINKING_ONLY
#include "fuzz_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

typedef struct cfg {
    int32_t set, key;
    double param;
    int32_t mode, groups, opt;
    int model; /* 0 none (weights only), 1 callbacks */
} cfg;

static const cfg cfgs[] = {
    {DRPO_SET_KL, DRPO_PARAM_PENALTY, 0.5, DRPO_MODE_EXACT, 0, DRPO_OPT_ADAMW, 1},
    {DRPO_SET_CVAR, DRPO_PARAM_LEVEL, 0.3, DRPO_MODE_STOCHASTIC, 0, DRPO_OPT_MOMENTUM, 1},
    {DRPO_SET_CHI2, DRPO_PARAM_RADIUS, 0.1, DRPO_MODE_GROUP, 3, DRPO_OPT_ADAMW, 1},
    {DRPO_SET_KL, DRPO_PARAM_RADIUS, 0.2, DRPO_MODE_STOCHASTIC, 0, DRPO_OPT_SGD, 0},
    {DRPO_SET_TV, DRPO_PARAM_RADIUS, 0.2, DRPO_MODE_EXACT, 2, DRPO_OPT_SGD, 1},
};

typedef struct rig {
    fz_alloc st;
    drpo_allocator a;
    fz_model fm;
    drpo_model *m;
    drpo_objective *o;
    drpo_trainer *t;
    drpo_batch *b;
} rig;

static void rig_open(rig *r, const cfg *c)
{
    memset(r, 0, sizeof *r);
    r->a = fz_allocator(&r->st);
    drpo_model_callbacks cb = fz_callbacks();
    if (c->model && drpo_model_create_with_allocator(&r->m, FZ_D, &cb, &r->fm, &r->a) != DRPO_OK)
        abort();
    if (drpo_objective_create_with_allocator(&r->o, c->set, &r->a) != DRPO_OK ||
        drpo_objective_set(r->o, c->key, c->param) != DRPO_OK ||
        drpo_objective_set(r->o, DRPO_PARAM_GROUPS, c->groups) != DRPO_OK ||
        drpo_objective_set(r->o, DRPO_PARAM_MODE, c->mode) != DRPO_OK ||
        drpo_trainer_create_with_allocator(&r->t, r->m, r->o, &r->a) != DRPO_OK ||
        drpo_trainer_set(r->t, DRPO_TRAIN_OPTIMIZER, c->opt) != DRPO_OK ||
        drpo_batch_create_with_allocator(&r->b, &r->a) != DRPO_OK)
        abort();
    for (int j = 0; j < 12; j++)
        if (drpo_batch_add_key(r->b, (uint64_t)(j / 2), c->groups ? j % c->groups : -1, j) !=
            DRPO_OK)
            abort();
}

static void rig_close(rig *r)
{
    drpo_trainer_free(r->t);
    drpo_objective_free(r->o);
    drpo_model_free(r->m);
    drpo_batch_free(r->b);
    if (r->st.live != 0)
        abort(); /* a leak */
}


/* The trainer's file, read back (malloc'd). */
static unsigned char *save_bytes(rig *r, const char *path, size_t *len)
{
    if (drpo_trainer_save(r->t, path) != DRPO_OK)
        abort();
    FILE *f = fopen(path, "rb");
    if (!f)
        abort();
    size_t cap = 1 << 16;
    unsigned char *buf = malloc(cap);
    *len = fread(buf, 1, cap, f);
    fclose(f);
    return buf;
}

static void exercise(rig *r, const cfg *c)
{
    double loss[12], w[12], v;
    for (int j = 0; j < 12; j++)
        loss[j] = 0.1 * j;
    drpo_status st;
    for (int k = 0; k < 3; k++) {
        if (c->model) {
            st = drpo_trainer_step(r->t, r->b);
            if (!fz_status_known(st))
                abort();
            st = drpo_trainer_evaluate(r->t, r->b, &v, &v);
            if (!fz_status_known(st))
                abort();
        }
        st = drpo_trainer_weights(r->t, r->b, loss, w, &v);
        if (!fz_status_known(st))
            abort();
        if (st == DRPO_OK && drpo_trainer_commit(r->t) != DRPO_OK)
            abort();
        if (!fz_status_known(drpo_trainer_test(r->t)))
            abort();
    }
    for (int32_t key = 0; key <= DRPO_TDIAG_CALLBACK_CODE + 1; key++)
        if (!fz_status_known(drpo_trainer_diag(r->t, key, &v)))
            abort();
    for (int32_t g = -1; g <= 3; g++)
        for (int32_t key = 0; key <= 4; key++)
            if (!fz_status_known(drpo_trainer_group_diag(r->t, g, key, &v)))
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char dir[] = "/tmp/drpo-fuzz-ckpt-XXXXXX";
    static int have_dir;
    if (!have_dir) {
        if (!mkdtemp(dir))
            abort();
        have_dir = 1;
    }
    fz_file in;
    if (fz_file_open(&in) != 0)
        abort();
    unsigned char *fixed = malloc(size ? size : 1);
    memcpy(fixed, data, size);
    if (size >= 8) {
        XXH64_canonical_t h;
        XXH64_canonicalFromHash(&h, XXH3_64bits(data, size - 8));
        memcpy(fixed + size - 8, h.digest, 8);
    }
    char saved[64];
    snprintf(saved, sizeof saved, "%s/state", dir);
    for (size_t ci = 0; ci < sizeof cfgs / sizeof cfgs[0]; ci++) {
        for (int variant = 0; variant < 2; variant++) {
            const cfg *c = &cfgs[ci];
            rig r;
            rig_open(&r, c);
            if (fz_file_write(&in, variant ? fixed : data, size) != 0)
                abort();
            float before[FZ_D] = {0};
            if (r.m)
                memcpy(before, drpo_model_params(r.m), sizeof before);
            drpo_status st = drpo_trainer_load(r.t, in.path);
            if (st != DRPO_OK) {
                if (st != DRPO_ERR_CORRUPT && st != DRPO_ERR_INCOMPATIBLE && st != DRPO_ERR_IO)
                    abort();
                if (r.m && memcmp(before, drpo_model_params(r.m), sizeof before) != 0)
                    abort();
                double steps;
                if (drpo_trainer_diag(r.t, DRPO_TDIAG_STEPS, &steps) != DRPO_OK || steps != 0)
                    abort();
                rig_close(&r);
                continue;
            }
            /* accepted: the parameters are the file's (after the header,
             * objective, options, steps, n and k: byte 212), and saving is
             * idempotent: the trainer's file loads into a fresh trainer
             * whose file is the same bytes.  (The input itself is not
             * reproduced byte for byte: the reserved word is written as 0
             * and all-zero moments as none.) */
            const unsigned char *in_bytes = variant ? fixed : data;
            if (r.m && memcmp(drpo_model_params(r.m), in_bytes + 212, FZ_D * sizeof(float)) != 0)
                abort();
            size_t len1, len2;
            unsigned char *one = save_bytes(&r, saved, &len1);
            rig r2;
            rig_open(&r2, c);
            if (drpo_trainer_load(r2.t, saved) != DRPO_OK)
                abort();
            unsigned char *two = save_bytes(&r2, saved, &len2);
            if (len1 != len2 || memcmp(one, two, len1) != 0)
                abort();
            free(one);
            free(two);
            rig_close(&r2);
            exercise(&r, c);
            rig_close(&r);
        }
    }
    free(fixed);
    fz_file_close(&in);
    return 0;
}

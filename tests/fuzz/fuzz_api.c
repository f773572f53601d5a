/* fuzz_api.c - libFuzzer target: random sequences of API calls on one
 * objective, model, trainer and two batches, every allocation through a
 * counting allocator that the input can make fail.
 *
 * The first byte picks the set, the model (callbacks or the built-in
 * pairwise linear model) and the group count; then each op byte picks a
 * call and the bytes after it its arguments (values from a table of awkward
 * doubles: NaN, infinities, denormals, +-1e300 ...).  Invariants checked
 * after every call:
 *  - the status is one the header defines;
 *  - a failed step, commit, evaluate or load leaves the parameters and the
 *    step count bitwise as they were;
 *  - after a successful step every parameter is finite (unless the host
 *    itself wrote a non-finite one);
 *  - a failed batch_add leaves the batch's size as it was;
 *  - at the end, with every handle freed, no allocation is live. */
#include "fuzz_common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const float diff_rows[16 * FZ_D] = {
    1, 0, 0, 0,  0, 1, 0, 0,  0, 0, 1, 0,  0, 0, 0, 1,  1, -1, 0, 0,  0.5f, 0.5f, 0, 0,
    -1, 0, 2, 0,  0, -2, 0, 1,  3, 1, -1, 0,  0, 0, -0.25f, 4,  1, 1, 1, 1,  -1, -1, -1, -1,
    2, 0, 0, -2,  0, 0.1f, 0, 0,  0.01f, 0, 0, 0,  -0.5f, 1.5f, -2.5f, 0.5f,
};

static int progress_rc;
static int progress(void *user, const drpo_trainer *t)
{
    (void)user;
    double v;
    drpo_trainer_diag(t, DRPO_TDIAG_ROBUST, &v);
    return progress_rc;
}

#define CHECK(cond)                                                                             \
    do {                                                                                        \
        if (!(cond))                                                                            \
            abort();                                                                            \
    } while (0)

typedef struct world {
    fz_alloc st;
    drpo_allocator a;
    fz_model fm;
    drpo_model *m;
    drpo_objective *o;
    drpo_trainer *t;
    drpo_batch *b[2];
    int host_nonfinite; /* the host wrote a non-finite parameter */
    int32_t set, groups;
} world;

static int params_finite(const world *w)
{
    if (!w->m)
        return 1;
    const float *p = drpo_model_params(w->m);
    for (size_t i = 0; i < drpo_model_n_params(w->m); i++)
        if (!isfinite(p[i]))
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    world w;
    memset(&w, 0, sizeof w);
    w.a = fz_allocator(&w.st);
    unsigned head = fz_u8(&in);
    w.set = (int32_t)(head % 5);
    int builtin = (head >> 3) & 1;
    w.groups = (int32_t)((head >> 4) % 4);
    char path[64];
    snprintf(path, sizeof path, "/tmp/drpo-fuzz-api-%d", (int)getpid());

    drpo_model_callbacks cb = fz_callbacks();
    drpo_status st;
    if (builtin)
        st = drpo_pairwise_linear_create_with_allocator(&w.m, FZ_D, 16, diff_rows,
                                                        (int32_t)((head >> 6) % 5), 0.5, 0.1,
                                                        NULL, &w.a);
    else
        st = drpo_model_create_with_allocator(&w.m, FZ_D, &cb, &w.fm, &w.a);
    CHECK(st == DRPO_OK);
    CHECK(drpo_objective_create_with_allocator(&w.o, w.set, &w.a) == DRPO_OK);
    CHECK(drpo_objective_set(w.o, DRPO_PARAM_GROUPS, w.groups) == DRPO_OK);
    CHECK(drpo_trainer_create_with_allocator(&w.t, w.m, w.o, &w.a) == DRPO_OK);
    CHECK(drpo_batch_create_with_allocator(&w.b[0], &w.a) == DRPO_OK);
    CHECK(drpo_batch_create_with_allocator(&w.b[1], &w.a) == DRPO_OK);
    CHECK(drpo_trainer_set_progress(w.t, progress, NULL) == DRPO_OK);

    for (int ops = 0; in.n > 0 && ops < 200; ops++) {
        unsigned op = fz_u8(&in) % 20;
        drpo_batch *b = w.b[fz_u8(&in) & 1];
        float before[FZ_D];
        memcpy(before, drpo_model_params(w.m), sizeof before);
        double steps0, v, v2;
        CHECK(drpo_trainer_diag(w.t, DRPO_TDIAG_STEPS, &steps0) == DRPO_OK);
        int changes_state = 0; /* on success the state may change */
        st = DRPO_OK;
        switch (op) {
        case 0: {
            size_t n0 = drpo_batch_size(b);
            unsigned k = fz_u8(&in), g = fz_u8(&in), h = fz_u8(&in);
            st = drpo_batch_add_key(b, k % 8, (int32_t)(g % 6) - 2, (int64_t)h - 8);
            CHECK(st == DRPO_OK || drpo_batch_size(b) == n0);
            break;
        }
        case 1: {
            size_t n0 = drpo_batch_size(b);
            unsigned len = fz_u8(&in) % 6;
            unsigned char prompt[8] = {0};
            for (unsigned i = 0; i < len; i++)
                prompt[i] = (unsigned char)fz_u8(&in);
            st = drpo_batch_add(b, len || fz_u8(&in) % 2 ? prompt : NULL, len,
                                (int32_t)(fz_u8(&in) % 5) - 1, (int64_t)fz_u8(&in));
            CHECK(st == DRPO_OK || drpo_batch_size(b) == n0);
            break;
        }
        case 2: drpo_batch_clear(b); break;
        case 3: {
            int32_t key = (int32_t)(fz_u8(&in) % 9) - 1;
            st = drpo_objective_set(w.o, key, fz_value(&in));
            break;
        }
        case 4: {
            int32_t key = (int32_t)(fz_u8(&in) % 21) - 1;
            st = drpo_trainer_set(w.t, key, fz_value(&in));
            break;
        }
        case 5:
            changes_state = 1;
            st = drpo_trainer_step(w.t, b);
            if (st == DRPO_OK && !w.host_nonfinite)
                CHECK(params_finite(&w));
            break;
        case 6: {
            double loss[64], pw[64];
            size_t n = drpo_batch_size(b);
            n = n > 64 ? 64 : n;
            for (size_t j = 0; j < n; j++)
                loss[j] = fz_u8(&in) < 200 ? 0.01 * fz_u8(&in) : fz_value(&in);
            if (drpo_batch_size(b) > 64)
                break;
            st = drpo_trainer_weights(w.t, b, loss, pw, &v);
            if (st == DRPO_OK) {
                CHECK(isfinite(v));
                for (size_t j = 0; j < n; j++)
                    CHECK(isfinite(pw[j]) && pw[j] >= 0.0);
            }
            break;
        }
        case 7:
            changes_state = 1;
            st = drpo_trainer_commit(w.t);
            break;
        case 8:
            st = drpo_trainer_evaluate(w.t, b, &v, &v2);
            break;
        case 9:
            progress_rc = fz_u8(&in) % 2;
            st = drpo_trainer_test(w.t);
            break;
        case 10:
            for (int32_t key = 0; key <= 18; key++)
                CHECK(fz_status_known(drpo_trainer_diag(w.t, key, &v)));
            for (int32_t g = -1; g <= 4; g++)
                for (int32_t key = 0; key <= 4; key++)
                    CHECK(fz_status_known(drpo_trainer_group_diag(w.t, g, key, &v)));
            for (int32_t key = 0; key <= 13; key++)
                CHECK(fz_status_known(drpo_objective_diag(w.o, key, &v)));
            for (int32_t key = 0; key <= 7; key++)
                CHECK(fz_status_known(drpo_objective_get(w.o, key, &v)));
            for (int32_t key = 0; key <= 19; key++)
                CHECK(fz_status_known(drpo_trainer_get(w.t, key, &v)));
            break;
        case 11:
            st = drpo_trainer_save(w.t, path);
            if (st == DRPO_OK) {
                changes_state = 1;
                st = drpo_trainer_load(w.t, path);
            }
            break;
        case 12: {
            double loss[16], base[16], q[16];
            unsigned n = fz_u8(&in) % 17;
            int with_base = fz_u8(&in) & 1;
            for (unsigned i = 0; i < n; i++) {
                loss[i] = fz_value(&in);
                base[i] = fz_value(&in);
            }
            st = drpo_objective_solve(w.o, n, loss, with_base ? base : NULL, q, &v);
            break;
        }
        case 13: /* fail one of the next few allocations */
            w.st.fail_at = w.st.count + 1 + fz_u8(&in) % 4;
            break;
        case 14: { /* the host writes a parameter */
            unsigned i = fz_u8(&in) % FZ_D;
            float x = (float)fz_value(&in);
            drpo_model_params(w.m)[i] = x;
            if (!isfinite(x))
                w.host_nonfinite = 1;
            break;
        }
        case 15: w.fm.mode = (int)(fz_u8(&in) % 10); break;
        case 16: /* a new trainer over the same objective (mode and groups may differ now) */
        {
            drpo_trainer *t2 = NULL;
            st = drpo_trainer_create_with_allocator(&t2, w.m, w.o, &w.a);
            CHECK((st == DRPO_OK) == (t2 != NULL));
            if (st == DRPO_OK) {
                drpo_trainer_free(w.t);
                w.t = t2;
                CHECK(drpo_trainer_set_progress(w.t, progress, NULL) == DRPO_OK);
                CHECK(drpo_trainer_diag(w.t, DRPO_TDIAG_STEPS, &steps0) == DRPO_OK);
            }
            break;
        }
        case 17: {
            double margin[8], l[8], dl[8];
            for (int i = 0; i < 8; i++)
                margin[i] = fz_value(&in);
            int32_t kind = (int32_t)(fz_u8(&in) % 6);
            double beta = fz_value(&in), smoothing = fz_value(&in);
            st = drpo_loss_from_margins(kind, 8, margin, beta, smoothing, l, dl);
            if (st == DRPO_OK)
                for (int i = 0; i < 8; i++) {
                    /* never NaN or negative; a loss whose true value
                     * overflows is +inf by design (IPO's square, or
                     * beta * m beyond DBL_MAX: tests/test_losses.c), and so
                     * may be IPO's slope 2 (m - 1/(2 beta)) */
                    CHECK(!isnan(l[i]) && l[i] >= 0.0 && !isnan(dl[i]));
                    CHECK(isfinite(dl[i]) || kind == DRPO_LOSS_IPO);
                }
            break;
        }
        case 18: { /* weights-only on the other batch, then a step on this one */
            changes_state = 1;
            st = drpo_trainer_step(w.t, b);
            break;
        }
        default: {
            size_t n = drpo_batch_size(b);
            for (size_t j = 0; j <= n; j++) {
                (void)drpo_batch_host_index(b, j);
                (void)drpo_batch_group(b, j);
                (void)drpo_batch_key(b, j);
                (void)drpo_batch_unit_of(b, j);
            }
            CHECK(drpo_batch_units(b) <= n);
            break;
        }
        }
        CHECK(fz_status_known(st));
        double steps1;
        CHECK(drpo_trainer_diag(w.t, DRPO_TDIAG_STEPS, &steps1) == DRPO_OK);
        if (st < 0 || !changes_state) {
            CHECK(memcmp(before, drpo_model_params(w.m), sizeof before) == 0 || op == 14);
            CHECK(steps1 == steps0 || op == 16);
        }
    }
    drpo_trainer_free(w.t);
    drpo_objective_free(w.o);
    drpo_model_free(w.m);
    drpo_batch_free(w.b[0]);
    drpo_batch_free(w.b[1]);
    CHECK(w.st.live == 0);
    unlink(path);
    return 0;
}

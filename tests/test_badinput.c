/* test_badinput.c - the objective's contract at its edges: every bad input
 * gives its own documented status and writes nothing (outputs pre-filled with
 * a sentinel and compared bitwise), allocation through a counting and a
 * failing allocator, and the version and status-string functions. */
#include "check_util.h"
#include "suites.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double good_loss[4] = {0.5, -1.0, 2.0, 0.25};

static drpo_objective *make(int32_t set, int32_t key, double prm)
{
    drpo_objective *obj = NULL;
    ck_assert_int_eq(drpo_objective_create(&obj, set), DRPO_OK);
    ck_assert_ptr_nonnull(obj);
    if (key)
        ck_assert_int_eq(drpo_objective_set(obj, key, prm), DRPO_OK);
    return obj;
}

/* A solve that must fail with `want` and write nothing: weights and value
 * keep their sentinel, and the diagnostics of the previous solve (if any)
 * stay as they were.  Returns the last-error message. */
static const char *expect_fail(drpo_objective *obj, size_t n, const double *loss,
                               const double *base, drpo_status want)
{
    double w[8], v, before = NAN, after = NAN;
    tu_fill_sentinel(w, 8);
    tu_fill_sentinel(&v, 1);
    drpo_status had = obj ? drpo_objective_diag(obj, DRPO_DIAG_VALUE, &before) : DRPO_ERR_NULL;
    drpo_status st = drpo_objective_solve(obj, n, loss, base, w, &v);
    ck_assert_msg(st == want, "status %d (%s), expected %d", (int)st, drpo_status_string(st),
                  (int)want);
    ck_assert_msg(tu_is_sentinel(w, 8) && tu_is_sentinel(&v, 1), "a failed solve wrote output");
    if (obj) {
        ck_assert_int_eq(drpo_objective_diag(obj, DRPO_DIAG_VALUE, &after), had);
        ck_assert_msg(memcmp(&before, &after, sizeof before) == 0, "diagnostics changed");
        const char *msg = drpo_objective_last_error(obj);
        ck_assert_ptr_nonnull(msg);
        ck_assert_msg(msg[0] != '\0', "no error message for status %d", (int)want);
        return msg;
    }
    return "";
}

/* Each bad solve input, on a fresh handle and on one with a previous solve. */
static void bad_solves(drpo_objective *obj)
{
    double l[4], p[4] = {0.25, 0.25, 0.25, 0.25};
    expect_fail(obj, 4, NULL, NULL, DRPO_ERR_NULL);
    expect_fail(obj, 0, good_loss, NULL, DRPO_ERR_SIZE);
    const double nonfinite[] = {NAN, INFINITY, -INFINITY};
    for (size_t k = 0; k < 3; k++) {
        memcpy(l, good_loss, sizeof l);
        l[2] = nonfinite[k];
        const char *msg = expect_fail(obj, 4, l, NULL, DRPO_ERR_LOSS_NONFINITE);
        ck_assert_msg(strstr(msg, "2") != NULL, "message \"%s\" does not name index 2", msg);
        l[2] = good_loss[2];
        l[3] = nonfinite[k];
        msg = expect_fail(obj, 4, l, NULL, DRPO_ERR_LOSS_NONFINITE);
        ck_assert_msg(strstr(msg, "3") != NULL, "message \"%s\" does not name index 3", msg);
    }
    const double bad_entry[] = {-0.25, NAN, INFINITY, -INFINITY};
    for (size_t k = 0; k < 4; k++) {
        double b[4] = {0.25, 0.25, 0.25, 0.25};
        b[1] = bad_entry[k];
        expect_fail(obj, 4, good_loss, b, DRPO_ERR_BASE_NEGATIVE);
    }
    const double sums[] = {1.0 + 2e-9, 1.0 - 2e-9, 0.5, 0.0, 4.0};
    for (size_t k = 0; k < 5; k++) {
        double b[4];
        for (size_t i = 0; i < 4; i++)
            b[i] = p[i] * sums[k];
        expect_fail(obj, 4, good_loss, b, DRPO_ERR_BASE_SUM);
    }
    expect_fail(NULL, 4, good_loss, NULL, DRPO_ERR_NULL);
}

/* A bad entry anywhere in a long input over a base (1037 units: blocks of
 * 256 in two chains of four, and a tail of five): refused with its index
 * named, whether or not its unit is on the support, and nothing written. */
START_TEST(test_bad_entries_long_base)
{
    enum { N = 1037 };
    static const size_t at[] = {0, 3, 4, 7, 8, 255, 256, 257, 511, 1031, 1032, 1036};
    static const double bad_loss[] = {NAN, INFINITY, -INFINITY};
    static const double bad_base[] = {-1e-3, NAN, INFINITY, -INFINITY};
    tu_rng r;
    tu_rng_seed(&r, 401);
    double *l = malloc(N * sizeof *l), *b = malloc(N * sizeof *b), *w = malloc(N * sizeof *w);
    double *b2 = malloc(N * sizeof *b2), *l2 = malloc(N * sizeof *l2);
    ck_assert(l && b && w && b2 && l2);
    tu_random_losses(&r, N, 0, l);
    tu_random_base(&r, N, 1, b);
    drpo_objective *obj = make(DRPO_SET_KL, DRPO_PARAM_RADIUS, 0.1);
    double v;
    ck_assert_int_eq(drpo_objective_solve(obj, N, l, b, w, &v), DRPO_OK);
    for (size_t k = 0; k < sizeof at / sizeof at[0]; k++) {
        char index[32];
        snprintf(index, sizeof index, "[%zu]", at[k]);
        for (size_t e = 0; e < sizeof bad_base / sizeof bad_base[0]; e++) {
            memcpy(b2, b, N * sizeof *b);
            b2[at[k]] = bad_base[e];
            tu_fill_sentinel(w, N);
            ck_assert_int_eq(drpo_objective_solve(obj, N, l, b2, w, &v), DRPO_ERR_BASE_NEGATIVE);
            ck_assert_msg(tu_is_sentinel(w, N), "a failed solve wrote weights");
            ck_assert_msg(strstr(drpo_objective_last_error(obj), index) != NULL,
                          "\"%s\" does not name %s", drpo_objective_last_error(obj), index);
        }
        for (size_t e = 0; e < sizeof bad_loss / sizeof bad_loss[0]; e++)
            for (int on = 0; on < 2; on++) { /* the unit on the support, then off it */
                memcpy(l2, l, N * sizeof *l);
                memcpy(b2, b, N * sizeof *b);
                l2[at[k]] = bad_loss[e];
                if (!on) { /* its mass moved to a neighbour: the base still sums to 1 */
                    b2[at[k] == 0 ? 1 : at[k] - 1] += b2[at[k]];
                    b2[at[k]] = 0.0;
                }
                tu_fill_sentinel(w, N);
                ck_assert_int_eq(drpo_objective_solve(obj, N, l2, b2, w, &v),
                                 DRPO_ERR_LOSS_NONFINITE);
                ck_assert_msg(tu_is_sentinel(w, N), "a failed solve wrote weights");
                ck_assert_msg(strstr(drpo_objective_last_error(obj), index) != NULL,
                              "\"%s\" does not name %s", drpo_objective_last_error(obj), index);
            }
    }
    drpo_objective_free(obj);
    free(l);
    free(b);
    free(w);
    free(b2);
    free(l2);
}
END_TEST

START_TEST(test_bad_solve_inputs)
{
    for (size_t fi = 0; fi < tu_nforms; fi++) {
        const tu_form *f = &tu_forms[fi];
        double prm[TU_MAXPARAMS];
        tu_params(f, prm);
        drpo_objective *obj = make(f->set, f->key, prm[1 % TU_MAXPARAMS]);
        bad_solves(obj); /* before any solve */
        double w[4], v;
        ck_assert_int_eq(drpo_objective_solve(obj, 4, good_loss, NULL, w, &v), DRPO_OK);
        bad_solves(obj); /* after one: its diagnostics survive */
        drpo_objective_free(obj);
    }
}
END_TEST

/* A base summing to 1 within 1e-9 is accepted (and renormalised). */
START_TEST(test_base_sum_tolerance)
{
    const double sums[] = {1.0 + 0.5e-9, 1.0 - 0.5e-9};
    for (size_t k = 0; k < 2; k++) {
        double b[4], w[4], v;
        for (size_t i = 0; i < 4; i++)
            b[i] = 0.25 * sums[k];
        ck_assert_int_eq(tu_solve(DRPO_SET_KL, DRPO_PARAM_RADIUS, 0.1, 4, good_loss, b, w, &v),
                         DRPO_OK);
        double s = w[0] + w[1] + w[2] + w[3];
        ck_assert_msg(fabs(s - 1.0) <= 1e-12, "weights sum to %.17g", s);
    }
}
END_TEST

START_TEST(test_param_unset)
{
    const int32_t sets[] = {DRPO_SET_KL, DRPO_SET_CHI2, DRPO_SET_CVAR, DRPO_SET_TV};
    for (size_t k = 0; k < 4; k++) {
        drpo_objective *obj = make(sets[k], 0, 0.0);
        expect_fail(obj, 4, good_loss, NULL, DRPO_ERR_PARAM_UNSET);
        double x;
        int32_t key = sets[k] == DRPO_SET_CVAR ? DRPO_PARAM_LEVEL : DRPO_PARAM_RADIUS;
        ck_assert_int_eq(drpo_objective_get(obj, key, &x), DRPO_ERR_PARAM_UNSET);
        drpo_objective_free(obj);
    }
}
END_TEST

/* A rejected value leaves the parameter as it was. */
static void expect_range(drpo_objective *obj, int32_t key, double bad, double keep)
{
    ck_assert_msg(drpo_objective_set(obj, key, bad) == DRPO_ERR_PARAM_RANGE,
                  "key %d value %g accepted", (int)key, bad);
    ck_assert_msg(drpo_objective_last_error(obj)[0] != '\0', "no message");
    double x = NAN;
    ck_assert_int_eq(drpo_objective_get(obj, key, &x), DRPO_OK);
    ck_assert_msg(x == keep, "key %d now %g, was %g", (int)key, x, keep);
}

START_TEST(test_param_range)
{
    const double bad[] = {-1.0, -1e-300, NAN, INFINITY, -INFINITY};
    const int32_t sets[] = {DRPO_SET_KL, DRPO_SET_CHI2, DRPO_SET_TV};
    for (size_t s = 0; s < 3; s++) {
        drpo_objective *obj = make(sets[s], 0, 0.0);
        const int32_t keys[] = {DRPO_PARAM_RADIUS, DRPO_PARAM_PENALTY};
        for (size_t k = 0; k < 2; k++) {
            ck_assert_int_eq(drpo_objective_set(obj, keys[k], 0.5), DRPO_OK);
            for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++)
                expect_range(obj, keys[k], bad[b], 0.5);
            ck_assert_int_eq(drpo_objective_set(obj, keys[k], 0.0), DRPO_OK); /* 0 is allowed */
        }
        drpo_objective_free(obj);
    }
    const double bad_level[] = {0.0, -0.1, 1.0 + 1e-15, 1.5, NAN, INFINITY, -INFINITY};
    drpo_objective *obj = make(DRPO_SET_CVAR, DRPO_PARAM_LEVEL, 0.3);
    for (size_t b = 0; b < sizeof bad_level / sizeof bad_level[0]; b++)
        expect_range(obj, DRPO_PARAM_LEVEL, bad_level[b], 0.3);
    ck_assert_int_eq(drpo_objective_set(obj, DRPO_PARAM_LEVEL, 1.0), DRPO_OK);
    ck_assert_int_eq(drpo_objective_set(obj, DRPO_PARAM_LEVEL, 1e-300), DRPO_OK);
    drpo_objective_free(obj);
}
END_TEST

START_TEST(test_sets_and_keys)
{
    drpo_objective *obj = (drpo_objective *)&obj; /* not NULL: must be reset */
    const int32_t bad_sets[] = {-1, 5, 99, INT32_MIN, INT32_MAX};
    for (size_t k = 0; k < 5; k++) {
        obj = (drpo_objective *)&obj;
        ck_assert_int_eq(drpo_objective_create(&obj, bad_sets[k]), DRPO_ERR_SET);
        ck_assert_ptr_null(obj);
    }
    ck_assert_int_eq(drpo_objective_create(NULL, DRPO_SET_KL), DRPO_ERR_NULL);

    double x = 0.0;
    const int32_t unknown[] = {0, -1, 99, INT32_MAX};
    obj = make(DRPO_SET_KL, DRPO_PARAM_RADIUS, 0.2);
    for (size_t k = 0; k < 4; k++) {
        ck_assert_int_eq(drpo_objective_set(obj, unknown[k], 1.0), DRPO_ERR_KEY);
        ck_assert_int_eq(drpo_objective_get(obj, unknown[k], &x), DRPO_ERR_KEY);
    }
    /* keys a set does not take */
    ck_assert_int_eq(drpo_objective_set(obj, DRPO_PARAM_LEVEL, 0.5), DRPO_ERR_KEY);
    ck_assert_int_eq(drpo_objective_get(obj, DRPO_PARAM_LEVEL, &x), DRPO_ERR_KEY);
    ck_assert_int_eq(drpo_objective_get(obj, DRPO_PARAM_RADIUS, &x), DRPO_OK);
    ck_assert(x == 0.2); /* unchanged by the rejected keys */
    drpo_objective_free(obj);
    obj = make(DRPO_SET_CVAR, DRPO_PARAM_LEVEL, 0.5);
    ck_assert_int_eq(drpo_objective_set(obj, DRPO_PARAM_RADIUS, 0.5), DRPO_ERR_KEY);
    ck_assert_int_eq(drpo_objective_set(obj, DRPO_PARAM_PENALTY, 0.5), DRPO_ERR_KEY);
    drpo_objective_free(obj);
    obj = make(DRPO_SET_NONE, 0, 0.0);
    ck_assert_int_eq(drpo_objective_set(obj, DRPO_PARAM_RADIUS, 0.5), DRPO_ERR_KEY);
    ck_assert_int_eq(drpo_objective_set(obj, DRPO_PARAM_PENALTY, 0.5), DRPO_ERR_KEY);
    ck_assert_int_eq(drpo_objective_set(obj, DRPO_PARAM_LEVEL, 0.5), DRPO_ERR_KEY);
    ck_assert_int_eq(drpo_objective_set_kind(obj), DRPO_SET_NONE);
    drpo_objective_free(obj);

    /* NULL handles and NULL out-pointers */
    ck_assert_int_eq(drpo_objective_set(NULL, DRPO_PARAM_RADIUS, 1.0), DRPO_ERR_NULL);
    ck_assert_int_eq(drpo_objective_get(NULL, DRPO_PARAM_RADIUS, &x), DRPO_ERR_NULL);
    ck_assert_int_eq(drpo_objective_diag(NULL, DRPO_DIAG_VALUE, &x), DRPO_ERR_NULL);
    ck_assert_int_eq(drpo_objective_set_kind(NULL), -1);
    ck_assert_ptr_nonnull(drpo_objective_last_error(NULL));
    drpo_objective_free(NULL);
    obj = make(DRPO_SET_TV, DRPO_PARAM_RADIUS, 0.2);
    ck_assert_int_eq(drpo_objective_get(obj, DRPO_PARAM_RADIUS, NULL), DRPO_ERR_NULL);
    ck_assert_int_eq(drpo_objective_diag(obj, DRPO_DIAG_VALUE, NULL), DRPO_ERR_NULL);
    ck_assert_str_eq(drpo_objective_last_error(obj), "");
    drpo_objective_free(obj);
}
END_TEST

/* Radius and penalty exclude each other: setting one clears the other. */
START_TEST(test_radius_penalty_exclusive)
{
    const int32_t sets[] = {DRPO_SET_KL, DRPO_SET_CHI2, DRPO_SET_TV};
    for (size_t s = 0; s < 3; s++) {
        double x = NAN;
        drpo_objective *obj = make(sets[s], DRPO_PARAM_RADIUS, 0.3);
        ck_assert_int_eq(drpo_objective_get(obj, DRPO_PARAM_PENALTY, &x), DRPO_ERR_PARAM_UNSET);
        ck_assert_int_eq(drpo_objective_set(obj, DRPO_PARAM_PENALTY, 0.7), DRPO_OK);
        ck_assert_int_eq(drpo_objective_get(obj, DRPO_PARAM_RADIUS, &x), DRPO_ERR_PARAM_UNSET);
        ck_assert_int_eq(drpo_objective_get(obj, DRPO_PARAM_PENALTY, &x), DRPO_OK);
        ck_assert(x == 0.7);
        /* the solve uses the penalty form: compare with a fresh penalty handle */
        double w[4], v, w2[4], v2;
        ck_assert_int_eq(drpo_objective_solve(obj, 4, good_loss, NULL, w, &v), DRPO_OK);
        ck_assert_int_eq(tu_solve(sets[s], DRPO_PARAM_PENALTY, 0.7, 4, good_loss, NULL, w2, &v2),
                         DRPO_OK);
        ck_assert(v == v2);
        ck_assert_int_eq(drpo_objective_set(obj, DRPO_PARAM_RADIUS, 0.1), DRPO_OK);
        ck_assert_int_eq(drpo_objective_get(obj, DRPO_PARAM_PENALTY, &x), DRPO_ERR_PARAM_UNSET);
        drpo_objective_free(obj);
    }
}
END_TEST

START_TEST(test_diag_errors)
{
    double x = 0.0, w[4], v;
    drpo_objective *obj = make(DRPO_SET_KL, DRPO_PARAM_RADIUS, 0.2);
    for (int32_t k = DRPO_DIAG_VALUE; k <= DRPO_DIAG_DEGENERATE; k++)
        ck_assert_int_eq(drpo_objective_diag(obj, k, &x), DRPO_ERR_NO_SOLUTION);
    ck_assert_int_eq(drpo_objective_solve(obj, 4, good_loss, NULL, w, &v), DRPO_OK);
    const int32_t bad_keys[] = {0, -1, DRPO_DIAG_DEGENERATE + 1, 1000};
    for (size_t k = 0; k < 4; k++)
        ck_assert_int_eq(drpo_objective_diag(obj, bad_keys[k], &x), DRPO_ERR_KEY);
    drpo_objective_free(obj);
    /* keys a set or form does not define */
    obj = make(DRPO_SET_NONE, 0, 0.0);
    ck_assert_int_eq(drpo_objective_solve(obj, 4, good_loss, NULL, w, &v), DRPO_OK);
    ck_assert_int_eq(drpo_objective_diag(obj, DRPO_DIAG_ETA, &x), DRPO_ERR_UNAVAILABLE);
    ck_assert_int_eq(drpo_objective_diag(obj, DRPO_DIAG_LAMBDA, &x), DRPO_ERR_UNAVAILABLE);
    drpo_objective_free(obj);
    obj = make(DRPO_SET_CVAR, DRPO_PARAM_LEVEL, 0.5);
    ck_assert_int_eq(drpo_objective_solve(obj, 4, good_loss, NULL, w, &v), DRPO_OK);
    ck_assert_int_eq(drpo_objective_diag(obj, DRPO_DIAG_LAMBDA, &x), DRPO_ERR_UNAVAILABLE);
    drpo_objective_free(obj);
    obj = make(DRPO_SET_CHI2, DRPO_PARAM_RADIUS, 0.0);
    ck_assert_int_eq(drpo_objective_solve(obj, 4, good_loss, NULL, w, &v), DRPO_OK);
    ck_assert_int_eq(drpo_objective_diag(obj, DRPO_DIAG_ETA, &x), DRPO_ERR_UNAVAILABLE);
    drpo_objective_free(obj);
}
END_TEST

/* ---- allocation -------------------------------------------------------- */

static drpo_objective *make_counted(tu_alloc_stats *st, int32_t set, int32_t key, double prm)
{
    drpo_allocator a = tu_counting_allocator(st);
    drpo_objective *obj = NULL;
    ck_assert_int_eq(drpo_objective_create_with_allocator(&obj, set, &a), DRPO_OK);
    if (key)
        ck_assert_int_eq(drpo_objective_set(obj, key, prm), DRPO_OK);
    return obj;
}

START_TEST(test_no_allocation_on_reuse)
{
    enum { N = 500 };
    static double l[N], w[N];
    tu_rng r;
    tu_rng_seed(&r, 401);
    tu_random_losses(&r, N, 0, l);
    for (size_t fi = 0; fi < tu_nforms; fi++) {
        const tu_form *f = &tu_forms[fi];
        double prm[TU_MAXPARAMS], v;
        size_t np = tu_params(f, prm);
        tu_alloc_stats st = {0, 0, 0, 0, 0};
        drpo_objective *obj = make_counted(&st, f->set, f->key, prm[np / 2]);
        ck_assert_int_eq(drpo_objective_solve(obj, N, l, NULL, w, &v), DRPO_OK);
        long after_first = st.mallocs + st.reallocs;
        const size_t sizes[] = {N, N, N / 2, 1, 17, N};
        for (size_t k = 0; k < 6; k++) {
            ck_assert_int_eq(drpo_objective_set(obj, f->key ? f->key : DRPO_PARAM_RADIUS,
                                                prm[k % np]),
                             f->key ? DRPO_OK : DRPO_ERR_KEY);
            ck_assert_int_eq(drpo_objective_solve(obj, sizes[k], l, NULL, w, &v), DRPO_OK);
        }
        ck_assert_msg(st.mallocs + st.reallocs == after_first,
                      "%s: %ld allocations after the first solve", f->name,
                      st.mallocs + st.reallocs - after_first);
        drpo_objective_free(obj);
        ck_assert_msg(st.live == 0, "%s: %ld blocks not freed", f->name, st.live);
    }
}
END_TEST

/* Fail each allocation in turn: create or grow.  A failed grow returns
 * DRPO_ERR_NOMEM, writes nothing and keeps the previous diagnostics; the old
 * scratch still serves smaller solves; nothing leaks. */
START_TEST(test_failing_allocator)
{
    enum { N = 300 };
    static double l[N];
    tu_rng r;
    tu_rng_seed(&r, 402);
    tu_random_losses(&r, N, 1, l);
    for (long fail = 1; fail <= 4; fail++) {
        tu_alloc_stats st = {0, 0, 0, 0, fail};
        drpo_allocator a = tu_counting_allocator(&st);
        drpo_objective *obj = NULL;
        drpo_status cs = drpo_objective_create_with_allocator(&obj, DRPO_SET_CHI2, &a);
        if (cs != DRPO_OK) {
            ck_assert_int_eq(cs, DRPO_ERR_NOMEM);
            ck_assert_ptr_null(obj);
            ck_assert_int_eq(st.live, 0);
            continue;
        }
        ck_assert_int_eq(drpo_objective_set(obj, DRPO_PARAM_RADIUS, 0.3), DRPO_OK);
        double w[N], v, d0 = NAN, d1 = NAN;
        drpo_status s1 = drpo_objective_solve(obj, 10, l, NULL, w, &v);
        if (s1 == DRPO_OK) {
            ck_assert_int_eq(drpo_objective_diag(obj, DRPO_DIAG_VALUE, &d0), DRPO_OK);
            tu_fill_sentinel(w, N);
            tu_fill_sentinel(&v, 1);
            drpo_status s2 = drpo_objective_solve(obj, N, l, NULL, w, &v);
            if (s2 != DRPO_OK) {
                ck_assert_int_eq(s2, DRPO_ERR_NOMEM);
                ck_assert_msg(tu_is_sentinel(w, N) && tu_is_sentinel(&v, 1), "NOMEM wrote output");
                ck_assert_int_eq(drpo_objective_diag(obj, DRPO_DIAG_VALUE, &d1), DRPO_OK);
                ck_assert_msg(memcmp(&d0, &d1, sizeof d0) == 0, "NOMEM changed the diagnostics");
                ck_assert_int_eq(drpo_objective_solve(obj, 10, l, NULL, w, &v), DRPO_OK);
            }
        } else {
            ck_assert_int_eq(s1, DRPO_ERR_NOMEM);
            ck_assert_int_eq(drpo_objective_diag(obj, DRPO_DIAG_VALUE, &d0),
                             DRPO_ERR_NO_SOLUTION);
        }
        drpo_objective_free(obj);
        ck_assert_msg(st.live == 0, "fail at %ld: %ld blocks not freed", fail, st.live);
    }
}
END_TEST

START_TEST(test_bad_allocator)
{
    tu_alloc_stats st = {0, 0, 0, 0, 0};
    drpo_allocator a = tu_counting_allocator(&st);
    drpo_objective *obj = (drpo_objective *)&obj;
    a.malloc_fn = NULL;
    ck_assert_int_lt(drpo_objective_create_with_allocator(&obj, DRPO_SET_KL, &a), 0);
    ck_assert_ptr_null(obj);
    a = tu_counting_allocator(&st);
    a.struct_size = 4;
    obj = (drpo_objective *)&obj;
    ck_assert_int_lt(drpo_objective_create_with_allocator(&obj, DRPO_SET_KL, &a), 0);
    ck_assert_ptr_null(obj);
    ck_assert_int_eq(st.mallocs, 0);
}
END_TEST

/* ---- version and status strings ---------------------------------------- */

START_TEST(test_version)
{
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", DRPO_VERSION_MAJOR, DRPO_VERSION_MINOR,
             DRPO_VERSION_PATCH);
    ck_assert_uint_eq(drpo_version_number(), DRPO_VERSION_NUMBER);
    ck_assert_uint_eq(DRPO_VERSION_NUMBER,
                      DRPO_VERSION_MAJOR * 10000 + DRPO_VERSION_MINOR * 100 + DRPO_VERSION_PATCH);
    ck_assert_ptr_nonnull(drpo_version_string());
    ck_assert_str_eq(drpo_version_string(), want);
}
END_TEST

/* Every status in use has its own non-empty string; the documented ones are
 * all in use; the known ones form one contiguous range, and everything else
 * is "unknown status". */
START_TEST(test_status_strings)
{
    enum { LO = -1000, HI = 1000 };
    static const char *str[HI - LO + 1];
    const drpo_status documented[] = {
        DRPO_OK,           DRPO_CONTINUE,          DRPO_CONVERGED,      DRPO_STOPPED,
        DRPO_ERR_NULL,     DRPO_ERR_SIZE,          DRPO_ERR_LOSS_NONFINITE,
        DRPO_ERR_BASE_NEGATIVE, DRPO_ERR_BASE_SUM, DRPO_ERR_PARAM_RANGE, DRPO_ERR_PARAM_UNSET,
        DRPO_ERR_KEY,      DRPO_ERR_SET,           DRPO_ERR_NOMEM,      DRPO_ERR_NO_SOLUTION,
        DRPO_ERR_UNAVAILABLE, DRPO_ERR_NUMERICAL};
    int lo = 0, hi = 0;
    for (int s = LO; s <= HI; s++) {
        const char *x = drpo_status_string(s);
        ck_assert_ptr_nonnull(x);
        ck_assert_msg(x[0] != '\0', "empty string for %d", s);
        str[s - LO] = strcmp(x, "unknown status") == 0 ? NULL : x;
        if (str[s - LO]) {
            lo = s < lo ? s : lo;
            hi = s > hi ? s : hi;
        }
    }
    for (size_t k = 0; k < sizeof documented / sizeof documented[0]; k++)
        ck_assert_msg(str[documented[k] - LO] != NULL, "status %d has no string",
                      (int)documented[k]);
    for (int s = lo; s <= hi; s++) {
        ck_assert_msg(str[s - LO] != NULL, "status %d inside [%d, %d] has no string", s, lo, hi);
        for (int t = lo; t < s; t++)
            ck_assert_msg(strcmp(str[s - LO], str[t - LO]) != 0, "%d and %d share \"%s\"", s, t,
                          str[s - LO]);
    }
    const drpo_status outside[] = {lo - 1, hi + 1, INT32_MIN, INT32_MAX, LO, HI};
    for (size_t k = 0; k < sizeof outside / sizeof outside[0]; k++)
        ck_assert_str_eq(drpo_status_string(outside[k]), "unknown status");
}
END_TEST

Suite *suite_badinput(void)
{
    Suite *s = suite_create("badinput");
    TCase *tc = tcase_create("errors");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_bad_solve_inputs);
    tcase_add_test(tc, test_bad_entries_long_base);
    tcase_add_test(tc, test_base_sum_tolerance);
    tcase_add_test(tc, test_param_unset);
    tcase_add_test(tc, test_param_range);
    tcase_add_test(tc, test_sets_and_keys);
    tcase_add_test(tc, test_radius_penalty_exclusive);
    tcase_add_test(tc, test_diag_errors);
    suite_add_tcase(s, tc);
    tc = tcase_create("allocation");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_no_allocation_on_reuse);
    tcase_add_test(tc, test_failing_allocator);
    tcase_add_test(tc, test_bad_allocator);
    suite_add_tcase(s, tc);
    tc = tcase_create("version");
    tcase_add_test(tc, test_version);
    tcase_add_test(tc, test_status_strings);
    suite_add_tcase(s, tc);
    return s;
}

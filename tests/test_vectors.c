/* test_vectors.c - every reference case of dro-cases.txt (independently
 * solved; a copy of ../shared/vectors/dro-cases.txt lives in tests/data). */
#include "check_util.h"
#include "suites.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef DRPO_TEST_DATA_DIR
#error "DRPO_TEST_DATA_DIR must name tests/data"
#endif

typedef struct ref_case {
    int id;
    int32_t set;
    int32_t key;
    double param, value;
    size_t n;
    double *p, *loss, *q;
} ref_case;

static int32_t parse_set(const char *s)
{
    if (!strcmp(s, "kl")) return DRPO_SET_KL;
    if (!strcmp(s, "chi2")) return DRPO_SET_CHI2;
    if (!strcmp(s, "cvar")) return DRPO_SET_CVAR;
    if (!strcmp(s, "tv")) return DRPO_SET_TV;
    return -1;
}

static int32_t parse_form(const char *s)
{
    if (!strcmp(s, "radius")) return DRPO_PARAM_RADIUS;
    if (!strcmp(s, "penalty")) return DRPO_PARAM_PENALTY;
    if (!strcmp(s, "level")) return DRPO_PARAM_LEVEL;
    return -1;
}

/* Reads a line "<tag> x1 ... xn" into a fresh array. */
static double *read_row(FILE *f, const char *tag, size_t n)
{
    char word[32];
    if (fscanf(f, "%31s", word) != 1 || strcmp(word, tag) != 0)
        return NULL;
    double *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++)
        if (fscanf(f, "%lf", &x[i]) != 1) {
            free(x);
            return NULL;
        }
    return x;
}

/* Returns the number of cases read into *out, or -1 on a format error. */
static int load_cases(ref_case **out)
{
    FILE *f = fopen(DRPO_TEST_DATA_DIR "/dro-cases.txt", "r");
    if (!f)
        return -1;
    size_t cap = 64, count = 0;
    ref_case *cs = malloc(cap * sizeof *cs);
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        char set[16], form[16];
        ref_case c;
        memset(&c, 0, sizeof c);
        if (sscanf(line, "case %d set=%15s form=%15s param=%lf n=%zu value=%lf", &c.id, set, form,
                   &c.param, &c.n, &c.value) != 6)
            goto bad;
        c.set = parse_set(set);
        c.key = parse_form(form);
        c.p = read_row(f, "p", c.n);
        c.loss = read_row(f, "loss", c.n);
        c.q = read_row(f, "q", c.n);
        if (c.set < 0 || c.key < 0 || !c.p || !c.loss || !c.q)
            goto bad;
        if (!fgets(line, sizeof line, f)) /* rest of the q line */
            line[0] = 0;
        if (count == cap)
            cs = realloc(cs, (cap *= 2) * sizeof *cs);
        cs[count++] = c;
    }
    fclose(f);
    *out = cs;
    return (int)count;
bad:
    fclose(f);
    free(cs);
    return -1;
}

static ref_case *cases;
static int ncases;

static void load_once(void)
{
    if (!cases)
        ncases = load_cases(&cases);
}

START_TEST(test_file_loads)
{
    load_once();
    ck_assert_int_ge(ncases, 600); /* the file holds 633 cases */
}
END_TEST

/* The reference q sums to one and attains the reference value in the radius
 * and level forms: checks the loader and the checker's arithmetic against
 * independent data.  (The file's q are rounded to 17 digits, so a q on the
 * boundary may sit a rounding error outside the ball; feasibility is checked on
 * the library's own q below.) */
START_TEST(test_reference_q_attains_value)
{
    load_once();
    ck_assert_int_gt(ncases, 0);
    for (int k = 0; k < ncases; k++) {
        ref_case *c = &cases[k];
        double sum = 0.0, lin = 0.0;
        for (size_t i = 0; i < c->n; i++) {
            sum += c->q[i];
            lin += c->q[i] * c->loss[i];
        }
        ck_assert_msg(fabs(sum - 1.0) <= 1e-12, "reference case %d: q sums to %.17g", c->id, sum);
        if (c->key != DRPO_PARAM_PENALTY)
            ck_assert_msg(fabs(lin - c->value) <= tu_value_tol(c->value, c->n, c->loss),
                          "reference case %d: q.l = %.17g, value %.17g", c->id, lin, c->value);
    }
}
END_TEST

START_TEST(test_every_case)
{
    load_once();
    ck_assert_int_gt(ncases, 0);
    for (int k = 0; k < ncases; k++) {
        ref_case *c = &cases[k];
        drpo_objective *obj;
        ck_assert_int_eq(drpo_objective_create(&obj, c->set), DRPO_OK);
        ck_assert_int_eq(drpo_objective_set(obj, c->key, c->param), DRPO_OK);
        double *q = malloc(c->n * sizeof *q), v = NAN;
        drpo_status st = drpo_objective_solve(obj, c->n, c->loss, c->p, q, &v);
        ck_assert_msg(st == DRPO_OK, "case %d: status %d (%s)", c->id, st,
                      drpo_objective_last_error(obj));
        double tol = tu_value_tol(c->value, c->n, c->loss);
        ck_assert_msg(fabs(v - c->value) <= tol, "case %d: value %.17g, reference %.17g", c->id,
                      v, c->value);
        const char *why = tu_check_solution(c->set, c->key, c->param, c->n, c->loss, c->p, q, v);
        ck_assert_msg(why == NULL, "case %d: %s", c->id, why);
        free(q);
        drpo_objective_free(obj);
    }
}
END_TEST

Suite *suite_vectors(void)
{
    Suite *s = suite_create("vectors");
    TCase *tc = tcase_create("reference");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_file_loads);
    tcase_add_test(tc, test_reference_q_attains_value);
    tcase_add_test(tc, test_every_case);
    suite_add_tcase(s, tc);
    return s;
}

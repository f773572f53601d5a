/* test_batch.c - preference batches: prompts grouped into units, host keys,
 * reuse without allocation, bad inputs, allocation failure (issue 3). */
#include "check_util.h"
#include "suites.h"

#include <stdio.h>
#include <string.h>

static const char *prompts[] = {"What is 2+2?", "Translate: chat", "", "What is 2+2? ",
                                "Proof of Fermat"};

/* Pairs with the same prompt bytes form one unit, numbered in order of
 * first appearance; keys are XXH3-64 of the bytes. */
START_TEST(test_units_from_prompts)
{
    drpo_batch *b = NULL;
    ck_assert_int_eq(drpo_batch_create(&b), DRPO_OK);
    /* prompt of pair j: a deterministic mix with repeats */
    static const int which[] = {0, 1, 0, 2, 3, 1, 1, 4, 0, 2};
    const size_t n = sizeof which / sizeof which[0];
    for (size_t j = 0; j < n; j++) {
        const char *s = prompts[which[j]];
        ck_assert_int_eq(drpo_batch_add(b, s, strlen(s), (int32_t)(j % 3) - 1, 100 + (int64_t)j),
                         DRPO_OK);
    }
    ck_assert_uint_eq(drpo_batch_size(b), n);
    ck_assert_uint_eq(drpo_batch_units(b), 5);
    int first_unit[5] = {-1, -1, -1, -1, -1};
    size_t next = 0;
    for (size_t j = 0; j < n; j++) {
        const char *s = prompts[which[j]];
        ck_assert_uint_eq(drpo_batch_key(b, j), drpo_prompt_key(s, strlen(s)));
        if (first_unit[which[j]] < 0)
            first_unit[which[j]] = (int)next++;
        ck_assert_uint_eq(drpo_batch_unit_of(b, j), (size_t)first_unit[which[j]]);
        ck_assert_int_eq(drpo_batch_host_index(b, j), 100 + (int64_t)j);
        ck_assert_int_eq(drpo_batch_group(b, j), (int32_t)(j % 3) - 1);
    }
    /* distinct bytes, distinct keys (a one-byte difference included) */
    ck_assert_uint_ne(drpo_prompt_key(prompts[0], strlen(prompts[0])),
                      drpo_prompt_key(prompts[3], strlen(prompts[3])));
    /* an empty prompt: NULL with length 0 is the same prompt as "" */
    ck_assert_uint_eq(drpo_prompt_key(NULL, 0), drpo_prompt_key("", 0));
    /* out of range accessors */
    ck_assert_int_eq(drpo_batch_host_index(b, n), -1);
    ck_assert_int_eq(drpo_batch_group(b, n), DRPO_GROUP_NONE);
    ck_assert_uint_eq(drpo_batch_unit_of(b, n), (size_t)-1);
    ck_assert_uint_eq(drpo_batch_key(b, n), 0);
    drpo_batch_free(b);
}
END_TEST

/* Host keys: the same key is the same unit, whatever the order; many keys
 * (past the first growth of the tables) stay consistent. */
START_TEST(test_host_keys)
{
    drpo_batch *b = NULL;
    ck_assert_int_eq(drpo_batch_create(&b), DRPO_OK);
    const size_t n = 1000, K = 137;
    tu_rng r;
    tu_rng_seed(&r, 11);
    uint64_t keys[137];
    for (size_t k = 0; k < K; k++)
        keys[k] = k < 5 ? k : (uint64_t)(tu_unif(&r) * 0x1p63) * 2 + (k & 1); /* small and large */
    size_t which[1000], count[137] = {0};
    for (size_t j = 0; j < n; j++) {
        which[j] = j < K ? j : tu_below(&r, K);
        count[which[j]]++;
        ck_assert_int_eq(drpo_batch_add_key(b, keys[which[j]], DRPO_GROUP_NONE, (int64_t)j),
                         DRPO_OK);
    }
    ck_assert_uint_eq(drpo_batch_units(b), K);
    size_t seen[137] = {0};
    for (size_t j = 0; j < n; j++) {
        size_t u = drpo_batch_unit_of(b, j);
        ck_assert_uint_eq(drpo_batch_key(b, j), keys[which[j]]);
        ck_assert_uint_eq(u, which[j]); /* first appearance order: key k appears first at j = k */
        seen[u]++;
    }
    for (size_t k = 0; k < K; k++)
        ck_assert_uint_eq(seen[k], count[k]);
    /* a host key equal to a prompt's hash is the same unit */
    drpo_batch_clear(b);
    ck_assert_int_eq(drpo_batch_add(b, "abc", 3, 0, 0), DRPO_OK);
    ck_assert_int_eq(drpo_batch_add_key(b, drpo_prompt_key("abc", 3), 1, 1), DRPO_OK);
    ck_assert_uint_eq(drpo_batch_units(b), 1);
    drpo_batch_free(b);
}
END_TEST

/* clear keeps the memory: refilling to the same size (or smaller) performs
 * no allocation; the refilled batch is correct. */
START_TEST(test_clear_reuses_memory)
{
    tu_alloc_stats st = {0};
    drpo_allocator a = tu_counting_allocator(&st);
    drpo_batch *b = NULL;
    ck_assert_int_eq(drpo_batch_create_with_allocator(&b, &a), DRPO_OK);
    for (int round = 0; round < 4; round++) {
        long before = st.mallocs + st.reallocs;
        drpo_batch_clear(b);
        ck_assert_uint_eq(drpo_batch_size(b), 0);
        ck_assert_uint_eq(drpo_batch_units(b), 0);
        size_t n = round == 3 ? 150 : 300;
        for (size_t j = 0; j < n; j++)
            ck_assert_int_eq(drpo_batch_add_key(b, (j * 7 + (size_t)round) % 50, 2, (int64_t)j),
                             DRPO_OK);
        if (round > 0)
            ck_assert_int_eq(st.mallocs + st.reallocs, before);
        else
            ck_assert_int_gt(st.mallocs + st.reallocs, before);
        ck_assert_uint_eq(drpo_batch_units(b), 50);
        for (size_t j = 0; j < n; j++) /* unit order restarts after a clear */
            ck_assert_uint_eq(drpo_batch_unit_of(b, j), j % 50);
    }
    drpo_batch_free(b);
    ck_assert_int_eq(st.live, 0);
}
END_TEST

START_TEST(test_groups_and_bad_inputs)
{
    drpo_batch *b = NULL;
    ck_assert_int_eq(drpo_batch_create(NULL), DRPO_ERR_NULL);
    ck_assert_int_eq(drpo_batch_create(&b), DRPO_OK);
    ck_assert_int_eq(drpo_batch_add(NULL, "a", 1, 0, 0), DRPO_ERR_NULL);
    ck_assert_int_eq(drpo_batch_add_key(NULL, 1, 0, 0), DRPO_ERR_NULL);
    ck_assert_int_eq(drpo_batch_add(b, NULL, 3, 0, 0), DRPO_ERR_NULL);
    ck_assert_int_eq(drpo_batch_add(b, "a", 1, -2, 0), DRPO_ERR_PARAM_RANGE);
    ck_assert_int_eq(drpo_batch_add_key(b, 9, INT32_MIN, 0), DRPO_ERR_PARAM_RANGE);
    ck_assert_uint_eq(drpo_batch_size(b), 0); /* nothing was added */
    ck_assert_uint_eq(drpo_batch_units(b), 0);
    ck_assert_int_eq(drpo_batch_add(b, NULL, 0, DRPO_GROUP_NONE, 5), DRPO_OK);
    ck_assert_int_eq(drpo_batch_add_key(b, 9, INT32_MAX, -7), DRPO_OK);
    ck_assert_int_eq(drpo_batch_add_key(b, 9, 0, 8), DRPO_OK);
    ck_assert_int_eq(drpo_batch_group(b, 0), DRPO_GROUP_NONE);
    ck_assert_int_eq(drpo_batch_group(b, 1), INT32_MAX);
    ck_assert_int_eq(drpo_batch_group(b, 2), 0);
    ck_assert_int_eq(drpo_batch_host_index(b, 1), -7);
    ck_assert_uint_eq(drpo_batch_units(b), 2);
    /* NULL handles read as empty */
    ck_assert_uint_eq(drpo_batch_size(NULL), 0);
    ck_assert_uint_eq(drpo_batch_units(NULL), 0);
    ck_assert_int_eq(drpo_batch_host_index(NULL, 0), -1);
    drpo_batch_clear(NULL);
    drpo_batch_free(NULL);
    drpo_batch_free(b);
}
END_TEST

/* Every allocation the batch makes, failed in turn: the add reports
 * DRPO_ERR_NOMEM and the batch is exactly as before (then the add works). */
START_TEST(test_allocation_failure)
{
    tu_alloc_stats st = {0};
    drpo_allocator a = tu_counting_allocator(&st);
    drpo_batch *b = NULL;
    st.fail_at = 1;
    ck_assert_int_eq(drpo_batch_create_with_allocator(&b, &a), DRPO_ERR_NOMEM);
    ck_assert_ptr_null(b);
    st.fail_at = 0;
    ck_assert_int_eq(drpo_batch_create_with_allocator(&b, &a), DRPO_OK);
    int failures = 0;
    for (size_t j = 0; j < 200; j++) {
        uint64_t key = j % 37;
        for (long k = 1;; k++) { /* fail the k-th allocation of this add, until it succeeds */
            size_t n0 = drpo_batch_size(b), u0 = drpo_batch_units(b);
            st.fail_at = st.mallocs + st.reallocs + k;
            drpo_status s = drpo_batch_add_key(b, key, (int32_t)(j % 4), (int64_t)j);
            st.fail_at = 0;
            if (s == DRPO_OK)
                break;
            failures++;
            ck_assert_int_eq(s, DRPO_ERR_NOMEM);
            ck_assert_uint_eq(drpo_batch_size(b), n0);
            ck_assert_uint_eq(drpo_batch_units(b), u0);
            for (size_t i = 0; i < n0; i++) {
                ck_assert_uint_eq(drpo_batch_key(b, i), i % 37);
                ck_assert_uint_eq(drpo_batch_unit_of(b, i), i % 37);
                ck_assert_int_eq(drpo_batch_host_index(b, i), (int64_t)i);
                ck_assert_int_eq(drpo_batch_group(b, i), (int32_t)(i % 4));
            }
        }
    }
    ck_assert_int_ge(failures, 4); /* the growths at 0, 64 and 128 pairs were hit */
    ck_assert_uint_eq(drpo_batch_units(b), 37);
    drpo_batch_free(b);
    ck_assert_int_eq(st.live, 0);
}
END_TEST

Suite *suite_batch(void)
{
    Suite *s = suite_create("batch");
    TCase *tc = tcase_create("units");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_units_from_prompts);
    tcase_add_test(tc, test_host_keys);
    tcase_add_test(tc, test_clear_reuses_memory);
    tcase_add_test(tc, test_groups_and_bad_inputs);
    tcase_add_test(tc, test_allocation_failure);
    suite_add_tcase(s, tc);
    return s;
}

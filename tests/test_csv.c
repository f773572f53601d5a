/* test_csv.c - the CSV preference reader of drpo-train (examples/csv.c):
 * good files (quoting, column order, extra columns, line endings), every
 * error path with its file:line:column message, and its fast decimal
 * reader (examples/decimal.c) against strtod. */
#include "../examples/csv.h"
#include "../examples/decimal.h"
#include "suites.h"

#include <check.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Parse a string as the file "t.csv". */
static int parse(const char *text, const csv_options *opt, csv_pairs *p, char *err, size_t n)
{
    return csv_parse_pairs("t.csv", text, strlen(text), opt, p, err, n);
}

/* The parse must fail with exactly this message and return nothing. */
static void expect_error_opt(const char *text, const csv_options *opt, const char *message)
{
    csv_pairs p;
    char err[512];
    memset(&p, 0xAB, sizeof p);
    ck_assert_int_eq(parse(text, opt, &p, err, sizeof err), -1);
    ck_assert_str_eq(err, message);
    ck_assert_uint_eq(p.n, 0);
    ck_assert_ptr_null(p.diff);
    ck_assert_ptr_null(p.group_names);
}

static void expect_error(const char *text, const char *message)
{
    expect_error_opt(text, NULL, message);
}

static void parse_ok(const char *text, const csv_options *opt, csv_pairs *p)
{
    char err[512] = "";
    int rc = parse(text, opt, p, err, sizeof err);
    ck_assert_msg(rc == 0, "unexpected error: %s", err);
}

/* ---- good files ------------------------------------------------------------- */

START_TEST(basic_file)
{
    csv_pairs p;
    parse_ok("prompt,group,chosen_0,chosen_1,rejected_0,rejected_1\n"
             "p1,math,1,2,0.5,0.25\n"
             "p2,,3,-1,1,1\n"
             "p1,chat,0,0,1e-3,-2\n"
             "p3,math,1.5,2.5,0.5,0.5\n",
             NULL, &p);
    ck_assert_uint_eq(p.n, 4);
    ck_assert_uint_eq(p.dim, 2);
    ck_assert_uint_eq(p.group_col, 2);
    const float want[8] = {0.5f, 1.75f, 2, -2, -1e-3f, 2, 1, 2};
    for (int i = 0; i < 8; i++)
        ck_assert_float_eq_tol(p.diff[i], want[i], 1e-7);
    ck_assert_str_eq(csv_prompt(&p, 0), "p1");
    ck_assert_str_eq(csv_prompt(&p, 1), "p2");
    ck_assert_str_eq(csv_prompt(&p, 2), "p1");
    ck_assert_uint_eq(p.prompt_len[3], 2);
    /* groups in order of first appearance; an empty cell is no group */
    ck_assert_uint_eq(p.n_groups, 2);
    ck_assert_str_eq(p.group_names[0], "math");
    ck_assert_str_eq(p.group_names[1], "chat");
    ck_assert_int_eq(p.group[0], 0);
    ck_assert_int_eq(p.group[1], -1);
    ck_assert_int_eq(p.group[2], 1);
    ck_assert_int_eq(p.group[3], 0);
    for (size_t i = 0; i < 4; i++)
        ck_assert_uint_eq(p.line[i], i + 2);
    csv_pairs_free(&p);
    ck_assert_ptr_null(p.diff);
    csv_pairs_free(&p); /* twice is harmless */
    csv_pairs_free(NULL);
}
END_TEST

START_TEST(column_order_and_extra_columns)
{
    csv_pairs p;
    parse_ok("rejected_1,id,chosen_0,notes,prompt,rejected_0,chosen_1,score\n"
             "4,17,1,anything,q,2,8,0.3\n",
             NULL, &p);
    ck_assert_uint_eq(p.n, 1);
    ck_assert_uint_eq(p.dim, 2);
    ck_assert_uint_eq(p.group_col, 0); /* no group column: no groups */
    ck_assert_uint_eq(p.n_groups, 0);
    ck_assert_int_eq(p.group[0], -1);
    ck_assert_float_eq(p.diff[0], -1.0f); /* chosen_0 - rejected_0 = 1 - 2 */
    ck_assert_float_eq(p.diff[1], 4.0f);  /* chosen_1 - rejected_1 = 8 - 4 */
    ck_assert_str_eq(csv_prompt(&p, 0), "q");
    csv_pairs_free(&p);
}
END_TEST

START_TEST(rfc4180_quoting)
{
    csv_pairs p;
    /* commas, doubled quotes and a line break inside quotes; quoted numbers;
     * an empty quoted group; CRLF records */
    parse_ok("\"prompt\",group,chosen_0,rejected_0\r\n"
             "\"Hello, world\",\"a \"\"b\"\"\",\"1.5\",0.5\r\n"
             "\"two\r\nlines\",\"\",2,1\r\n"
             "\"\",\"a \"\"b\"\"\",3,1\r\n",
             NULL, &p);
    ck_assert_uint_eq(p.n, 3);
    ck_assert_str_eq(csv_prompt(&p, 0), "Hello, world");
    ck_assert_str_eq(p.group_names[0], "a \"b\"");
    ck_assert_str_eq(csv_prompt(&p, 1), "two\r\nlines");
    ck_assert_uint_eq(p.prompt_len[1], 10);
    ck_assert_int_eq(p.group[1], -1);
    ck_assert_str_eq(csv_prompt(&p, 2), ""); /* an empty prompt is a prompt */
    ck_assert_int_eq(p.group[2], 0);
    ck_assert_float_eq(p.diff[0], 1.0f);
    /* the quoted line break moves the next row's line */
    ck_assert_uint_eq(p.line[0], 2);
    ck_assert_uint_eq(p.line[1], 3);
    ck_assert_uint_eq(p.line[2], 5);
    csv_pairs_free(&p);
}
END_TEST

START_TEST(whitespace_bom_blank_lines)
{
    csv_pairs p;
    /* a byte-order mark, spaces around header names and numbers, blank lines,
     * no newline at the end */
    parse_ok("\xEF\xBB\xBF prompt , chosen_0,\trejected_0 \n"
             "\n"
             "a, 2 ,\t1\t\n"
             "\r\n"
             "b,-1e2,1e-2",
             NULL, &p);
    ck_assert_uint_eq(p.n, 2);
    ck_assert_float_eq(p.diff[0], 1.0f);
    ck_assert_float_eq_tol(p.diff[1], -100.01f, 1e-4);
    ck_assert_uint_eq(p.line[0], 3);
    ck_assert_uint_eq(p.line[1], 5);
    csv_pairs_free(&p);
}
END_TEST

START_TEST(many_rows_and_groups)
{
    /* enough rows and groups to grow every array and the group table */
    size_t rows = 5000, cap = rows * 64 + 64, len = 0;
    char *text = malloc(cap);
    ck_assert_ptr_nonnull(text);
    len += (size_t)snprintf(text + len, cap - len, "group,prompt,chosen_0,rejected_0,chosen_1,rejected_1\n");
    for (size_t i = 0; i < rows; i++)
        len += (size_t)snprintf(text + len, cap - len, "g%zu,prompt %zu,%zu,0,0,%zu\n", i % 700,
                                i / 3, i, i % 10);
    csv_pairs p;
    parse_ok(text, NULL, &p);
    ck_assert_uint_eq(p.n, rows);
    ck_assert_uint_eq(p.n_groups, 700);
    for (size_t i = 0; i < rows; i++) {
        ck_assert_int_eq(p.group[i], (int32_t)(i % 700));
        ck_assert_float_eq(p.diff[2 * i], (float)i);
        ck_assert_float_eq(p.diff[2 * i + 1], -(float)(i % 10));
    }
    char want[32];
    snprintf(want, sizeof want, "prompt %zu", (rows - 1) / 3);
    ck_assert_str_eq(csv_prompt(&p, rows - 1), want);
    ck_assert_str_eq(p.group_names[699], "g699");
    csv_pairs_free(&p);
    free(text);
}
END_TEST

START_TEST(expected_dimension_matches)
{
    csv_options opt = {2, "train.csv"};
    csv_pairs p;
    parse_ok("prompt,chosen_0,chosen_1,rejected_0,rejected_1\nx,1,2,3,4\n", &opt, &p);
    ck_assert_uint_eq(p.dim, 2);
    csv_pairs_free(&p);
}
END_TEST

START_TEST(read_from_file)
{
    char path[] = "/tmp/drpo-test-csv-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    const char *text = "prompt,group,chosen_0,rejected_0\n\"a, b\",g,1,0\n";
    ck_assert_int_eq((int)write(fd, text, strlen(text)), (int)strlen(text));
    close(fd);
    csv_pairs p;
    char err[512];
    ck_assert_int_eq(csv_read_pairs(path, NULL, &p, err, sizeof err), 0);
    ck_assert_uint_eq(p.n, 1);
    ck_assert_str_eq(csv_prompt(&p, 0), "a, b");
    csv_pairs_free(&p);
    /* the same text through a pipe (read, not mapped: not a regular file) */
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    ck_assert_int_eq((int)write(fds[1], text, strlen(text)), (int)strlen(text));
    close(fds[1]);
    char fd_path[64];
    snprintf(fd_path, sizeof fd_path, "/dev/fd/%d", fds[0]);
    int rc = csv_read_pairs(fd_path, NULL, &p, err, sizeof err);
    close(fds[0]);
    ck_assert_msg(rc == 0, "through a pipe: %s", err);
    ck_assert_uint_eq(p.n, 1);
    ck_assert_str_eq(csv_prompt(&p, 0), "a, b");
    csv_pairs_free(&p);
    /* an empty regular file (nothing to map: read) */
    fd = open(path, O_WRONLY | O_TRUNC);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_int_eq(csv_read_pairs(path, NULL, &p, err, sizeof err), -1);
    char want_empty[600];
    snprintf(want_empty, sizeof want_empty, "%s:1:1: empty file (expected a header row)", path);
    ck_assert_str_eq(err, want_empty);
    unlink(path);
    /* a missing file: the name and the system's reason */
    ck_assert_int_eq(csv_read_pairs(path, NULL, &p, err, sizeof err), -1);
    char want[600];
    snprintf(want, sizeof want, "%s: cannot open: No such file or directory", path);
    ck_assert_str_eq(err, want);
    ck_assert_uint_eq(p.n, 0);
}
END_TEST

/* ---- errors: the header ------------------------------------------------------ */

START_TEST(error_empty_file)
{
    expect_error("", "t.csv:1:1: empty file (expected a header row)");
    expect_error("\n\r\n\n", "t.csv:1:1: empty file (expected a header row)");
    expect_error("\xEF\xBB\xBF", "t.csv:1:1: empty file (expected a header row)");
}
END_TEST

START_TEST(error_no_rows)
{
    expect_error("prompt,chosen_0,rejected_0\n", "t.csv:2:1: no preference pairs after the header");
    expect_error("prompt,chosen_0,rejected_0\n\n\n",
                 "t.csv:4:1: no preference pairs after the header");
}
END_TEST

START_TEST(error_missing_columns)
{
    expect_error("group,chosen_0,rejected_0\ng,1,2\n",
                 "t.csv:1:1: missing required column \"prompt\"");
    expect_error("prompt,group,score\np,g,1\n",
                 "t.csv:1:1: missing required columns \"chosen_0\" and \"rejected_0\" (no "
                 "features)");
    /* chosen_1 without rejected_1: pointed at chosen_1 */
    expect_error("prompt,chosen_0,chosen_1,rejected_0\np,1,2,3\n",
                 "t.csv:1:3: missing column \"rejected_1\" to go with \"chosen_1\"");
    expect_error("prompt,rejected_0\np,1\n",
                 "t.csv:1:2: missing column \"chosen_0\" to go with \"rejected_0\"");
}
END_TEST

START_TEST(error_feature_gap)
{
    /* chosen_1 and rejected_1 both missing: pointed at the next feature */
    expect_error("prompt,chosen_0,rejected_0,rejected_2,chosen_2\np,1,2,3,4\n",
                 "t.csv:1:5: gap in the feature columns: \"chosen_1\" is missing but "
                 "\"chosen_2\" is present");
    expect_error("prompt,rejected_3,chosen_3\np,1,2\n",
                 "t.csv:1:3: gap in the feature columns: \"chosen_0\" is missing but "
                 "\"chosen_3\" is present");
}
END_TEST

START_TEST(error_unknown_column)
{
    expect_error("prompt,chosen_0,chosen_x,rejected_0\np,1,2,3\n",
                 "t.csv:1:3: unknown column \"chosen_x\" (feature columns are chosen_0, "
                 "chosen_1, ...)");
    expect_error("prompt,chosen_0,rejected_0,rejected_01\np,1,2,3\n",
                 "t.csv:1:4: unknown column \"rejected_01\" (feature columns are rejected_0, "
                 "rejected_1, ...)");
    expect_error("prompt,chosen_,rejected_0\np,1,2\n",
                 "t.csv:1:2: unknown column \"chosen_\" (feature columns are chosen_0, "
                 "chosen_1, ...)");
    expect_error("prompt,chosen_0,rejected_0,chosen_99999999\np,1,2,3\n",
                 "t.csv:1:4: unknown column \"chosen_99999999\" (feature columns are "
                 "chosen_0, chosen_1, ...)");
}
END_TEST

START_TEST(error_duplicate_column)
{
    expect_error("prompt,chosen_0,rejected_0,chosen_0\np,1,2,3\n",
                 "t.csv:1:4: duplicate column \"chosen_0\" (first at column 2)");
    expect_error("prompt,group,chosen_0,rejected_0, prompt\np,g,1,2,q\n",
                 "t.csv:1:5: duplicate column \"prompt\" (first at column 1)");
    expect_error("group,prompt,chosen_0,rejected_0,group\ng,p,1,2,h\n",
                 "t.csv:1:5: duplicate column \"group\" (first at column 1)");
}
END_TEST

START_TEST(error_dimension_mismatch)
{
    csv_options opt = {3, "train.csv"};
    expect_error_opt("prompt,chosen_0,rejected_0,chosen_1,rejected_1\np,1,2,3,4\n", &opt,
                     "t.csv:1:4: 2 features (chosen_0..chosen_1) but train.csv has 3");
    csv_options anon = {1, NULL};
    expect_error_opt("prompt,chosen_0,rejected_0,chosen_1,rejected_1\np,1,2,3,4\n", &anon,
                     "t.csv:1:4: 2 features (chosen_0..chosen_1) but the training file has 1");
}
END_TEST

/* ---- errors: rows ------------------------------------------------------------- */

START_TEST(error_ragged_rows)
{
    expect_error("prompt,group,chosen_0,rejected_0\np,g,1,2\np,g,1\n",
                 "t.csv:3:4: row has 3 fields but the header has 4");
    expect_error("prompt,group,chosen_0,rejected_0\np,g,1,2,extra\n",
                 "t.csv:2:5: row has 5 fields but the header has 4");
    expect_error("prompt,group,chosen_0,rejected_0\nlonely\n",
                 "t.csv:2:2: row has 1 field but the header has 4");
}
END_TEST

START_TEST(error_non_numeric)
{
    /* the example, at line 12, column 5 */
    char text[1024] = "prompt,group,chosen_0,chosen_1,chosen_3,chosen_2,rejected_0,rejected_1,"
                      "rejected_2,rejected_3\n";
    for (int i = 2; i < 12; i++)
        strcat(text, "p,g,1,2,3,4,5,6,7,8\n");
    strcat(text, "p,g,1,2,abc,4,5,6,7,8\n");
    expect_error(text, "t.csv:12:5: non-numeric value \"abc\" in column chosen_3");
    expect_error("prompt,chosen_0,rejected_0\np,1.5x,2\n",
                 "t.csv:2:2: non-numeric value \"1.5x\" in column chosen_0");
    expect_error("prompt,chosen_0,rejected_0\np,1,1 2\n",
                 "t.csv:2:3: non-numeric value \"1 2\" in column rejected_0");
    expect_error("prompt,chosen_0,rejected_0\np,1,\"\"\n",
                 "t.csv:2:3: empty value in column rejected_0");
    expect_error("prompt,chosen_0,rejected_0\np,  ,1\n",
                 "t.csv:2:2: empty value in column chosen_0");
    /* long cells are cut short in the message */
    expect_error("prompt,chosen_0,rejected_0\np,1,"
                 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
                 "t.csv:2:3: non-numeric value \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...\" in "
                 "column rejected_0");
}
END_TEST

START_TEST(error_non_finite_and_range)
{
    expect_error("prompt,chosen_0,rejected_0\np,inf,2\n",
                 "t.csv:2:2: non-finite value \"inf\" in column chosen_0");
    expect_error("prompt,chosen_0,rejected_0\np,1,nan\n",
                 "t.csv:2:3: non-finite value \"nan\" in column rejected_0");
    expect_error("prompt,chosen_0,rejected_0\np,1,1e400\n",
                 "t.csv:2:3: non-finite value \"1e400\" in column rejected_0");
    expect_error("prompt,chosen_0,rejected_0\np,1e39,1\n",
                 "t.csv:2:2: value \"1e39\" in column chosen_0 is out of float range");
    expect_error("prompt,rejected_0,chosen_0\np,-3e38,3e38\n",
                 "t.csv:2:3: chosen_0 - rejected_0 is out of float range");
}
END_TEST

START_TEST(error_quoting)
{
    expect_error("prompt,chosen_0,rejected_0\np,1,2\n\"open,1,2\n",
                 "t.csv:3:1: unterminated quoted field (no closing quote)");
    expect_error("prompt,chosen_0,rejected_0\nsay \"hi\",1,2\n",
                 "t.csv:2:1: quote inside an unquoted field (quote the whole field and double "
                 "the quotes in it)");
    expect_error("prompt,chosen_0,rejected_0\n\"ab\"c,1,2\n",
                 "t.csv:2:1: unexpected character 'c' after the closing quote of a field");
    /* after a field spanning lines 2-3, errors are reported on line 4 */
    expect_error("prompt,chosen_0,rejected_0\n\"a\nb\",1,2\np,1,x\n",
                 "t.csv:4:3: non-numeric value \"x\" in column rejected_0");
    expect_error("prompt,chosen_0,\"rejected_0\n", "t.csv:1:3: unterminated quoted field (no "
                                                   "closing quote)");
}
END_TEST

START_TEST(error_nul_byte)
{
    static const char text[] = "prompt,chosen_0,rejected_0\np\0q,1,2\n";
    csv_pairs p;
    char err[256];
    ck_assert_int_eq(csv_parse_pairs("t.csv", text, sizeof text - 1, NULL, &p, err, sizeof err),
                     -1);
    ck_assert_str_eq(err, "t.csv:2:1: NUL byte in a field");
}
END_TEST

START_TEST(error_small_buffer)
{
    /* messages are cut to the buffer and stay terminated; NULL is allowed */
    csv_pairs p;
    char err[8];
    ck_assert_int_eq(parse("", NULL, &p, err, sizeof err), -1);
    ck_assert_str_eq(err, "t.csv:1");
    ck_assert_int_eq(parse("", NULL, &p, NULL, 0), -1);
}
END_TEST

/* ---- the fast decimal reader ------------------------------------------------ */

/* Where the fast reader answers, strtod's value bit for bit and its end. */
static int agrees_with_strtod(const char *text, int *fast)
{
    double v, w;
    const char *end = decimal_read_fast(text, &v);
    *fast = end != NULL;
    if (!end)
        return 1;
    char *send;
    w = strtod(text, &send);
    return !memcmp(&v, &w, sizeof v) && end == send;
}

START_TEST(decimal_fast_matches_strtod)
{
    /* fixed cases: taken (1) or left to strtod (0) */
    static const struct {
        const char *text;
        int fast;
    } cases[] = {
        {"0", 1}, {"-0", 1}, {"+1.5", 1}, {".5", 1}, {"5.", 1}, {"0.050", 1}, {"1e22", 1},
        {"9007199254740992", 1}, {"123456789012345678e-3", 0}, {"9007199254740993", 0},
        {"1e23", 0}, {"1e-22", 1}, {"1e-23", 0}, {"0e999", 1}, {"1e99999", 0},
        {"0x10", 0}, {"inf", 0}, {"nan", 0}, {".", 0}, {"-", 0}, {"", 0}, {"1e", 0},
        {"1e+", 0}, {"1.5x", 0}, {"1.5 ", 1}, {"2.5\t", 1}, {"1,5", 0},
        {"00000000000000000000000001.25", 1}, {"0.00000000000000000000001", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int fast;
        ck_assert_msg(agrees_with_strtod(cases[i].text, &fast), "\"%s\": not strtod's value",
                      cases[i].text);
        ck_assert_msg(fast == cases[i].fast, "\"%s\": fast path %s", cases[i].text,
                      fast ? "taken" : "not taken");
    }
    double z;
    ck_assert(decimal_read_fast("-0", &z) && z == 0.0 && signbit(z));
    /* random decimals: 0-12 integer digits, 0-16 fraction digits, an
     * exponent to +-40; the fast path must take most and agree on all */
    uint64_t st = 88172645463325252ull;
    int taken = 0, total = 200000;
    for (int t = 0; t < total; t++) {
        char buf[64];
        size_t o = 0;
        st ^= st << 13, st ^= st >> 7, st ^= st << 17;
        uint64_t r = st;
        if (r % 3 == 0)
            buf[o++] = r % 2 ? '-' : '+';
        r /= 3;
        size_t ni = r % 13, nf = (r / 13) % 17;
        r /= 13 * 17;
        for (size_t k = 0; k < ni; k++) {
            st ^= st << 13, st ^= st >> 7, st ^= st << 17;
            buf[o++] = (char)('0' + st % 10);
        }
        if (nf || r % 2) {
            buf[o++] = '.';
            for (size_t k = 0; k < nf; k++) {
                st ^= st << 13, st ^= st >> 7, st ^= st << 17;
                buf[o++] = (char)('0' + st % 10);
            }
        }
        r /= 2;
        if (r % 3 == 0)
            o += (size_t)snprintf(buf + o, sizeof buf - o, "e%d", (int)((r / 3) % 81) - 40);
        buf[o] = '\0';
        int fast;
        ck_assert_msg(agrees_with_strtod(buf, &fast), "\"%s\": not strtod's value", buf);
        taken += fast;
    }
    ck_assert_msg(taken > total / 2, "fast path taken %d times of %d", taken, total);
}
END_TEST

Suite *suite_csv(void)
{
    Suite *s = suite_create("csv");
    TCase *good = tcase_create("good files");
    tcase_add_test(good, basic_file);
    tcase_add_test(good, column_order_and_extra_columns);
    tcase_add_test(good, rfc4180_quoting);
    tcase_add_test(good, whitespace_bom_blank_lines);
    tcase_add_test(good, many_rows_and_groups);
    tcase_add_test(good, expected_dimension_matches);
    tcase_add_test(good, read_from_file);
    tcase_add_test(good, decimal_fast_matches_strtod);
    suite_add_tcase(s, good);
    TCase *bad = tcase_create("errors");
    tcase_add_test(bad, error_empty_file);
    tcase_add_test(bad, error_no_rows);
    tcase_add_test(bad, error_missing_columns);
    tcase_add_test(bad, error_feature_gap);
    tcase_add_test(bad, error_unknown_column);
    tcase_add_test(bad, error_duplicate_column);
    tcase_add_test(bad, error_dimension_mismatch);
    tcase_add_test(bad, error_ragged_rows);
    tcase_add_test(bad, error_non_numeric);
    tcase_add_test(bad, error_non_finite_and_range);
    tcase_add_test(bad, error_quoting);
    tcase_add_test(bad, error_nul_byte);
    tcase_add_test(bad, error_small_buffer);
    suite_add_tcase(s, bad);
    return s;
}

/* fuzz_solve.c - libFuzzer target: drpo_objective_solve on arbitrary bytes.
 *
 * Input: u8 set (mod 6: the five sets and one unknown), u8 form (radius,
 * penalty, level or none), f64 parameter, u8 flags (bit 0: a base is given,
 * bit 1: outputs NULL, bit 2: solve twice on one handle), then the losses and
 * (with a base) the base weights as raw f64 pairs.  The bytes are taken as
 * they come: NaN, infinities, denormals, negative zero, 1e300 all occur.
 *
 * Checked on every input: the status is one the header lists for the solve;
 * on error nothing is written (outputs keep their sentinel); on success the
 * weights are finite, non-negative, zero off the base's support, sum to 1
 * and the value is finite and lies between the base mean and the maximum
 * loss (both over the support) up to rounding. */
#include "drpo.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXN 512

static double take_f64(const uint8_t *p)
{
    double v;
    memcpy(&v, p, 8);
    return v;
}

static const uint64_t SENT = 0x7FF8DEADBEEF5678ull;

static int is_sent(double v) { return memcmp(&v, &SENT, 8) == 0; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 11)
        return 0;
    int32_t set = data[0] % 6;
    static const int32_t keys[] = {0, DRPO_PARAM_RADIUS, DRPO_PARAM_PENALTY, DRPO_PARAM_LEVEL};
    int32_t key = keys[data[1] % 4];
    double param = take_f64(data + 2);
    unsigned flags = data[10];
    int with_base = flags & 1, null_out = flags & 2, twice = flags & 4;
    data += 11;
    size -= 11;
    size_t per = with_base ? 16 : 8;
    size_t n = size / per;
    if (n > MAXN)
        n = MAXN;
    static double loss[MAXN], base[MAXN], q[MAXN];
    for (size_t i = 0; i < n; i++) {
        loss[i] = take_f64(data + per * i);
        if (with_base)
            base[i] = take_f64(data + per * i + 8);
    }
    drpo_objective *o = NULL;
    drpo_status st = drpo_objective_create(&o, set);
    if (set > DRPO_SET_TV) {
        if (st != DRPO_ERR_SET || o)
            abort();
        return 0;
    }
    if (st != DRPO_OK)
        abort();
    if (key) {
        st = drpo_objective_set(o, key, param);
        if (st != DRPO_OK && st != DRPO_ERR_KEY && st != DRPO_ERR_PARAM_RANGE)
            abort();
        if (st == DRPO_OK && !(isfinite(param) && param >= 0.0))
            abort();
    }
    for (int round = 0; round < (twice ? 2 : 1); round++) {
        double value;
        for (size_t i = 0; i < n; i++)
            memcpy(&q[i], &SENT, 8);
        memcpy(&value, &SENT, 8);
        st = drpo_objective_solve(o, n, n ? loss : NULL, with_base ? base : NULL,
                                  null_out ? NULL : q, null_out ? NULL : &value);
        if (st < 0) {
            switch (st) {
            case DRPO_ERR_NULL: case DRPO_ERR_SIZE: case DRPO_ERR_LOSS_NONFINITE:
            case DRPO_ERR_BASE_NEGATIVE: case DRPO_ERR_BASE_SUM: case DRPO_ERR_PARAM_UNSET:
            case DRPO_ERR_NUMERICAL:
                break;
            default:
                abort();
            }
            if (!is_sent(value))
                abort();
            for (size_t i = 0; i < n; i++)
                if (!is_sent(q[i]))
                    abort();
            if (drpo_objective_last_error(o)[0] == '\0' && st != DRPO_ERR_NULL)
                abort();
            double d;
            if (round == 0 && drpo_objective_diag(o, DRPO_DIAG_VALUE, &d) != DRPO_ERR_NO_SOLUTION)
                abort();
            continue;
        }
        if (st != DRPO_OK)
            abort();
        if (null_out)
            continue;
        double sum = 0.0, lo = INFINITY, hi = -INFINITY, bsum = 0.0;
        for (size_t i = 0; i < n; i++) {
            double b = with_base ? base[i] : 1.0 / (double)n;
            if (!(q[i] >= 0.0) || !isfinite(q[i]))
                abort();
            if (b == 0.0 && q[i] != 0.0)
                abort();
            sum += q[i];
            if (b > 0.0) {
                lo = fmin(lo, loss[i]);
                hi = fmax(hi, loss[i]);
                bsum += b;
            }
        }
        if (!(fabs(sum - 1.0) <= 1e-9))
            abort();
        if (!isfinite(value))
            abort();
        /* the value lies in [mean, max] over the support (penalty forms
         * subtract a non-negative term, so only <= max there), compared in
         * units of 2^e >= max |loss| so that nothing overflows */
        int e = 0;
        frexp(fmax(fabs(lo), fabs(hi)), &e);
        double mean = 0.0;
        for (size_t i = 0; i < n; i++) {
            double b = with_base ? base[i] : 1.0 / (double)n;
            if (b > 0.0)
                mean += b / bsum * ldexp(loss[i], -e);
        }
        /* rounding: relative 1e-9, and a few units of the smallest denormal (a
         * value among denormal losses keeps only the bits a denormal has) */
        double v = ldexp(value, -e), top = ldexp(hi, -e);
        double slack = 1e-9 + ldexp(4 * 4.9406564584124654e-324, -e);
        if (v > top + slack)
            abort();
        if (key != DRPO_PARAM_PENALTY && v < mean - slack)
            abort();
        double dv;
        if (drpo_objective_diag(o, DRPO_DIAG_VALUE, &dv) != DRPO_OK ||
            memcmp(&dv, &value, 8) != 0)
            abort();
        for (int32_t k = DRPO_DIAG_VALUE; k <= DRPO_DIAG_DEGENERATE; k++) {
            st = drpo_objective_diag(o, k, &dv);
            if (st != DRPO_OK && st != DRPO_ERR_UNAVAILABLE)
                abort();
            if (st == DRPO_OK && isnan(dv))
                abort();
        }
    }
    drpo_objective_free(o);
    return 0;
}

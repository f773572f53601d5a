/*
 * decimal.h - plain decimal numbers read fast, with strtod's result.
 */
#ifndef DRPO_EXAMPLES_DECIMAL_H
#define DRPO_EXAMPLES_DECIMAL_H

/* A plain decimal at s ([sign] digits [. digits] [e|E [sign] digits], at
 * least one digit before the exponent) whose significand has at most 19
 * significant digits, followed by the end of the string, a space or a tab,
 * and whose value is one IEEE operation away from its digits (Clinger's fast
 * path: a significand up to 2^53 times or over an exact power 10^k,
 * k <= 22, rounds once, so *v is the correctly rounded value, as strtod's
 * in the C locale).  Returns the end of the number and sets *v, or returns
 * NULL for anything else: the caller then asks strtod (which also reads
 * hexadecimal, infinities, NaNs, longer significands and far exponents). */
const char *decimal_read_fast(const char *s, double *v);

#endif

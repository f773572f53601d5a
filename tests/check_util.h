/* check_util.h - helpers the suites share: checking a solution's feasibility. */
#ifndef DRPO_CHECK_UTIL_H
#define DRPO_CHECK_UTIL_H

#include "drpo.h"

#include <stddef.h>

/* Divergence of q from p for a set, over the support of p (CVaR: max q/p). */
double tu_divergence(int32_t set, size_t n, const double *q, const double *p);

/* Checks the feasibility rules for a returned q: non-negative, zero off
 * the support, sums to 1 within 1e-12, within the radius (or CVaR caps), and
 * attaining `value` (sum q l - penalty D within tol).  Returns NULL if fine, else
 * a static message. */
const char *tu_check_solution(int32_t set, int form_key, double param, size_t n,
                              const double *loss, const double *p, const double *q,
                              double value);

/* The value tolerance: 1e-8 * max(1, |value|, max |loss|). */
double tu_value_tol(double value, size_t n, const double *loss);

#endif

/* check_util.c - solution checks shared by the suites, computed directly from
 * the definitions (no code shared with the library). */
#include "check_util.h"

#include <math.h>

double tu_divergence(int32_t set, size_t n, const double *q, const double *p)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == 0.0)
            continue;
        double r = q[i] / p[i];
        switch (set) {
        case DRPO_SET_KL: s += q[i] > 0.0 ? q[i] * log(r) : 0.0; break;
        case DRPO_SET_CHI2: s += 0.5 * p[i] * (r - 1.0) * (r - 1.0); break;
        case DRPO_SET_TV: s += 0.5 * fabs(q[i] - p[i]); break;
        case DRPO_SET_CVAR: s = r > s ? r : s; break;
        default: break;
        }
    }
    return s;
}

double tu_value_tol(double value, size_t n, const double *loss)
{
    double m = 1.0;
    if (fabs(value) > m)
        m = fabs(value);
    for (size_t i = 0; i < n; i++)
        if (fabs(loss[i]) > m)
            m = fabs(loss[i]);
    return 1e-8 * m;
}

const char *tu_check_solution(int32_t set, int form_key, double param, size_t n,
                              const double *loss, const double *p, const double *q,
                              double value)
{
    double sum = 0.0, lin = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (!(q[i] >= 0.0))
            return "negative or NaN weight";
        if (p[i] == 0.0 && q[i] != 0.0)
            return "weight off the support of the base";
        sum += q[i];
        lin += q[i] * loss[i];
    }
    if (fabs(sum - 1.0) > 1e-12)
        return "weights do not sum to 1 within 1e-12";
    double div = tu_divergence(set, n, q, p);
    if (form_key == DRPO_PARAM_RADIUS && div > param * (1 + 1e-9) + 1e-12)
        return "divergence exceeds the radius";
    if (form_key == DRPO_PARAM_LEVEL && div > (1.0 / param) * (1 + 1e-12))
        return "CVaR cap q <= p / alpha violated";
    double attained = lin - (form_key == DRPO_PARAM_PENALTY ? param * div : 0.0);
    if (fabs(attained - value) > tu_value_tol(value, n, loss))
        return "q does not attain the value";
    return 0;
}

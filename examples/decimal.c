/* decimal.c - plain decimals read fast, exactly as strtod reads them (see
 * decimal.h).  strtod took a third of drpo-train's parse of a CSV file. */
#include "decimal.h"

#include <stddef.h>
#include <stdint.h>

const char *decimal_read_fast(const char *s, double *v)
{
    static const double pow10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    const char *p = s;
    int neg = *p == '-';
    if (*p == '-' || *p == '+')
        p++;
    uint64_t m = 0;
    int digits = 0, scale = 0, any = 0;
    for (; *p >= '0' && *p <= '9'; p++, any = 1) {
        if ((m || *p != '0') && ++digits > 19)
            return NULL;
        m = 10 * m + (uint64_t)(*p - '0');
    }
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++, any = 1, scale--) {
            if ((m || *p != '0') && ++digits > 19)
                return NULL;
            m = 10 * m + (uint64_t)(*p - '0');
        }
    if (!any)
        return NULL;
    if (*p == 'e' || *p == 'E') {
        const char *q = p + 1;
        int eneg = *q == '-', ex = 0, edigits = 0;
        if (*q == '-' || *q == '+')
            q++;
        for (; *q >= '0' && *q <= '9'; q++)
            if (++edigits <= 4)
                ex = 10 * ex + (*q - '0');
        if (edigits == 0 || edigits > 4) /* "1e" is 1 followed by "e"; past 10^9999: strtod */
            return NULL;
        scale += eneg ? -ex : ex;
        p = q;
    }
    if (m > (uint64_t)1 << 53 || (*p != '\0' && *p != ' ' && *p != '\t'))
        return NULL; /* (strtod also reads hexadecimal, and says where it stops) */
    double x = (double)m; /* exact */
    if (m && (scale > 22 || scale < -22))
        return NULL;
    if (m && scale > 0)
        x *= pow10[scale];
    else if (m && scale < 0)
        x /= pow10[-scale];
    *v = neg ? -x : x;
    return p;
}


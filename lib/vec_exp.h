/* vec_exp.h - exp(x) for x <= 0 and expm1(x) on [-0.5, 0], written once for
 * every lane count (internal; included by vec.h only).  The includer
 * defines
 *   V, VI, VU     the lanes' double, int64 and uint64 vector types,
 *   VEC           this width's naming macro (DRPO__V4, DRPO__V8),
 *   VEC_ATTR      the target the width needs (empty for four lanes),
 *   VEC_TABLE(j)  2^(j/32) in each lane, j < 32,
 * and gets the same IEEE operations per lane at every width, so a kernel's
 * wide instance agrees with the narrow ones bit for bit. */

/* exp(x) for x <= 0: x = (32 m + j) ln2/32 + r with |r| <= ln2/64, exp(x) =
 * 2^m 2^(j/32) P(r), P the degree-6 Taylor polynomial (truncation below
 * 2e-18 relative): within 3 ulps (tests/test_kernels.c holds it to 4), with
 * a dependency chain short enough to keep several groups in flight.
 * Below -708 the result (< 1e-307) is flushed to 0. */
VEC_ATTR DRPO__INLINE V VEC(exp_nonpos)(V x)
{
    /* lanes below -708 compute garbage (never NaN-trapping) and are zeroed
     * at the end; no clamp on the dependency chain */
    const V shifter = VEC(set1)(0x1.8p52);
    VI under = x < VEC(set1)(-708.0);
    V t = x * 0x1.71547652b82fep+5 + shifter, kd = t - shifter;
    /* integer work in unsigned lanes: wrap-around is defined (garbage lanes
     * overflow, and shifts of negative values are undefined in signed) */
    VU k = (VU)t - (VU)shifter, j = k & 31;
    V r = (x - kd * 0x1.62e42f0000000p-6) - kd * 0x1.df473de6af279p-31;
    /* P(r) = 1 + r + r^2/2 + ... + r^6/720 by Estrin's scheme (short chain) */
    V r2 = r * r;
    V a = 1.0 + r, b = 0.5 + r * (1.0 / 6.0), c = 1.0 / 24.0 + r * (1.0 / 120.0);
    V p = a + r2 * (b + r2 * (c + r2 * (1.0 / 720.0)));
    VU scale = ((k - j) << 47) + ((uint64_t)1023 << 52); /* 2^m, m = (k - j) / 32 */
    V y = (p * VEC_TABLE(j)) * (V)scale;
    return (V)((VI)y & ~under);
}

/* expm1(x) for -0.5 <= x <= 0, to a few ulps relative: the Taylor series
 * in nested form x (1 + x/2 (1 + x/3 (...))), 15 terms (truncation below
 * 2e-18 relative). */
VEC_ATTR DRPO__INLINE V VEC(expm1_small)(V x)
{
    V s = VEC(set1)(1.0);
    for (int k = 15; k >= 2; k--)
        s = s * (x * (1.0 / k)) + 1.0;
    return x * s;
}

#undef V
#undef VI
#undef VU
#undef VEC
#undef VEC_ATTR
#undef VEC_TABLE

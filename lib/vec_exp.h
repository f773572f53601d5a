/* vec_exp.h - exp(x) for x <= 0, expm1(x) on [-0.5, 0] and log1p(x) on
 * [0, 1], written once for every lane count (internal; included by vec.h only).  The includer
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

/* log1p(x) for 0 <= x <= 1 (NaN stays NaN), within about 1 ulp: u = 1 + x
 * rounded, log1p(x) = log(u) + c with c = (x - (u - 1)) / u the rounding's
 * first-order correction; u = 2^k (1 + f) with k = 1 above sqrt(2), so
 * |f| <= 0.42; log(1 + f) = 2 atanh(s), s = f / (2 + f), |s| <= 0.172, as
 * f - (hf - s (hf + R)) with hf = f^2 / 2 and R = sum 2 s^2k / (2k + 1),
 * k = 1..10 (truncation below 1e-19 relative), ln 2 split in two so that
 * k ln2_hi is exact. */
VEC_ATTR DRPO__INLINE V VEC(log1p_unit)(V x)
{
    const V one = VEC(set1)(1.0);
    V u = one + x;
    VI above = u > VEC(set1)(0x1.6a09e667f3bcdp+0); /* sqrt(2) */
    V k = (V)((VI)one & above);
    V f = (V)(((VI)(u * 0.5 - 1.0) & above) | ((VI)(u - 1.0) & ~above));
    V c = (x - (u - 1.0)) / u;
    V s = f / (2.0 + f), z = s * s, z2 = z * z;
    /* R = z P(z): P's ten coefficients 2 / (2k + 1) by Estrin's scheme */
    V p01 = 2.0 / 3.0 + z * (2.0 / 5.0), p23 = 2.0 / 7.0 + z * (2.0 / 9.0);
    V p45 = 2.0 / 11.0 + z * (2.0 / 13.0), p67 = 2.0 / 15.0 + z * (2.0 / 17.0);
    V p89 = 2.0 / 19.0 + z * (2.0 / 21.0);
    V z4 = z2 * z2;
    V r = z * ((p01 + z2 * p23) + z4 * ((p45 + z2 * p67) + z4 * p89));
    V hf = 0.5 * f * f;
    V lo = k * 0x1.a39ef35793c76p-33 + c; /* ln2_lo */
    return k * 0x1.62e42fee00000p-1 + (f - (hf - (s * (hf + r) + lo)));
}

#undef V
#undef VI
#undef VU
#undef VEC
#undef VEC_ATTR
#undef VEC_TABLE

#!/usr/bin/python3
"""loss_reference.py - the reference table of tests/test_losses.c.

Evaluates the five preference losses of drpo.h and their derivatives in the
margin with mpmath at 80 significant digits, at the exact double inputs
(beta, smoothing and margin as the C literals denote them; z = beta * m is
formed exactly, not rounded), and prints each value correctly rounded to
double as C initialisers:

    {kind, beta, smoothing, margin, loss, dloss, kink},

kink = 1 marks the hinge at z = 1 (exactly, or once beta * m is rounded to
double as the library forms it), where any slope in [-beta, 0] is a valid
subgradient; the loss there is 0 to the tolerance.  IPO at |m| = 1e300 is
left out: (1e300)^2 overflows double and is checked separately.  Regenerate with
    /usr/bin/python3 tests/tools/loss_reference.py
(python3-mpmath 1.2.1 produced the table in the test).
"""
import mpmath
from mpmath import mp, mpf
from mpmath.libmp import to_float

mp.dps = 80

BT, DPO, IPO, HINGE, CDPO = 0, 1, 2, 3, 4
NAMES = {BT: "DRPO_LOSS_BT", DPO: "DRPO_LOSS_DPO", IPO: "DRPO_LOSS_IPO",
         HINGE: "DRPO_LOSS_HINGE", CDPO: "DRPO_LOSS_CDPO"}
MAGS = ["1e-8", "0.5", "1", "10", "30", "40", "100", "700", "1e4", "1e300"]
MARGINS = ["0"] + [s + m for m in MAGS for s in ("", "-")]
BETAS = ["0.1", "1", "2.5"]
SMOOTHINGS = ["0", "0.1", "0.25", "0.5"]


def d(s):
    """The exact value of the double the C literal s denotes."""
    return mpf(float(s))


def nls(z):
    """-log sigmoid(z) = log(1 + exp(-z)), accurate for any z."""
    if z >= 0:
        return mpmath.log1p(mpmath.exp(-z))
    return -z + mpmath.log1p(mpmath.exp(z))


def sig(z):
    if z >= 0:
        return 1 / (1 + mpmath.exp(-z))
    e = mpmath.exp(z)
    return e / (1 + e)


def loss(kind, beta, eps, m):
    z = beta * m
    if kind == BT:
        return nls(m), -sig(-m), 0
    if kind == DPO:
        return nls(z), -beta * sig(-z), 0
    if kind == IPO:
        r = m - 1 / (2 * beta)
        return r * r, 2 * r, 0
    if kind == HINGE:
        # the library forms z in double: where that rounds to 1 either side
        # of the kink is a valid answer, so such rows are kinks too
        kink = int(z == 1 or float(beta) * float(m) == 1.0)
        if z < 1:
            return 1 - z, -beta, kink
        return mpf(0), mpf(0), kink
    l = (1 - eps) * nls(z) + eps * nls(-z)
    dl = -beta * ((1 - eps) * sig(-z) - eps * sig(z))
    return l, dl, 0


def c(x):
    f = to_float(x._mpf_, rnd="n")  # correctly rounded to nearest
    assert not 0.0 < abs(f) < 2.2250738585072014e-308, "subnormal reference"
    if f == 0.0:
        return "0.0"
    return repr(f)


def rows():
    yield BT, "1", "0"
    for k in (DPO, IPO, HINGE):
        for b in BETAS:
            yield k, b, "0"
    for b in BETAS:
        for e in SMOOTHINGS:
            yield CDPO, b, e


def main():
    for kind, b, e in rows():
        for m in MARGINS:
            if kind == IPO and "1e300" in m:
                continue
            l, dl, kink = loss(kind, d(b), d(e), d(m))
            print("    {%s, %s, %s, %s, %s, %s, %d}," %
                  (NAMES[kind], b, e, m, c(l), c(dl), kink))


if __name__ == "__main__":
    main()

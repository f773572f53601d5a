#!/usr/bin/python3
"""torch_baselines.py - the PyTorch side of `make bench` (Debian's torch on
the CPU, /usr/bin/python3).  One JSON object per line on stdout.

    torch_baselines.py solve LIBDRPO      (2) solves as a user writes them
    torch_baselines.py optim              (3) torch.optim.AdamW / SGD(momentum)
    torch_baselines.py linear             (4) linear BT forward + backward
    torch_baselines.py policy             (4) softmax policy forward + backward
    torch_baselines.py train CSV BATCH    (5) stochastic KL-radius DRO training loop
"""
import ctypes, json, math, statistics, sys, time

import numpy as np
import torch

torch.set_num_threads(1)  # the library runs on the caller's thread


def out(**kw):
    print(json.dumps(kw), flush=True)


def med(f, reps):
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


# ---- (2) solves -----------------------------------------------------------

def bisect(f, lo, hi, tol, iters):
    """f increasing; the root of f in [lo, hi]: the usual loop."""
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if f(mid) > 0:
            hi = mid
        else:
            lo = mid
        if hi - lo <= tol:
            break
    return 0.5 * (lo + hi)


def kl_radius(l, rho, tol, iters):
    # q ∝ exp(l / lam); KL(q||p) decreases in lam: bisection on lam (log scale
    # bracket), value = lam rho + lam log mean exp(l / lam)
    n = l.numel()
    lmax = l.max()

    def kl(lam):
        z = (l - lmax) / lam
        lse = torch.logsumexp(z, 0)
        q = torch.exp(z - lse)
        return float((q * (z - lse)).sum() + math.log(n))

    span = float(l.max() - l.min())
    lo, hi = 1e-8 * span, 1e3 * span
    lam = bisect(lambda x: rho - kl(x), lo, hi, tol * span, iters)
    z = (l - lmax) / lam
    return float(lam * rho + lmax + lam * (torch.logsumexp(z, 0) - math.log(n)))


def kl_penalty(l, lam, tol, iters):
    n = l.numel()
    return float(lam * (torch.logsumexp(l / lam, 0) - math.log(n)))


def chi2_radius(l, rho, tol, iters):
    # q ∝ (l - eta)_+, D = 1/2 (n sum q^2 - 1) increases in eta
    n = l.numel()

    def div(eta):
        r = torch.clamp(l - eta, min=0)
        q = r / r.sum()
        return float(0.5 * (n * (q * q).sum() - 1))

    mean, std = float(l.mean()), float(l.std(unbiased=False))
    lo = min(float(l.min()), mean - std / math.sqrt(2 * rho)) - 1e-9
    hi = float(l.max())
    span = hi - lo
    eta = bisect(lambda e: div(e) - rho, lo, hi, tol * span, iters)
    r = torch.clamp(l - eta, min=0)
    return float((r / r.sum() * l).sum())


def chi2_penalty(l, lam, tol, iters):
    # inf_eta eta + lam/2 + E (l - eta)_+^2 / (2 lam); optimum: E (l - eta)_+ = lam
    span = float(l.max() - l.min()) + lam
    lo, hi = float(l.min()) - lam - 1e-9, float(l.max())
    eta = bisect(lambda e: lam - float(torch.clamp(l - e, min=0).mean()), lo, hi, tol * span, iters)
    r = torch.clamp(l - eta, min=0)
    return float(eta + lam / 2 + (r * r).mean() / (2 * lam))


def cvar(l, alpha, tol, iters):
    # eta + E (l - eta)_+ / alpha with eta the (1 - alpha) quantile: top-k
    n = l.numel()
    k = alpha * n
    kf = int(math.floor(k))
    top = torch.topk(l, min(n, kf + 1)).values
    s = top[:kf].sum() + (k - kf) * (top[kf] if kf < top.numel() else 0)
    return float(s / k)


def tv_radius(l, rho, tol, iters):
    # uniform p: (1 - rho) CVaR_{1 - rho} + rho max
    if rho >= 1:
        return float(l.max())
    return (1 - rho) * cvar(l, 1 - rho, tol, iters) + rho * float(l.max())


def tv_penalty(l, lam, tol, iters):
    return float(torch.clamp(l, min=float(l.max()) - lam).mean())


SOLVES = [  # name, set, key, param, torch function, bisection?
    ("kl-radius", 1, 1, 0.1, kl_radius, True),
    ("kl-penalty", 1, 2, 0.5, kl_penalty, False),
    ("chi2-radius", 2, 1, 0.5, chi2_radius, True),
    ("chi2-penalty", 2, 2, 0.5, chi2_penalty, True),
    ("cvar", 3, 3, 0.2, cvar, False),
    ("tv-radius", 4, 1, 0.2, tv_radius, False),
    ("tv-penalty", 4, 2, 0.3, tv_penalty, False),
]


def bench_solve(libpath):
    lib = ctypes.CDLL(libpath)
    lib.drpo_objective_create.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int32]
    lib.drpo_objective_set.argtypes = [ctypes.c_void_p, ctypes.c_int32, ctypes.c_double]
    lib.drpo_objective_solve.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p,
                                         ctypes.c_void_p, ctypes.c_void_p,
                                         ctypes.POINTER(ctypes.c_double)]
    lib.drpo_objective_free.argtypes = [ctypes.c_void_p]
    rng = np.random.default_rng(5)
    for n in (1000, 100000):
        m = rng.normal(0.5, 1.0, n)
        loss = np.logaddexp(0, -m)
        lt = torch.from_numpy(loss)
        w = np.empty(n)
        reps = 21 if n <= 1000 else 7
        for name, s, key, param, fn, is_bisect in SOLVES:
            obj = ctypes.c_void_p()
            lib.drpo_objective_create(ctypes.byref(obj), s)
            lib.drpo_objective_set(obj, key, param)
            val = ctypes.c_double()
            lp, wp = loss.ctypes.data, w.ctypes.data

            def solve():
                st = lib.drpo_objective_solve(obj, n, lp, None, wp, ctypes.byref(val))
                assert st == 0, st
            t_lib = med(solve, reps * 3)
            exact = val.value
            # the user's version with the usual tolerance and cap, and the
            # reference check: the same method run to convergence
            user = fn(lt, param, 1e-6, 100)
            t_torch = med(lambda: fn(lt, param, 1e-6, 100), reps)
            ref = fn(lt, param, 0.0, 200)
            lib.drpo_objective_free(obj)
            out(bench="torch-solve", case=name, n=n, lib_seconds=t_lib, torch_seconds=t_torch,
                speedup=t_torch / t_lib, exact=exact, lib_error=0.0,
                torch_error=abs(user - exact) / max(1.0, abs(exact)),
                reference_gap=abs(ref - exact) / max(1.0, abs(exact)),
                method="bisection (tol 1e-6 of the bracket, cap 100)" if is_bisect else "closed form / top-k")


# ---- (3) optimisers ----------------------------------------------------------

def bench_optim(quick):
    for d in ((10**7,) if quick else (10**7, 10**8)):
        p = torch.nn.Parameter(torch.linspace(-0.5, 0.5, d, dtype=torch.float32))
        p.grad = torch.linspace(-1, 1, d, dtype=torch.float32)
        for name, make in (("adamw", lambda: torch.optim.AdamW([p], lr=1e-3, weight_decay=0.01)),
                           ("momentum", lambda: torch.optim.SGD([p], lr=1e-3, momentum=0.9))):
            for foreach in (False, True):
                try:
                    opt = make()
                    for g in opt.param_groups:
                        g["foreach"] = foreach
                    opt.step()
                except Exception:  # pragma: no cover
                    continue
                reps = 5 if d >= 10**8 else 9
                t = med(opt.step, reps)
                out(bench="torch-optim", opt=name, d=d, foreach=foreach, seconds=t)
                del opt
        del p


# ---- (4) linear model ----------------------------------------------------------

def bench_linear():
    for n, d in ((100000, 256), (1000000, 64)):
        g = torch.Generator().manual_seed(3)
        x = torch.rand(n, d, generator=g, dtype=torch.float32) - 0.5
        theta = (torch.arange(d, dtype=torch.float32) % 11 - 5) * 0.01
        w = torch.full((n,), 1.0 / n, dtype=torch.float64)

        def step():
            # forward: margins by a float32 matmul, losses; backward: the
            # analytic gradient of sum_j w_j loss_j by a second matmul
            m = x @ theta
            loss = torch.nn.functional.softplus(-m.double())
            coef = (-torch.sigmoid(-m.double()) * w).float()
            return loss, coef @ x

        def step_autograd():
            th = theta.clone().requires_grad_(True)
            m = x @ th
            loss = torch.nn.functional.softplus(-m.double())
            (loss * w).sum().backward()
            return th.grad
        out(bench="torch-linear", n=n, d=d, seconds=med(step, 11),
            autograd_seconds=med(step_autograd, 11))


def bench_policy():
    # bench/models.c's policy: n / 8 prompts of 8 candidates, rewards
    # (i % 5) / 4, beta 0.1, theta_ref = 0 (a uniform reference)
    k, beta = 8, 0.1
    for n, d in ((100000, 256), (1000000, 64)):
        g = torch.Generator().manual_seed(3)
        x = torch.rand(n, d, generator=g, dtype=torch.float32) - 0.5
        theta = (torch.arange(d, dtype=torch.float32) % 11 - 5) * 0.01
        r = ((torch.arange(n) % 5).double() * 0.25).view(-1, k)
        ref = torch.full((n // k, k), -math.log(k), dtype=torch.float64)
        w = torch.full((n // k, 1), k / n, dtype=torch.float64)

        def step():
            # forward: scores by a float32 matmul, log-softmax per prompt,
            # E r - beta KL; backward: the analytic slopes -pi (g - E g)
            # and a second matmul
            logp = torch.log_softmax((x @ theta).double().view(-1, k), dim=1)
            p = logp.exp()
            gk = r - beta * (logp - ref)
            loss = -(p * r).sum(1) + beta * (p * (logp - ref)).sum(1)
            coef = (-p * (gk - (p * gk).sum(1, keepdim=True)) * w).float().view(-1)
            return loss, coef @ x

        def step_autograd():
            th = theta.clone().requires_grad_(True)
            logp = torch.log_softmax((x @ th).double().view(-1, k), dim=1)
            p = logp.exp()
            loss = -(p * r).sum(1) + beta * (p * (logp - ref)).sum(1)
            (loss * w.view(-1)).sum().backward()
            return th.grad
        out(bench="torch-policy", n=n, d=d, seconds=med(step, 11),
            autograd_seconds=med(step_autograd, 11))


# ---- (5) training loop -----------------------------------------------------------

def bench_train(csv, batch):
    import csv as csvmod
    t0 = time.perf_counter()
    # the fastest plain way to read it: numpy on the numeric columns, prompts
    # as strings
    with open(csv) as f:
        header = f.readline().strip().split(",")
    d = (len(header) - 2) // 2
    data = np.loadtxt(csv, delimiter=",", skiprows=1, usecols=range(2, 2 + 2 * d),
                      dtype=np.float32)
    prompts = []
    with open(csv) as f:
        next(f)
        for line in f:
            prompts.append(line[:line.index(",")])
    parse = time.perf_counter() - t0
    x = torch.from_numpy(data[:, :d] - data[:, d:])
    n = x.shape[0]
    keys = {}
    pid = torch.tensor([keys.setdefault(p, len(keys)) for p in prompts], dtype=torch.int64)

    theta = torch.zeros(d, dtype=torch.float32, requires_grad=True)
    opt = torch.optim.AdamW([theta], lr=0.1, weight_decay=0.0)
    rho, dual_lr = 0.1, 0.1
    state = {"mu": None, "lam": None}
    g = torch.Generator().manual_seed(1)
    perm = torch.randperm(n, generator=g)
    t1 = time.perf_counter()
    for s in range(0, n, batch):
        idx = perm[s:s + batch]
        xb, pb = x[idx], pid[idx]
        m = xb @ theta
        loss = torch.nn.functional.softplus(-m.double())
        # units: pairs sharing a prompt; unit loss = mean, base p_u = pairs / N
        uniq, inv, cnt = torch.unique(pb, return_inverse=True, return_counts=True)
        ul = torch.zeros(len(uniq), dtype=torch.float64).index_add_(0, inv, loss.detach())
        ul = ul / cnt
        base = cnt.double() / len(idx)
        if state["lam"] is None:  # start: lambda from the loss scale, mu at the top
            state["lam"] = max(0.1 * float((base * ul.abs()).sum()), 1e-8)
            state["mu"] = float(ul.max())
        lam, mu = state["lam"], max(state["mu"], float(ul.max()) - 30 * state["lam"])
        z = (ul - mu) / lam
        a = torch.exp(z)
        s0 = float((base * a).sum())
        s1 = float((base * a * z).sum())
        g_mu, g_l = 1 - s0, rho + s0 - s1 - 1
        w = (a / len(idx))[inv]  # p_u a_u / pairs of u
        opt.zero_grad()
        (loss * w).sum().backward()
        opt.step()
        state["mu"] = min(mu - dual_lr * g_mu, float(ul.max()))
        e = math.e
        state["lam"] = min(max(min(max(lam - dual_lr * g_l, lam / e), lam * e), 1e-8), 1e8)
    train = time.perf_counter() - t1
    out(bench="torch-train", n=n, d=d, batch=batch, parse_seconds=parse, train_seconds=train,
        steps=(n + batch - 1) // batch)


if __name__ == "__main__":
    what = sys.argv[1]
    if what == "solve":
        bench_solve(sys.argv[2])
    elif what == "optim":
        bench_optim(len(sys.argv) > 2 and sys.argv[2] == "--quick")
    elif what == "linear":
        bench_linear()
    elif what == "policy":
        bench_policy()
    elif what == "train":
        bench_train(sys.argv[2], int(sys.argv[3]))

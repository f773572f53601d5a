#!/usr/bin/python3
"""run.py - `make bench`: runs every benchmark of bench/ and its baselines,
prints one table and writes docs/performance.md's numbers.

    /usr/bin/python3 bench/run.py BUILD_DIR [--quick] [--no-doc]

The C programs and the PyTorch baselines (torch_baselines.py) print one
JSON object per line; every figure is a median of several repetitions
(bench/common.h), reported with its floor and its ratio."""
import datetime, json, os, platform, re, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PY = "/usr/bin/python3"


def run(cmd, timeout=900):
    print("bench: " + " ".join(cmd), file=sys.stderr, flush=True)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, timeout=timeout)
    if p.returncode:
        raise SystemExit("bench: %s failed (%d)" % (cmd[0], p.returncode))
    return [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]


def machine(build):
    cpu = next((l.split(":", 1)[1].strip() for l in subprocess.run(
        ["lscpu"], stdout=subprocess.PIPE, text=True).stdout.splitlines()
        if l.startswith("Model name")), platform.processor())
    cc = subprocess.run(["cc", "--version"], stdout=subprocess.PIPE, text=True).stdout.splitlines()[0]
    return cpu, os.cpu_count(), cc


def fmt_t(s):
    return "%.3g s" % s if s >= 1 else "%.3g ms" % (s * 1e3) if s >= 1e-3 else "%.3g µs" % (s * 1e6)


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    quick = "--quick" in sys.argv
    b = lambda name: os.path.join(build, "bench", name)
    lib = os.path.join(build, "libdrpo.so")
    q = ["--quick"] if quick else []
    t_start = time.time()
    R = {}
    R["solve"] = run([b("bench-solve")] + q)
    R["torch_solve"] = run([PY, os.path.join(HERE, "torch_baselines.py"), "solve", lib])
    R["optim"] = run([b("bench-optim")] + q)
    R["torch_optim"] = run([PY, os.path.join(HERE, "torch_baselines.py"), "optim"] + q)
    models = run([b("bench-models")])
    R["linear"] = [x for x in models if x["bench"] == "linear"]
    R["policy"] = [x for x in models if x["bench"] == "policy"]
    R["torch_linear"] = run([PY, os.path.join(HERE, "torch_baselines.py"), "linear"])
    R["torch_policy"] = run([PY, os.path.join(HERE, "torch_baselines.py"), "policy"])
    R["kernels"] = run([b("bench-kernels")]) if os.path.exists(b("bench-kernels")) else []
    # (5) end to end
    pairs = 10**5 if quick else 10**6
    d, batch = 64, 32
    with tempfile.TemporaryDirectory(prefix="drpo-bench-") as tmp:
        csv = os.path.join(tmp, "train.csv")
        run([b("bench-gen-pairs"), str(pairs), str(d), csv])
        train = os.path.join(build, "examples", "drpo-train")
        common = [train, "--train", csv, "--set", "kl", "--radius", "0.1", "--mode", "stochastic",
                  "--optimizer", "adamw", "--lr", "0.1", "--batch", str(batch), "--quiet",
                  "--report", os.path.join(tmp, "r.json")]
        # the training loop timed by drpo-train itself (train_seconds in its
        # report): the difference of two whole runs was mostly parsing noise
        totals, trains = [], []
        for _ in range(3 if not quick else 1):
            t0 = time.perf_counter()
            run(common + ["--epochs", "1"])
            totals.append(time.perf_counter() - t0)
            with open(os.path.join(tmp, "r.json")) as f:
                trains.append(json.load(f)["train_seconds"])
        total, train_s = sorted(totals)[len(totals) // 2], sorted(trains)[len(trains) // 2]
        R["e2e"] = {"pairs": pairs, "d": d, "batch": batch, "load_eval_seconds": total - train_s,
                    "total_seconds": total, "train_seconds": train_s}
        R["torch_train"] = run([PY, os.path.join(HERE, "torch_baselines.py"), "train", csv, str(batch)])
    R["elapsed"] = time.time() - t_start
    cpu, ncpu, cc = machine(build)
    arch = next((k["arch"] for k in R["kernels"] if k["bench"] == "blis"), "?")
    R["machine"] = {"cpu": cpu, "cpus": ncpu, "compiler": cc, "blis": arch,
                    "date": datetime.date.today().isoformat()}
    with open(os.path.join(build, "bench-results.json"), "w") as f:
        json.dump(R, f, indent=1)
    table = render(R)
    print(table)
    if "--no-doc" not in sys.argv:
        write_doc(table)


def render(R):
    L = []
    m = R["machine"]
    L.append("Machine: %s (%d CPUs), %s, BLIS kernel set `%s`, %s; one thread." %
             (m["cpu"], m["cpus"], m["compiler"], m["blis"], m["date"]))
    bw = next(x for x in R["optim"] if x["bench"] == "bandwidth")
    L.append("Streaming bandwidth (400 MiB arrays): read %.1f GB/s, in-place triad %.1f GB/s, copy %.1f GB/s." %
             (bw["read"] / 1e9, bw["inplace"] / 1e9, bw["copy"] / 1e9))
    L.append("")
    L.append("(1) exact solve, uniform base, weights written: time and ratio to one read pass over n doubles")
    L.append("")
    solves = [x for x in R["solve"] if x["bench"] == "solve"]
    sizes = sorted({x["n"] for x in solves})
    L.append("| set, form | " + " | ".join("n = %g" % n for n in sizes) + " | target at 10^7 |")
    L.append("|---|" + "---|" * len(sizes) + "---|")
    target = {"cvar": 4, "tv-radius": 4, "tv-penalty": 4, "chi2-radius": 6, "chi2-penalty": 6,
              "kl-radius": 10, "kl-penalty": 10}
    for case in dict.fromkeys(x["case"] for x in solves):
        cells = []
        for n in sizes:
            x = next(y for y in solves if y["case"] == case and y["n"] == n)
            cells.append("%s (%s×)" % (fmt_t(x["seconds"]), ("%.0f" if x["ratio"] >= 20 else "%.1f") % x["ratio"]))
        L.append("| %s | %s | %d× |" % (case, " | ".join(cells), target[case]))
    L.append("")
    L.append("(1b) the same solves over a base like the trainer's when prompts have 1 to 4 pairs (counts / total), against the uniform base, alternately")
    L.append("")
    L.append("| set, form | n | over the base | uniform base | ratio |")
    L.append("|---|---|---|---|---|")
    for x in (y for y in R["solve"] if y["bench"] == "solve_base"):
        L.append("| %s | %g | %s | %s | %.2f× |" % (x["case"], x["n"], fmt_t(x["seconds"]),
                                                    fmt_t(x["uniform_seconds"]), x["ratio"]))
    L.append("")
    L.append("(2) the same solves in PyTorch (float64, CPU, 1 thread) as users write them; relative errors against the exact value")
    L.append("")
    L.append("| set, form | n | libdrpo | PyTorch | speed-up | PyTorch error | libdrpo vs converged reference | PyTorch method |")
    L.append("|---|---|---|---|---|---|---|---|")
    for x in R["torch_solve"]:
        L.append("| %s | %g | %s | %s | %.1f× | %.1e | %.1e | %s |" % (
            x["case"], x["n"], fmt_t(x["lib_seconds"]), fmt_t(x["torch_seconds"]), x["speedup"],
            x["torch_error"], x["reference_gap"], x["method"]))
    L.append("")
    L.append("(3) optimiser update through drpo_trainer_step (callback time subtracted) vs the bytes it must move and vs torch.optim")
    L.append("")
    L.append("| optimiser | d | libdrpo | floor (bytes / in-place bandwidth) | ratio to floor | torch.optim (for-loop / foreach) | speed-up | allocations per step |")
    L.append("|---|---|---|---|---|---|---|---|")
    for x in (y for y in R["optim"] if y["bench"] == "optim"):
        tt = [y for y in R["torch_optim"] if y["opt"] == x["opt"] and y["d"] == x["d"]]
        best = min(y["seconds"] for y in tt) if tt else float("nan")
        L.append("| %s | %g | %s | %s (%.0f B/param) | %.2f× | %s | %.2f× | %g |" % (
            x["opt"], x["d"], fmt_t(x["seconds"]), fmt_t(x["floor_seconds"]), x["floor_bytes"] / x["d"],
            x["ratio"], " / ".join(fmt_t(y["seconds"]) for y in tt), best / x["seconds"],
            x["allocs_per_step"]))
    L.append("")
    L.append("(4) built-in linear Bradley–Terry forward + backward (model share of a full step)")
    L.append("")
    L.append("| n × d | libdrpo | floor (2 read passes) | ratio | PyTorch (matmuls / autograd) | speed-up (vs the faster) |")
    L.append("|---|---|---|---|---|---|")
    def model_rows(mine, torch_rows):
        for x in mine:
            t = next(y for y in torch_rows if y["n"] == x["n"] and y["d"] == x["d"])
            L.append("| %g × %d | %s | %s | %.2f× | %s / %s | %.1f× |" % (
                x["n"], x["d"], fmt_t(x["seconds"]), fmt_t(x["floor_seconds"]), x["ratio"],
                fmt_t(t["seconds"]), fmt_t(t["autograd_seconds"]),
                min(t["seconds"], t["autograd_seconds"]) / x["seconds"]))
    model_rows(R["linear"], R["torch_linear"])
    L.append("")
    L.append("(4b) built-in softmax policy forward + backward, n / 8 prompts of 8 candidates (model share of a full step)")
    L.append("")
    L.append("| candidates × d | libdrpo | floor (2 read passes) | ratio | PyTorch (matmuls / autograd) | speed-up (vs the faster) |")
    L.append("|---|---|---|---|---|---|")
    model_rows(R["policy"], R["torch_policy"])
    if R["kernels"]:
        L.append("")
        L.append("gemv kernels (median time; libdrpo picks its AVX2/FMA loops where BLIS runs generic kernels)")
        L.append("")
        ks = [k for k in R["kernels"] if k["bench"] == "kernels"]
        sets = list(dict.fromkeys(k["set"] for k in ks))
        L.append("| rows × dim, op | " + " | ".join(sets) + " |")
        L.append("|---|" + "---|" * len(sets))
        for key in dict.fromkeys((k["rows"], k["dim"], k["op"]) for k in ks):
            row = {k["set"]: k["seconds"] for k in ks if (k["rows"], k["dim"], k["op"]) == key}
            L.append("| %g × %d, %s | %s |" % (key[0], key[1], key[2],
                                              " | ".join(fmt_t(row[s]) if s in row else "—" for s in sets)))
    e, t = R["e2e"], R["torch_train"][0]
    L.append("")
    L.append("(5) one epoch, %g pairs, d = %d, batch %d, KL radius 0.1 stochastic, AdamW" % (e["pairs"], e["d"], e["batch"]))
    L.append("")
    L.append("| | parse / load | training (one epoch) | speed-up in training |")
    L.append("|---|---|---|---|")
    L.append("| drpo-train | %s (load + final evaluation) | %s | %.1f× |" % (
        fmt_t(e["load_eval_seconds"]), fmt_t(e["train_seconds"]), t["train_seconds"] / e["train_seconds"]))
    L.append("| PyTorch loop | %s (numpy.loadtxt) | %s | 1× |" % (fmt_t(t["parse_seconds"]), fmt_t(t["train_seconds"])))
    L.append("")
    L.append("(6) library overhead of a full step, trivial callbacks (d = 16, AdamW), per pair")
    L.append("")
    L.append("| objective | pairs | step | per pair | allocations per step |")
    L.append("|---|---|---|---|---|")
    for x in (y for y in R["optim"] if y["bench"] == "overhead"):
        L.append("| %s | %d | %s | %.0f ns | %g |" % (x["case"], x["pairs"], fmt_t(x["step_seconds"]),
                                                      x["per_pair_seconds"] * 1e9, x["allocs_per_step"]))
    for x in (y for y in R["optim"] if y["bench"] == "optim" and y["opt"] == "adamw"):
        L.append("")
        L.append("Per parameter (AdamW, d = %g): %.2f ns." % (x["d"], x["seconds"] / x["d"] * 1e9))
    L.append("")
    L.append("`make bench` took %.0f s." % R["elapsed"])
    return "\n".join(L)


def write_doc(table):
    path = os.path.join(ROOT, "docs", "performance.md")
    begin, end = "<!-- bench:begin -->", "<!-- bench:end -->"
    text = open(path).read() if os.path.exists(path) else "# Performance\n\n%s\n%s\n" % (begin, end)
    if begin not in text:
        text += "\n%s\n%s\n" % (begin, end)
    pre, rest = text.split(begin, 1)
    post = rest.split(end, 1)[1]
    open(path, "w").write(pre + begin + "\n" + table + "\n" + end + post)
    print("bench: wrote %s" % path, file=sys.stderr)


if __name__ == "__main__":
    main()

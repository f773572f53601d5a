"""synth_data.py - the shifted-preference benchmark's data for the Python
examples.

load(pairs, ...) returns the training split and one test split per domain as
PrefData (prompt keys, domain ids, chosen/rejected features).  The data come
from the project's generator, examples/drpo-synth (found through $DRPO_SYNTH,
then ../../build/examples/drpo-synth relative to this file, then PATH), which
writes drpo-train's CSV files (prompt, group, chosen_k, rejected_k); a
directory of such files can be given instead (data_dir).  Without the
generator a small self-contained one with the same structure (five domains
that disagree on some feature directions, Bradley-Terry labels) is used, and
a note says so.
"""

import csv
import importlib
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

DOMAINS = ["chat", "code", "math", "safety", "reasoning"]
DIM = 16


class PrefData:
    """Preference pairs: prompt[i] (str), key[i] (uint64 prompt key, filled
    by the caller's binding if wanted), group[i] (domain id), chosen[i] and
    rejected[i] (feature vectors, float32)."""

    def __init__(self, prompt, group, chosen, rejected, name=""):
        self.prompt = list(prompt)
        self.group = np.asarray(group, dtype=np.int32)
        self.chosen = np.ascontiguousarray(chosen, dtype=np.float32)
        self.rejected = np.ascontiguousarray(rejected, dtype=np.float32)
        self.name = name

    def __len__(self):
        return len(self.prompt)

    def head(self, n):
        n = min(n, len(self))
        return PrefData(self.prompt[:n], self.group[:n], self.chosen[:n], self.rejected[:n],
                        self.name)


def read_csv(path, domains=DOMAINS):
    with open(path, newline="") as f:
        rows = csv.reader(f)
        header = [h.strip() for h in next(rows)]
        ip, ig = header.index("prompt"), header.index("group")
        ch = [header.index("chosen_%d" % k) for k in range(DIM)]
        rj = [header.index("rejected_%d" % k) for k in range(DIM)]
        prompt, group, c, r = [], [], [], []
        for row in rows:
            if not row:
                continue
            prompt.append(row[ip])
            group.append(domains.index(row[ig]) if row[ig] else -1)
            c.append([float(row[k]) for k in ch])
            r.append([float(row[k]) for k in rj])
    return PrefData(prompt, group, np.array(c), np.array(r), os.path.basename(path))


def find_generator():
    here = os.path.dirname(os.path.abspath(__file__))
    for cand in (os.environ.get("DRPO_SYNTH"),
                 os.path.join(here, "..", "..", "build", "examples", "drpo-synth"),
                 shutil.which("drpo-synth")):
        if cand and os.path.isfile(cand) and os.access(cand, os.X_OK):
            return os.path.normpath(cand)
    return None


def fallback(pairs, seed, test_pairs):
    """A small generator with the benchmark's structure, for when drpo-synth
    is not available: phi = a_x + c_x * (s_g * z), reward w_g . phi with a
    shared quality part and domain directions that disagree."""
    rng = np.random.default_rng(seed)
    w = np.zeros((5, DIM))
    w[:, 0:4] = [1.0, 0.8, 0.6, 0.5]                     # general quality
    w[:, 4] = [0.8, 0.2, -1.0, -0.6, -1.0]               # length
    w[:, 5] = [0.8, 0.3, -0.8, -1.5, -0.8]               # compliance
    w[:, 6] = [-0.5, -0.3, -0.3, 2.0, -0.3]              # refusal
    w[1, 7:9], w[2, 9:11], w[4, 11:13] = 1.5, 1.5, 1.5   # code, math, reasoning
    w[:, 13] = [0.6, -0.4, 0.5, -0.5, 0.5]
    w[:, 14] = [-0.6, 0.5, -0.5, 0.8, -0.5]
    spread = np.ones((5, DIM))
    spread[2, 9:11] = spread[4, 11:13] = spread[1, 7:9] = 2.0
    mix_train = [0.5, 0.4, 0.04, 0.03, 0.03]

    def split(n, mix, name):
        prompts, groups, c, r = [], [], [], []
        i = 0
        while len(prompts) < n:
            g = rng.choice(5, p=mix)
            a = rng.normal(0, 0.5, DIM)
            cx = np.exp(rng.normal(0, 0.3))
            cand = a + cx * spread[g] * rng.normal(size=(8, DIM))
            rew = cand @ w[g]
            for _ in range(2):
                x, y = rng.choice(8, 2, replace=False)
                if rng.random() >= 1 / (1 + np.exp(rew[y] - rew[x])):
                    x, y = y, x
                prompts.append("%s-%s-%06d" % (name, DOMAINS[g], i))
                groups.append(g)
                c.append(cand[x])
                r.append(cand[y])
            i += 1
        return PrefData(prompts[:n], groups[:n], np.array(c[:n]), np.array(r[:n]), name)

    tests = {}
    for g, d in enumerate(DOMAINS):
        mix = np.zeros(5)
        mix[g] = 1.0
        tests[d] = split(test_pairs, mix, "test-" + d)
    return split(pairs, mix_train, "train"), tests


def load(pairs=20000, seed=20250101, test_pairs=3000, data_dir=None, quiet=False):
    """(train, {domain: test split}); test splits cut to test_pairs."""
    note = (lambda *a: None) if quiet else (lambda *a: print(*a, file=sys.stderr))
    tmp = None
    try:
        if data_dir is None:
            gen = find_generator()
            if gen is None:
                note("synth_data: drpo-synth not found (build it with make); "
                     "using the small built-in generator")
                return fallback(pairs, seed, test_pairs)
            tmp = tempfile.mkdtemp(prefix="drpo-synth-")
            subprocess.run([gen, "--out", tmp, "--seed", str(seed), "--pairs", str(pairs)],
                           check=True, stdout=subprocess.DEVNULL)
            data_dir = tmp
        train = read_csv(os.path.join(data_dir, "train.csv"))
        tests = {d: read_csv(os.path.join(data_dir, "test-%s.csv" % d)).head(test_pairs)
                 for d in DOMAINS}
        return train, tests
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def import_or_skip(name, package):
    """Import a module, or exit 77 (a skipped test for meson) saying which
    Debian package provides it."""
    try:
        return importlib.import_module(name)
    except ImportError:
        print("SKIP: %s is not installed for %s (apt-get install %s)"
              % (name, sys.executable, package))
        sys.exit(77)


def report(results, header, small):
    """Print per-domain test accuracy ({name: {domain: accuracy}}) with the
    mean and the worst domain; return the exit status: 1 if a model is at
    chance or worse in some domain (not checked in a --small run)."""
    print(header)
    print("%-24s" % "test accuracy" + "".join("%10s" % d for d in DOMAINS)
          + "%10s%10s" % ("mean", "worst"))
    ok = True
    for name, acc in results.items():
        v = [acc[d] for d in DOMAINS]
        print("%-24s" % name + "".join("%10.3f" % a for a in v)
              + "%10.3f%10.3f" % (float(np.mean(v)), min(v)))
        ok &= all(0.5 < a <= 1.0 for a in v)
    if not ok and not small:
        print("%s: a model is no better than chance" % os.path.basename(sys.argv[0]),
              file=sys.stderr)
        return 1
    return 0


def parse_args(ap, argv, extra=()):
    """The options the reward-model examples share, plus theirs (extra: a
    list of (flags, keyword arguments)); --small shrinks the run."""
    ap.add_argument("--pairs", type=int, default=20000, help="training pairs")
    ap.add_argument("--test-pairs", type=int, default=3000, help="test pairs per domain")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--data", help="a directory of drpo-synth CSV files")
    ap.add_argument("--small", action="store_true", help="a quick smoke run")
    for flags, kw in extra:
        ap.add_argument(*flags, **kw)
    args = ap.parse_args(argv)
    if args.small:
        args.pairs, args.test_pairs, args.epochs = 2000, 300, 2
    return args

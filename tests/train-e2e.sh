#!/bin/sh
# train-e2e.sh DRPO_TRAIN - drpo-train end to end on small generated files.
#
# Generates a training file with two groups (a majority and a minority whose
# true reward differs) and two test sets (in-distribution, and shifted
# towards the minority), then checks:
#  - a robust run (--set cvar --mode exact) writes a report with the
#    documented fields, per-group accuracy and worst-group accuracy for the
#    shifted set, a metrics file and an SVG;
#  - one test set sits under "test", several under "tests";
#  - the same seed gives the same report (but for the times) and the same
#    metrics bytes; resuming from a checkpoint gives the straight run's result;
#  - bad input exits non-zero with a file:line:col message and leaves no
#    output (and no temporary file) behind, nor clobbers an older output;
#  - usage errors exit 2; --help and --version exit 0.
set -eu

TRAIN=${1:?usage: train-e2e.sh path/to/drpo-train}
case $TRAIN in /*) ;; *) TRAIN=$PWD/$TRAIN ;; esac
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)

dir=$(mktemp -d "${TMPDIR:-/tmp}/drpo-train-e2e.XXXXXX")
trap 'rm -rf "$dir"' EXIT
cd "$dir"

fail() {
    echo "train-e2e: FAIL: $*" >&2
    exit 1
}

# ---- data: d = 4; the minority's reward weighs the features differently ------
"$PY" - <<'EOF'
import random

W = {"major": [2.0, 1.0, 0.0, 0.5], "minor": [1.0, -1.5, 1.5, 0.0]}

def q(s):
    return '"' + s.replace('"', '""') + '"'

def gen(path, prompts, minor_share, seed):
    r = random.Random(seed)
    with open(path, "w") as f:
        # columns in a mixed order, with an extra column
        f.write("rejected_0,prompt,chosen_0,chosen_1,group,rejected_1,note,"
                "chosen_2,rejected_2,chosen_3,rejected_3\n")
        for p in range(prompts):
            g = "minor" if r.random() < minor_share else "major"
            text = f'prompt {p}, "{g}"'          # commas and quotes in the text
            for _ in range(r.randint(1, 3)):
                a = [r.gauss(0, 1) for _ in range(4)]
                b = [r.gauss(0, 1) for _ in range(4)]
                s = sum((x - y) * w for x, y, w in zip(a, b, W[g]))
                if r.random() > 1 / (1 + 2.718281828 ** (-2 * s)):   # Bradley-Terry label
                    a, b = b, a
                f.write(",".join([f"{b[0]:.5f}", q(text), f"{a[0]:.5f}", f"{a[1]:.5f}", g,
                                  f"{b[1]:.5f}", "x", f"{a[2]:.5f}", f"{b[2]:.5f}",
                                  f"{a[3]:.5f}", f"{b[3]:.5f}"]) + "\n")

gen("train.csv", 240, 0.15, 1)
gen("iid.csv", 120, 0.15, 2)
gen("shifted.csv", 120, 0.8, 3)
EOF

common="--train train.csv --set cvar --level 0.3 --mode exact --epochs 6 --batch 16 --lr 0.2 --quiet"

# ---- a robust run with two test sets -------------------------------------------
"$TRAIN" $common --test iid.csv,shifted.csv --seed 7 \
    --report r1.json --metrics m1.csv --plot p1.svg --save ck.bin >out1.txt 2>err1.txt ||
    fail "robust run exited $? ($(cat err1.txt))"
[ ! -s out1.txt ] || fail "--quiet printed: $(cat out1.txt)"
for f in r1.json m1.csv p1.svg ck.bin; do [ -s "$f" ] || fail "$f not written"; done

"$PY" - <<'EOF' || fail "report r1.json"
import json, math
r = json.load(open("r1.json"))
assert r["config"]["set"] == "cvar" and r["config"]["mode"] == "exact", r["config"]
assert r["config"]["level"] == 0.3 and r["config"]["seed"] == 7
assert "test" not in r and set(r["tests"]) == {"iid", "shifted"}, list(r)
tr = r["train"]
n = sum(1 for _ in open("train.csv")) - 1
assert tr["pairs"] == n and tr["prompts"] == 240, tr
assert r["steps"] == 6 * math.ceil(n / 16), r["steps"]
# the robust objective (CVaR over prompts) is no less than the mean loss
assert tr["robust_objective"] >= tr["mean_loss"] > 0, tr
assert isinstance(r["seconds"], float) and len(r["theta"]) == r["dim"] == 4
assert 0.0 <= r["train_seconds"] <= r["seconds"]
for name, t in r["tests"].items():
    rows = sum(1 for _ in open(name + ".csv")) - 1
    assert t["pairs"] == rows, (name, t["pairs"], rows)
    assert 0.5 < t["accuracy"] <= 1, t
    g = t["groups"]
    assert set(g) == {"major", "minor"}, g
    assert sum(v["pairs"] for v in g.values()) == t["pairs"]
    assert all(0 <= v["accuracy"] <= 1 for v in g.values())
    assert t["worst_group_accuracy"] == min(v["accuracy"] for v in g.values()), t
    assert t["worst_group"] in g
    correct = sum(v["accuracy"] * v["pairs"] for v in g.values())
    assert abs(correct / t["pairs"] - t["accuracy"]) < 1e-9
s = r["tests"]["shifted"]
assert s["groups"]["minor"]["pairs"] > s["groups"]["major"]["pairs"], s
EOF

head -1 m1.csv | grep -qx 'step,epoch,robust,mean,eta,lambda,ess,grad_norm,lr' ||
    fail "metrics header: $(head -1 m1.csv)"
steps=$("$PY" -c 'import json; print(json.load(open("r1.json"))["steps"])')
[ "$(($(wc -l <m1.csv) - 1))" -eq "$steps" ] || fail "metrics rows != steps"
grep -q '<svg' p1.svg && grep -q '</svg>' p1.svg || fail "p1.svg is not an SVG document"
for word in robust mean eta major minor shifted; do
    grep -q ">$word<" p1.svg || fail "the plot has no label '$word'"
done

# ---- one test set: under "test" ------------------------------------------------
"$TRAIN" $common --test shifted.csv --report r1b.json || fail "single test set run"
"$PY" -c '
import json; r = json.load(open("r1b.json"))
assert "tests" not in r and r["test"]["worst_group_accuracy"] is not None
assert set(r["test"]["groups"]) == {"major", "minor"}' || fail "single-test report layout"

# ---- determinism: same seed, same report and metrics; resume = straight run ------
"$TRAIN" $common --test iid.csv --test shifted.csv --seed 7 --report r2.json --metrics m2.csv ||
    fail "second run"
cmp -s m1.csv m2.csv || fail "same seed, different metrics"
"$TRAIN" $common --test iid.csv,shifted.csv --seed 8 --metrics m3.csv || fail "seed 8 run"
cmp -s m1.csv m3.csv && fail "another seed gave the same metrics"
"$TRAIN" $common --test iid.csv,shifted.csv --seed 7 --epochs 2 --save half.bin || fail "2 epochs"
"$TRAIN" $common --test iid.csv,shifted.csv --seed 7 --resume half.bin --report r4.json ||
    fail "resume"
"$PY" - <<'EOF' || fail "reports differ"
import json
a, b, c = (json.load(open(f)) for f in ("r1.json", "r2.json", "r4.json"))
for r in (a, b, c):
    del r["seconds"]
    del r["train_seconds"]
assert a == b, "same seed, different reports"
assert c["theta"] == a["theta"] and c["tests"] == a["tests"] and c["train"] == a["train"], \
    "resumed run differs from the straight run"
assert c["steps_this_run"] == c["steps"] - 2 * (c["steps"] // 6)
EOF

# ---- bad input: message with file:line:col, non-zero exit, no output ------------
cp shifted.csv bad.csv
"$PY" - <<'EOF'
lines = open("bad.csv").read().split("\n")
cells = lines[3].split(",")
cells[4] = "abc"  # line 4, column 4 is chosen_1 (the prompt holds one comma)
lines[3] = ",".join(cells)
open("bad.csv", "w").write("\n".join(lines))
EOF
cp r1.json keep.json
if "$TRAIN" $common --test iid.csv,bad.csv --report r1.json --metrics bad-m.csv \
    --plot bad.svg --save bad.bin 2>err.txt; then
    fail "a non-numeric cell was accepted"
fi
grep -q '^bad.csv:4:4: non-numeric value "abc" in column chosen_1$' err.txt ||
    fail "message: $(cat err.txt)"
cmp -s r1.json keep.json || fail "a failed run changed an existing report"
for f in bad-m.csv bad.svg bad.bin; do [ ! -e "$f" ] || fail "$f left behind"; done
ls | grep -q 'XXXXXX\|\.json\.\|\.csv\.\|\.svg\.' && fail "temporary files left: $(ls)"

printf 'prompt,chosen_0,rejected_0\np,1,2\n' >narrow.csv
if "$TRAIN" $common --test narrow.csv --report n.json 2>err.txt; then fail "d mismatch accepted"; fi
grep -q '^narrow.csv:1:2: 1 features (chosen_0..chosen_0) but train.csv has 4$' err.txt ||
    fail "mismatch message: $(cat err.txt)"
[ ! -e n.json ] || fail "n.json left behind"

: >empty.csv
if "$TRAIN" --train empty.csv --quiet 2>err.txt; then fail "empty file accepted"; fi
grep -q '^empty.csv:1:1: empty file' err.txt || fail "empty message: $(cat err.txt)"

# ---- usage -------------------------------------------------------------------------
"$TRAIN" --help | grep -q -- '--radius R' || fail "--help"
"$TRAIN" --version | grep -q 'libdrpo' || fail "--version"
set +e
"$TRAIN" --train train.csv --frobnicate 2>/dev/null; [ $? -eq 2 ] || fail "unknown option"
"$TRAIN" --train train.csv --set kl 2>/dev/null; [ $? -eq 2 ] || fail "kl without radius"
"$TRAIN" --train train.csv --set cvar --level 0.2 --radius 1 2>/dev/null
[ $? -eq 2 ] || fail "two set parameters"
set -e

echo "train-e2e: ok"

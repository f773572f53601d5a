"""Tests of the ctypes binding examples/python/drpo.py (unittest; run with
/usr/bin/python3, which has Debian's numpy).  meson sets DRPO_LIBRARY to the
built library and DRPO_TEST_DATA_DIR to tests/data."""

import gc
import math
import os
import sys
import tempfile
import threading
import unittest
import weakref

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "examples", "python"))

try:
    import numpy as np
except ImportError:  # meson reads 77 as "skipped"
    print("SKIP: numpy is not installed for %s (apt-get install python3-numpy)" % sys.executable)
    sys.exit(77)

import drpo  # noqa: E402

DATA = os.environ.get("DRPO_TEST_DATA_DIR", os.path.join(ROOT, "tests", "data"))


def load_cases():
    cases = []
    with open(os.path.join(DATA, "dro-cases.txt")) as f:
        lines = [l.split() for l in f if l.strip() and not l.startswith("#")]
    for i in range(0, len(lines), 4):
        head = dict(kv.split("=") for kv in lines[i][2:])
        rows = [np.array([float(x) for x in lines[i + k][1:]]) for k in (1, 2, 3)]
        cases.append(dict(id=int(lines[i][1]), set=head["set"], form=head["form"],
                          param=float(head["param"]), value=float(head["value"]),
                          p=rows[0], loss=rows[1], q=rows[2]))
    return cases


def divergence(kind, q, p):
    s = p > 0
    if kind == "kl":
        m = q[s] > 0
        return float(np.sum(q[s][m] * np.log(q[s][m] / p[s][m])))
    if kind == "chi2":
        return float(0.5 * np.sum(p[s] * (q[s] / p[s] - 1.0) ** 2))
    if kind == "tv":
        return float(0.5 * np.sum(np.abs(q - p)))
    if kind == "cvar":
        return float(np.max(q[s] / p[s]))
    return 0.0


def value_tol(value, loss):
    return 1e-8 * max(1.0, abs(value), float(np.max(np.abs(loss))))


class LinearBT:
    """A Bradley-Terry linear reward model in numpy, for Model callbacks."""

    def __init__(self, diff):
        self.diff = diff.astype(np.float64)
        self.calls = 0
        self.fail_forward = None   # an exception to raise on the next forward
        self.fail_backward = None
        self.seen_params = None

    def forward(self, params, batch):
        self.calls += 1
        self.seen_params = params
        if self.fail_forward is not None:
            e, self.fail_forward = self.fail_forward, None
            raise e
        x = self.diff[batch.host_indices()]
        m = x @ params.astype(np.float64)
        return np.logaddexp(0.0, -m)

    def backward(self, params, batch, w):
        if self.fail_backward is not None:
            e, self.fail_backward = self.fail_backward, None
            raise e
        x = self.diff[batch.host_indices()]
        m = x @ params.astype(np.float64)
        d = -1.0 / (1.0 + np.exp(m))          # d loss / d margin
        return (w * d) @ x


def make_data(n=24, dim=5, prompts=6, seed=1):
    rng = np.random.default_rng(seed)
    diff = rng.normal(size=(n, dim)).astype(np.float32)
    keys = ["prompt-%d" % (j % prompts) for j in range(n)]
    groups = [j % 3 for j in range(n)]
    return diff, keys, groups


class TestLibrary(unittest.TestCase):
    def test_version_and_path(self):
        self.assertEqual(drpo.version_number() // 10000, drpo.BINDING_MAJOR)
        self.assertRegex(drpo.version(), r"^\d+\.\d+\.\d+")
        if "DRPO_LIBRARY" in os.environ:
            self.assertEqual(drpo.LIBRARY_PATH, os.environ["DRPO_LIBRARY"])


class TestSolve(unittest.TestCase):
    def test_reference_cases_every_set(self):
        cases = load_cases()
        self.assertGreater(len(cases), 600)
        seen = set()
        for c in cases:
            kw = {c["form"]: c["param"]}
            with drpo.Objective(c["set"], **kw) as obj:
                q, v = obj.solve(c["loss"], c["p"])
                self.assertLessEqual(abs(v - c["value"]), value_tol(c["value"], c["loss"]),
                                     "case %d (%s %s)" % (c["id"], c["set"], c["form"]))
                self.assertTrue(np.all(q >= 0))
                self.assertAlmostEqual(float(q.sum()), 1.0, delta=1e-9)
                self.assertEqual(obj.diag("value"), v)
                # q attains the value (penalty form: minus the penalty)
                att = float(q @ c["loss"])
                if c["form"] == "penalty":
                    att -= c["param"] * divergence(c["set"], q, c["p"])
                self.assertLessEqual(abs(att - v), value_tol(v, c["loss"]) * 10,
                                     "case %d" % c["id"])
            seen.add((c["set"], c["form"]))
        self.assertEqual(len(seen), 7)

    def test_closed_forms(self):
        rng = np.random.default_rng(3)
        loss = rng.normal(size=50)
        p = rng.random(50)
        p /= p.sum()
        # KL penalty: q ~ p exp(l / lambda), value = lambda log sum p exp(l / lambda)
        lam = 0.7
        q, v = drpo.Objective("kl", penalty=lam).solve(loss, p)
        ref = p * np.exp(loss / lam)
        self.assertTrue(np.allclose(q, ref / ref.sum(), rtol=1e-9, atol=1e-15))
        self.assertAlmostEqual(v, lam * math.log(ref.sum()), delta=1e-9)
        # CVaR at level 0.2, uniform base: mean of the top 20%
        q, v = drpo.Objective("cvar", level=0.2).solve(loss)
        self.assertAlmostEqual(v, float(np.mean(np.sort(loss)[-10:])), delta=1e-12)
        # none: the mean; a list input works too
        q, v = drpo.Objective("none").solve(list(loss), p)
        self.assertAlmostEqual(v, float(p @ loss), delta=1e-12)
        self.assertTrue(np.allclose(q, p, rtol=1e-12))

    def test_diag_names(self):
        obj = drpo.Objective("chi2", radius=0.5)
        with self.assertRaises(drpo.DrpoNoSolutionError):
            obj.diag("ess")
        obj.solve([1.0, 2.0, 3.0, 10.0])
        for name in ("value", "mean", "eta", "lambda", "divergence", "ess", "ess_fraction",
                     "max_weight", "support", "iterations", "tight", "degenerate"):
            self.assertTrue(math.isfinite(obj.diag(name)), name)
        self.assertAlmostEqual(obj.diag("divergence"), 0.5, delta=1e-9)
        self.assertEqual(obj.diag("mean"), 4.0)
        self.assertEqual(obj.get("radius"), 0.5)
        with self.assertRaises(ValueError):
            obj.diag("nope")

    def test_modes_and_params(self):
        obj = drpo.Objective("kl", radius=0.1, mode="stochastic", dual_lr=0.05, groups=3)
        self.assertEqual(obj.get("mode"), 1)
        self.assertEqual(obj.get("dual_lr"), 0.05)
        self.assertEqual(obj.get("groups"), 3)
        self.assertEqual(obj.set_kind, 1)
        obj.set("penalty", 2.0)  # clears the radius
        with self.assertRaises(drpo.DrpoParamUnsetError):
            obj.get("radius")


class TestErrors(unittest.TestCase):
    def test_messages(self):
        with self.assertRaises(drpo.DrpoParamRangeError) as cm:
            drpo.Objective("cvar", level=1.5)
        e = cm.exception
        self.assertEqual(e.status, -6)
        self.assertIsInstance(e, ValueError)
        self.assertEqual(e.status_string, drpo._status_string(-6))
        self.assertIn("level", e.message)
        self.assertIn("DRPO_ERR_PARAM_RANGE", str(e))

        obj = drpo.Objective("kl", radius=0.1)
        with self.assertRaises(drpo.DrpoLossNonFiniteError) as cm:
            obj.solve([1.0, float("nan")])
        self.assertIn("nan", cm.exception.message)
        with self.assertRaises(drpo.DrpoBaseSumError):
            obj.solve([1.0, 2.0], [0.3, 0.3])
        with self.assertRaises(drpo.DrpoBaseNegativeError):
            obj.solve([1.0, 2.0], [1.5, -0.5])
        with self.assertRaises(drpo.DrpoSizeError):
            obj.solve([])
        with self.assertRaises(ValueError):
            obj.solve([1.0, 2.0], [1.0])  # checked in Python: sizes differ
        with self.assertRaises(drpo.DrpoParamUnsetError) as cm:
            drpo.Objective("kl").solve([1.0])
        self.assertTrue(cm.exception.message)
        with self.assertRaises(drpo.DrpoKeyError):
            drpo.Objective("cvar").set("radius", 0.1)
        with self.assertRaises(ValueError):
            drpo.Objective("wasserstein")
        with self.assertRaises(drpo.DrpoSetError):
            drpo.Objective(99)

    def test_trainer_errors(self):
        obj = drpo.Objective("kl", radius=0.1)
        t = drpo.Trainer(None, obj)
        b = drpo.Batch(["a", "b"])
        with self.assertRaises(drpo.DrpoStateError) as cm:
            t.step(b)
        self.assertIn("no model", cm.exception.message)
        with self.assertRaises(drpo.DrpoStateError) as cm:
            t.commit()
        self.assertIn("commit", cm.exception.message)
        with self.assertRaises(drpo.DrpoParamRangeError):
            t.set("lr", -1.0)
        with self.assertRaises(drpo.DrpoNonFiniteError) as cm:
            t.weights(b, [1.0, float("inf")])
        self.assertIn("pair 1", cm.exception.message)
        with self.assertRaises(drpo.DrpoSizeError):
            t.weights(drpo.Batch(), [])
        with self.assertRaises(drpo.DrpoIOError) as cm:
            t.load("/nonexistent/dir/ckpt")
        self.assertTrue(cm.exception.message)


class TestBatch(unittest.TestCase):
    def test_batch(self):
        b = drpo.Batch()
        b.add("x", 0).add(b"x", 1).add("y", host_index=10).add_key(12345, 2)
        self.assertEqual(len(b), 4)
        self.assertEqual(b.units, 3)
        self.assertEqual(list(b.host_indices()), [0, 1, 10, 3])
        self.assertEqual(list(b.groups()), [0, 1, -1, 2])
        self.assertEqual(b.key(0), drpo.prompt_key("x"))
        self.assertEqual(b.key(0), b.key(1))
        self.assertEqual(b.key(3), 12345)
        self.assertEqual(b.unit_of(0), b.unit_of(1))
        self.assertEqual(list(b.keys())[3], 12345)
        self.assertEqual(b.host_index(2), 10)
        b.clear()
        self.assertEqual((len(b), b.units), (0, 0))
        with self.assertRaises(drpo.DrpoParamRangeError):
            b.add("z", group=-2)
        self.assertEqual(len(b), 0)
        self.assertEqual(drpo.prompt_key("é"), drpo.prompt_key("é".encode()))


class TestZeroCopy(unittest.TestCase):
    def test_arrays_passed_without_copy(self):
        a = np.arange(5, dtype=np.float64)
        self.assertIs(drpo._array(a, np.float64, "a"), a)
        f = a.astype(np.float32)
        self.assertIsNot(drpo._array(f, np.float64, "f"), f)
        strided = np.arange(10, dtype=np.float64)[::2]
        c = drpo._array(strided, np.float64, "s")
        self.assertTrue(c.flags.c_contiguous)
        self.assertFalse(np.shares_memory(c, strided))
        obj = drpo.Objective("kl", radius=0.2)
        out = np.empty(5)
        w, _ = obj.solve(a, out=out)
        self.assertIs(w, out)
        with self.assertRaises(ValueError):
            obj.solve(a, out=np.empty(5, dtype=np.float32))

    def test_params_view(self):
        diff, keys, _ = make_data()
        lin = LinearBT(diff)
        model = drpo.Model(diff.shape[1], lin.forward, lin.backward)
        p = model.params
        self.assertEqual(p.dtype, np.float32)
        self.assertTrue(np.all(p == 0))
        p[:] = 0.5                     # writes the library's parameters
        self.assertTrue(np.all(model.params == 0.5))
        t = drpo.Trainer(model, drpo.Objective("kl", radius=0.1), lr=0.1)
        b = drpo.Batch(keys)
        t.step(b)
        # the callback saw the library's vector itself, not a copy
        self.assertTrue(np.shares_memory(lin.seen_params, p))
        self.assertTrue(np.shares_memory(t.params, p))
        self.assertFalse(lin.seen_params.flags.writeable)
        self.assertFalse(np.all(p == 0.5))   # the step moved the view's memory

        # a view keeps its model alive
        wr = weakref.ref(model)
        del model, t
        gc.collect()
        self.assertIsNotNone(wr())
        del p
        gc.collect()
        self.assertIsNone(wr())


class TestCallbacks(unittest.TestCase):
    def setUp(self):
        self.diff, self.keys, self.groups = make_data()
        self.lin = LinearBT(self.diff)
        self.model = drpo.Model(self.diff.shape[1], self.lin.forward, self.lin.backward)
        self.model.params = np.linspace(-0.2, 0.2, self.diff.shape[1])
        self.obj = drpo.Objective("chi2", radius=0.5, mode="stochastic", groups=3)
        self.t = drpo.Trainer(self.model, self.obj, optimizer="adamw", lr=0.05)
        self.b = drpo.Batch(self.keys, self.groups)
        self.t.step(self.b)

    def state(self):
        return (self.model.params.copy(), self.t.diag("steps"), self.t.diag("eta"),
                self.t.diag("lambda"))

    def assert_same_state(self, before):
        after = self.state()
        self.assertTrue(np.array_equal(before[0], after[0]))
        self.assertEqual(before[1:], after[1:])

    def test_forward_exception_surfaces(self):
        before = self.state()
        self.lin.fail_forward = KeyError("missing pair data")
        with self.assertRaises(KeyError) as cm:
            self.t.step(self.b)
        self.assertIsInstance(cm.exception.__cause__, drpo.DrpoCallbackError)
        self.assertIn("forward callback", cm.exception.__cause__.message)
        self.assertEqual(self.t.diag("callback_code"), drpo.CALLBACK_EXCEPTION_CODE)
        self.assert_same_state(before)
        self.t.step(self.b)          # the next step works
        self.assertEqual(self.t.diag("steps"), before[1] + 1)

    def test_backward_exception_surfaces(self):
        before = self.state()

        class Boom(Exception):
            pass

        self.lin.fail_backward = Boom("in backward")
        with self.assertRaises(Boom):
            self.t.step(self.b)
        self.assert_same_state(before)
        # evaluate reports it too, and changes nothing
        self.lin.fail_backward = Boom("in evaluate")
        with self.assertRaises(Boom):
            self.t.evaluate(self.b)
        self.assert_same_state(before)
        self.t.step(self.b)

    def test_base_exception_and_bad_returns(self):
        before = self.state()

        class Interrupt(BaseException):  # like KeyboardInterrupt: caught too
            pass

        self.lin.fail_forward = Interrupt()
        with self.assertRaises(Interrupt):
            self.t.step(self.b)
        self.assert_same_state(before)

        bad = drpo.Model(3, lambda p, b: [1.0], lambda p, b, w: np.zeros(3))
        with drpo.Trainer(bad, drpo.Objective("none")) as t2:
            with self.assertRaises(ValueError) as cm:
                t2.step(drpo.Batch(["a", "b"]))
            self.assertIn("forward's losses", str(cm.exception))
        nan = drpo.Model(3, lambda p, b: [1.0, float("nan")], lambda p, b, w: np.zeros(3))
        with drpo.Trainer(nan, drpo.Objective("none")) as t3:
            with self.assertRaises(drpo.DrpoNonFiniteError) as cm:
                t3.step(drpo.Batch(["a", "b"]))
            self.assertIsNone(cm.exception.__cause__)
        self.t.step(self.b)

    def test_inplace_callbacks(self):
        lin = self.lin

        def fwd(p, b, out):
            out[:] = lin.forward(p, b)

        def bwd(p, b, w, g):
            self.assertTrue(np.all(g == 0))
            g[:] = lin.backward(p, b, w)

        m2 = drpo.Model(self.diff.shape[1], fwd, bwd, inplace=True)
        m3 = drpo.Model(self.diff.shape[1], lin.forward, lin.backward)
        obj = drpo.Objective("kl", radius=0.2)
        t2, t3 = drpo.Trainer(m2, obj, lr=0.1), drpo.Trainer(m3, obj, lr=0.1)
        for _ in range(3):
            t2.step(self.b)
            t3.step(self.b)
        self.assertTrue(np.array_equal(m2.params, m3.params))

    def test_progress_callback(self):
        calls = []
        self.t.set_progress(lambda tr: calls.append(tr.diag("steps")) or len(calls) >= 2)
        self.assertEqual(self.t.test(), drpo.CONTINUE)
        self.assertEqual(self.t.test(), drpo.STOPPED)
        self.t.set_progress(lambda tr: 1 / 0)
        with self.assertRaises(ZeroDivisionError):
            self.t.test()
        self.t.set_progress(None)
        self.assertIn(self.t.test(), (drpo.CONTINUE, drpo.CONVERGED))


class TestTraining(unittest.TestCase):
    def test_python_model_matches_builtin(self):
        diff, keys, groups = make_data(n=40, dim=6, prompts=9)
        lin = LinearBT(diff)
        py = drpo.Model(diff.shape[1], lin.forward, lin.backward)
        builtin = drpo.pairwise_linear(diff, "bt")
        b = drpo.Batch(keys, groups)
        for set_, kw in (("kl", {"radius": 0.2}), ("cvar", {"level": 0.3}),
                         ("tv", {"penalty": 0.5}), ("chi2", {"penalty": 1.0})):
            py.params = 0.0
            builtin.params = 0.0
            obj = drpo.Objective(set_, **kw)
            t1 = drpo.Trainer(py, obj, optimizer="momentum", lr=0.1)
            t2 = drpo.Trainer(builtin, obj, optimizer="momentum", lr=0.1)
            for _ in range(5):
                v1, v2 = t1.step(b), t2.step(b)
                self.assertAlmostEqual(v1, v2, delta=1e-6)
            self.assertTrue(np.allclose(py.params, builtin.params, rtol=1e-4, atol=1e-6), set_)
            e1, e2 = t1.evaluate(b), t2.evaluate(b)
            self.assertAlmostEqual(e1[0], e2[0], delta=1e-6)

    def test_weights_only_path(self):
        diff, keys, groups = make_data(n=30, prompts=7)
        b = drpo.Batch(keys, groups)
        rng = np.random.default_rng(5)
        losses = rng.random(len(b)) * 3
        obj = drpo.Objective("kl", radius=0.3, groups=3)
        t = drpo.Trainer(None, obj)
        w, v = t.weights(b, losses)
        self.assertAlmostEqual(float(w.sum()), 1.0, delta=1e-12)
        self.assertAlmostEqual(float(w @ losses), v, delta=1e-9)
        # the same worst case as solving over units directly
        units = b.unit_ids()
        U = b.units
        ul = np.bincount(units, losses, U) / np.bincount(units, minlength=U)
        base = np.bincount(units, minlength=U) / len(b)
        q, v2 = drpo.Objective("kl", radius=0.3).solve(ul, base)
        self.assertAlmostEqual(v, v2, delta=1e-12)
        self.assertTrue(np.allclose(w, q[units] / np.bincount(units)[units], atol=1e-15))
        with self.assertRaises(drpo.DrpoNoSolutionError):
            t.diag("ess")            # nothing committed yet
        t.commit()
        self.assertEqual(t.diag("steps"), 1)
        self.assertAlmostEqual(t.diag("robust"), v)
        self.assertEqual(t.group_diag(0, "pairs"), 10)
        self.assertAlmostEqual(sum(t.group_diag(g, "weight") for g in range(3)), 1.0, delta=1e-12)

    def test_stochastic_duals_commit(self):
        diff, keys, groups = make_data(n=30, prompts=7)
        b = drpo.Batch(keys, groups)
        losses = np.linspace(0.1, 2.0, len(b))
        t = drpo.Trainer(None, drpo.Objective("cvar", level=0.2, mode="stochastic", dual_lr=0.5))
        t.weights(b, losses)
        t.commit()
        eta1 = t.diag("eta")
        w1, _ = t.weights(b, losses)
        w1b, _ = t.weights(b, losses)      # nothing changed before commit
        self.assertTrue(np.array_equal(w1, w1b))
        t.commit()
        self.assertNotEqual(t.diag("eta"), eta1)

    def test_group_mode(self):
        diff, keys, groups = make_data(n=30, prompts=10)
        b = drpo.Batch(keys, groups)
        losses = np.array([3.0 if g == 2 else 0.5 for g in groups])
        t = drpo.Trainer(None, drpo.Objective("kl", radius=0.5, mode="group", groups=3,
                                              dual_lr=1.0))
        for _ in range(5):
            t.weights(b, losses)
            t.commit()
        gw = [t.group_diag(g, "weight") for g in range(3)]
        self.assertGreater(gw[2], gw[0])
        self.assertAlmostEqual(t.group_diag(2, "mean_loss"), 3.0)

    def test_save_load(self):
        diff, keys, groups = make_data()
        model = drpo.pairwise_linear(diff)
        obj = drpo.Objective("kl", radius=0.1)
        t = drpo.Trainer(model, obj, optimizer="adamw", lr=0.05)
        b = drpo.Batch(keys)
        t.step(b)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "ckpt.drpo")
            t.save(path)
            saved = model.params.copy()
            t.step(b)
            t.load(path)
            self.assertTrue(np.array_equal(model.params, saved))
            with open(path, "r+b") as f:
                f.seek(40)
                byte = f.read(1)
                f.seek(40)
                f.write(bytes([byte[0] ^ 0xFF]))
            with self.assertRaises(drpo.DrpoCorruptError):
                t.load(path)
            other = drpo.Trainer(drpo.pairwise_linear(diff[:, :3]), obj)
            t.save(path)
            with self.assertRaises(drpo.DrpoIncompatibleError):
                other.load(path)

    def test_options(self):
        t = drpo.Trainer(None, drpo.Objective("none"), optimizer="adamw", schedule="cosine",
                         total_steps=100, lr=0.01)
        self.assertEqual(t.get("optimizer"), 2)
        self.assertEqual(t.get("schedule"), 2)
        self.assertEqual(t.get("lr"), 0.01)
        with self.assertRaises(ValueError):
            t.set("optimiser_typo", 1)


class TestBuiltins(unittest.TestCase):
    def test_losses(self):
        m = np.array([-800.0, -2.0, 0.0, 3.0, 800.0])
        loss, d = drpo.loss_from_margins(m, "bt")
        self.assertTrue(np.allclose(loss, np.logaddexp(0, -m)))
        self.assertTrue(np.allclose(d, -1.0 / (1.0 + np.exp(np.clip(m, -700, 700)))))
        loss, _ = drpo.loss_from_margins(m, "hinge", beta=0.5)
        self.assertTrue(np.allclose(loss, np.maximum(0, 1 - 0.5 * m)))
        with self.assertRaises(drpo.DrpoParamRangeError):
            drpo.loss_from_margins(m, "dpo", beta=0.0)
        pc, pr = np.array([-1.0, -2.0]), np.array([-1.5, -1.0])
        rc, rr = np.array([-1.2, -2.0]), np.array([-1.2, -1.1])
        l2, _ = drpo.loss_from_logps(pc, pr, rc, rr, "dpo", beta=0.1)
        margin = (pc - rc) - (pr - rr)
        self.assertTrue(np.allclose(l2, np.logaddexp(0, -0.1 * margin)))

    def test_softmax_policy_and_scores(self):
        rng = np.random.default_rng(2)
        offsets = np.array([0, 3, 7])
        feats = rng.normal(size=(7, 4)).astype(np.float32)
        rewards = rng.normal(size=7)
        pol = drpo.softmax_policy(offsets, feats, rewards, beta=0.1)
        t = drpo.Trainer(pol, drpo.Objective("cvar", level=0.5), lr=0.5)
        b = drpo.Batch().add("p0", host_index=0).add("p1", host_index=1)
        e0 = sum(pol.stats(i)[0] for i in range(2))
        for _ in range(20):
            t.step(b)
        e1 = sum(pol.stats(i)[0] for i in range(2))
        self.assertGreater(e1, e0)
        s = drpo.linear_scores(pol.params, feats)
        self.assertTrue(np.allclose(s, feats.astype(np.float64) @ pol.params, atol=1e-6))


class TestLifetimes(unittest.TestCase):
    def test_gc_frees_handles(self):
        gc.collect()
        base = drpo.live_handles()

        def make(cycle):
            start = drpo.live_handles()
            diff, keys, _ = make_data()
            lin = LinearBT(diff)
            m = drpo.Model(diff.shape[1], lin.forward, lin.backward)
            o = drpo.Objective("kl", radius=0.1)
            t = drpo.Trainer(m, o)
            b = drpo.Batch(keys)
            t.step(b)
            holder = []
            m2 = drpo.Model(2, lambda p, bb: np.zeros(len(bb)) + 0 * len(holder),
                            lambda p, bb, w: np.zeros(2))
            if cycle:  # model -> callback -> closure -> list -> model
                holder.append(m2)
            t2 = drpo.Trainer(m2, o)
            t2.step(b)
            self.assertEqual(drpo.live_handles() - start, 6)

        # without a cycle, reference counting frees everything at once
        for _ in range(20):
            make(False)
            self.assertEqual(drpo.live_handles(), base)
        # a cycle through a callback is freed by the garbage collector
        gc.disable()
        try:
            for _ in range(20):
                make(True)
            self.assertGreater(drpo.live_handles(), base)
        finally:
            gc.enable()
        gc.collect()
        self.assertEqual(drpo.live_handles(), base)

    def test_trainer_keeps_model_and_objective(self):
        gc.collect()
        base = drpo.live_handles("model")
        diff, keys, _ = make_data()
        model = drpo.pairwise_linear(diff)
        obj = drpo.Objective("kl", radius=0.1)
        t = drpo.Trainer(model, obj)
        wm = weakref.ref(model)
        del model
        gc.collect()
        self.assertIsNotNone(wm())      # the trainer holds it
        b = drpo.Batch(keys)
        t.step(b)
        # closing a borrowed handle defers its free to the last borrower
        obj.close()
        self.assertTrue(obj.closed)
        with self.assertRaises(drpo.DrpoClosedError):
            obj.solve([1.0])
        t.step(b)
        self.assertEqual(drpo.live_handles("objective") >= 1, True)
        n_obj = drpo.live_handles("objective")
        t.close()
        self.assertEqual(drpo.live_handles("objective"), n_obj - 1)
        with self.assertRaises(drpo.DrpoClosedError):
            t.step(b)
        del t
        gc.collect()
        self.assertIsNone(wm())
        self.assertEqual(drpo.live_handles("model"), base)

    def test_context_managers(self):
        base = drpo.live_handles()
        with drpo.Objective("cvar", level=0.5) as o, drpo.Batch(["a"]) as b, \
                drpo.Trainer(None, o) as t:
            t.weights(b, [1.0])
            self.assertEqual(drpo.live_handles(), base + 3)
        self.assertEqual(drpo.live_handles(), base)
        self.assertTrue(o.closed and b.closed and t.closed)
        o.close()  # idempotent
        with self.assertRaises(drpo.DrpoClosedError):
            len(b)


class ThreadCollective(drpo.Collective):
    """Ranks as threads of one process: a barrier-based collective (the
    library releases the GIL around its calls, so the ranks run together)."""

    def __init__(self, rank, shared):
        super().__init__(rank, shared["size"])
        self.sh = shared

    def _exchange(self, item):
        sh = self.sh
        sh["slots"][self.rank] = item
        sh["barrier"].wait()
        got = list(sh["slots"])
        sh["barrier"].wait()
        return got

    def allgather_u64(self, value):
        if self.sh.get("fail") == self.rank:
            self.sh["barrier"].abort()
            raise RuntimeError("rank %d: network down" % self.rank)
        return self._exchange(value)

    def allgatherv(self, send, recv, counts):
        got = self._exchange(bytes(send))
        recv[:] = np.frombuffer(b"".join(got), dtype=np.uint8)

    def allreduce_sum(self, values):
        got = self._exchange(values.copy())
        values[:] = np.sum(got, axis=0)


class TestCollective(unittest.TestCase):
    def run_ranks(self, shared, fn):
        out, errs = [None] * shared["size"], [None] * shared["size"]

        def body(r):
            try:
                out[r] = fn(r)
            except BaseException as e:  # noqa: B036
                errs[r] = e

        th = [threading.Thread(target=body, args=(r,)) for r in range(shared["size"])]
        for x in th:
            x.start()
        for x in th:
            x.join(60)
        return out, errs

    def test_two_ranks_match_one(self):
        diff, keys, groups = make_data(n=20, prompts=7)
        rng = np.random.default_rng(9)
        losses = rng.random(20) * 2
        full = drpo.Trainer(None, drpo.Objective("chi2", radius=0.4, groups=3))
        w_full, v_full = full.weights(drpo.Batch(keys, groups), losses)
        halves = [np.arange(0, 11), np.arange(11, 20)]  # prompts span both ranks
        shared = {"size": 2, "slots": [None, None], "barrier": threading.Barrier(2)}

        def rank(r):
            obj = drpo.Objective("chi2", radius=0.4, groups=3)
            obj.set_collective(ThreadCollective(r, shared))
            t = drpo.Trainer(None, obj)
            idx = halves[r]
            b = drpo.Batch([keys[i] for i in idx], [groups[i] for i in idx])
            w, v = t.weights(b, losses[idx])
            t.commit()
            return w, v, t.diag("ess")

        out, errs = self.run_ranks(shared, rank)
        self.assertEqual(errs, [None, None])
        for r in range(2):
            w, v, ess = out[r]
            self.assertAlmostEqual(v, v_full, delta=1e-12)
            self.assertTrue(np.allclose(w, w_full[halves[r]], rtol=1e-12, atol=1e-15))
        self.assertEqual(out[0][2], out[1][2])

    def test_collective_exception_surfaces(self):
        shared = {"size": 2, "slots": [None, None], "barrier": threading.Barrier(2),
                  "fail": 1}

        def rank(r):
            obj = drpo.Objective("kl", radius=0.1)
            obj.set_collective(ThreadCollective(r, shared))
            t = drpo.Trainer(None, obj)
            t.weights(drpo.Batch(["a", "b"]), [1.0, 2.0])

        out, errs = self.run_ranks(shared, rank)
        self.assertIsInstance(errs[1], RuntimeError)
        self.assertIsInstance(errs[1].__cause__, drpo.DrpoCallbackError)
        self.assertIn("allgather_u64", errs[1].__cause__.message)
        self.assertIsInstance(errs[0], threading.BrokenBarrierError)


if __name__ == "__main__":
    unittest.main(verbosity=2)

"""drpo.py - a ctypes binding of libdrpo (no compiled extension).

Copy this one file next to your program; it needs numpy and libdrpo.so.

Finding the library, in this order:
  1. the environment variable DRPO_LIBRARY (a path to libdrpo.so*);
  2. the build tree this file sits in: ../../build/libdrpo.so relative to it;
  3. the system: ctypes.util.find_library('drpo'), then 'libdrpo.so.0'.
The runtime version is checked on import: its major version must be the one
this binding was written for, and it must be at least 0.1.0.

Errors: every negative drpo_status raises a DrpoError subclass (DrpoSizeError,
DrpoParamRangeError, ...) carrying .status (the code), .status_string
(drpo_status_string) and .message (the handle's last error message, or the
status string where the call has no handle with a message).

Arrays and copies: the library reads float64 (losses, weights, base
distributions, margins) and float32 (parameters, features) arrays.  An
argument that already is a C-contiguous numpy array of the right dtype is
passed by pointer, without a copy; anything else (lists, float32 losses,
strided views, torch CPU tensors) goes through np.ascontiguousarray, which
copies only when it must.  Outputs are new arrays unless you pass `out=` (a
C-contiguous array of the right dtype and size, written in place).
Model.params is a float32 numpy view of the library's own parameter vector:
writing it writes the model, and it keeps the model alive.

Lifetimes: every handle is freed by close(), by leaving a `with` block, or
when it is garbage collected (weakref.finalize), whichever comes first.  A
Trainer borrows its Model and Objective: it keeps references to them, and a
Model or Objective closed while a trainer still uses it is freed only when
the last such trainer is freed.  Arrays a built-in model borrows (features,
offsets, rewards) are kept referenced by the model.

Callbacks (model forward/backward, progress, collectives) run on the thread
that called into the library, under the GIL.  A Python exception raised in a
callback is caught in the ctypes trampoline (it never crosses into C), the
library sees a non-zero return (CALLBACK_EXCEPTION_CODE), the call fails with
DRPO_ERR_CALLBACK leaving parameters and duals unchanged, and the binding then
re-raises the original exception, chained from the DrpoCallbackError that
carries the library's message.  Use one handle per thread.
"""

import ctypes
import ctypes.util
import os
import weakref

import numpy as np

__all__ = [
    "DrpoError", "Objective", "Batch", "Model", "Trainer", "Collective",
    "pairwise_linear", "softmax_policy", "linear_scores", "loss_from_margins",
    "loss_from_logps", "prompt_key", "version", "version_number", "live_handles",
]

BINDING_MAJOR = 0
MIN_VERSION_NUMBER = 100  # 0.1.0

# ---- statuses and exceptions ----------------------------------------------

OK, CONTINUE, CONVERGED, STOPPED = 0, 1, 2, 3
CALLBACK_EXCEPTION_CODE = 0x7079  # what a trampoline returns when Python raised

STATUS_NAMES = {
    0: "DRPO_OK", 1: "DRPO_CONTINUE", 2: "DRPO_CONVERGED", 3: "DRPO_STOPPED",
    -1: "DRPO_ERR_NULL", -2: "DRPO_ERR_SIZE", -3: "DRPO_ERR_LOSS_NONFINITE",
    -4: "DRPO_ERR_BASE_NEGATIVE", -5: "DRPO_ERR_BASE_SUM", -6: "DRPO_ERR_PARAM_RANGE",
    -7: "DRPO_ERR_PARAM_UNSET", -8: "DRPO_ERR_KEY", -9: "DRPO_ERR_SET",
    -10: "DRPO_ERR_NOMEM", -11: "DRPO_ERR_NO_SOLUTION", -12: "DRPO_ERR_UNAVAILABLE",
    -13: "DRPO_ERR_NUMERICAL", -14: "DRPO_ERR_CALLBACK", -15: "DRPO_ERR_NONFINITE",
    -16: "DRPO_ERR_STATE", -17: "DRPO_ERR_IO", -18: "DRPO_ERR_CORRUPT",
    -19: "DRPO_ERR_INCOMPATIBLE",
}


class DrpoError(Exception):
    """A libdrpo call failed.  .status: the drpo_status code; .status_string:
    drpo_status_string(status); .message: the handle's last error message."""

    def __init__(self, status, message=None, status_string=None):
        self.status = int(status)
        self.status_string = status_string if status_string is not None else _status_string(status)
        self.message = message or self.status_string
        self.name = STATUS_NAMES.get(self.status, "status %d" % self.status)
        super().__init__("%s (%s, %d)" % (self.message, self.name, self.status))


class DrpoClosedError(DrpoError, ValueError):
    """A handle was used after close()."""

    def __init__(self, what):
        super().__init__(DRPO_ERR_STATE, "%s is closed" % what, "closed handle")


class DrpoNullError(DrpoError, ValueError): pass
class DrpoSizeError(DrpoError, ValueError): pass
class DrpoLossNonFiniteError(DrpoError, ValueError): pass
class DrpoBaseNegativeError(DrpoError, ValueError): pass
class DrpoBaseSumError(DrpoError, ValueError): pass
class DrpoParamRangeError(DrpoError, ValueError): pass
class DrpoParamUnsetError(DrpoError): pass
class DrpoKeyError(DrpoError, ValueError): pass
class DrpoSetError(DrpoError, ValueError): pass
class DrpoNoMemError(DrpoError, MemoryError): pass
class DrpoNoSolutionError(DrpoError): pass
class DrpoUnavailableError(DrpoError): pass
class DrpoNumericalError(DrpoError, ArithmeticError): pass
class DrpoCallbackError(DrpoError): pass
class DrpoNonFiniteError(DrpoError, ArithmeticError): pass
class DrpoStateError(DrpoError): pass
class DrpoIOError(DrpoError): pass
class DrpoCorruptError(DrpoError): pass
class DrpoIncompatibleError(DrpoError): pass


DRPO_ERR_STATE = -16
DRPO_ERR_CALLBACK = -14

_ERRORS = {
    -1: DrpoNullError, -2: DrpoSizeError, -3: DrpoLossNonFiniteError,
    -4: DrpoBaseNegativeError, -5: DrpoBaseSumError, -6: DrpoParamRangeError,
    -7: DrpoParamUnsetError, -8: DrpoKeyError, -9: DrpoSetError, -10: DrpoNoMemError,
    -11: DrpoNoSolutionError, -12: DrpoUnavailableError, -13: DrpoNumericalError,
    -14: DrpoCallbackError, -15: DrpoNonFiniteError, -16: DrpoStateError,
    -17: DrpoIOError, -18: DrpoCorruptError, -19: DrpoIncompatibleError,
}

# ---- loading the library ----------------------------------------------------


def _candidates():
    env = os.environ.get("DRPO_LIBRARY")
    if env:
        return [env], True
    here = os.path.dirname(os.path.abspath(__file__))
    out = [os.path.normpath(os.path.join(here, "..", "..", "build", "libdrpo.so"))]
    found = ctypes.util.find_library("drpo")
    if found:
        out.append(found)
    out.append("libdrpo.so.0")
    return out, False


def _load():
    names, from_env = _candidates()
    errors = []
    for name in names:
        if os.sep in name and not os.path.exists(name):
            errors.append("%s: no such file" % name)
            if from_env:
                break
            continue
        try:
            return ctypes.CDLL(name)
        except OSError as e:
            errors.append("%s: %s" % (name, e))
            if from_env:
                break
    raise ImportError("drpo: cannot load libdrpo (set DRPO_LIBRARY to its path): "
                      + "; ".join(errors))


_lib = _load()

_c = ctypes
_vp = _c.c_void_p
_sz = _c.c_size_t
_i32 = _c.c_int32
_i64 = _c.c_int64
_u64 = _c.c_uint64
_dbl = _c.c_double
_st = _c.c_int32

_PROTOS = {
    "drpo_version_number": (_c.c_uint32, []),
    "drpo_version_string": (_c.c_char_p, []),
    "drpo_status_string": (_c.c_char_p, [_st]),
    # objective
    "drpo_objective_create": (_st, [_c.POINTER(_vp), _i32]),
    "drpo_objective_set": (_st, [_vp, _i32, _dbl]),
    "drpo_objective_get": (_st, [_vp, _i32, _c.POINTER(_dbl)]),
    "drpo_objective_solve": (_st, [_vp, _sz, _vp, _vp, _vp, _c.POINTER(_dbl)]),
    "drpo_objective_diag": (_st, [_vp, _i32, _c.POINTER(_dbl)]),
    "drpo_objective_set_kind": (_i32, [_vp]),
    "drpo_objective_last_error": (_c.c_char_p, [_vp]),
    "drpo_objective_free": (None, [_vp]),
    "drpo_objective_set_collective": (_st, [_vp, _vp, _vp]),
    # batch
    "drpo_batch_create": (_st, [_c.POINTER(_vp)]),
    "drpo_batch_add": (_st, [_vp, _c.c_char_p, _sz, _i32, _i64]),
    "drpo_batch_add_key": (_st, [_vp, _u64, _i32, _i64]),
    "drpo_prompt_key": (_u64, [_c.c_char_p, _sz]),
    "drpo_batch_size": (_sz, [_vp]),
    "drpo_batch_units": (_sz, [_vp]),
    "drpo_batch_host_index": (_i64, [_vp, _sz]),
    "drpo_batch_group": (_i32, [_vp, _sz]),
    "drpo_batch_key": (_u64, [_vp, _sz]),
    "drpo_batch_unit_of": (_sz, [_vp, _sz]),
    "drpo_batch_clear": (None, [_vp]),
    "drpo_batch_free": (None, [_vp]),
    # models
    "drpo_model_create": (_st, [_c.POINTER(_vp), _sz, _vp, _vp]),
    "drpo_model_params": (_vp, [_vp]),
    "drpo_model_n_params": (_sz, [_vp]),
    "drpo_model_free": (None, [_vp]),
    "drpo_pairwise_linear_create": (_st, [_c.POINTER(_vp), _sz, _sz, _vp, _i32, _dbl, _dbl, _vp]),
    "drpo_softmax_policy_create": (_st, [_c.POINTER(_vp), _sz, _sz, _vp, _vp, _vp, _vp, _dbl]),
    "drpo_softmax_policy_stats": (_st, [_vp, _sz, _vp, _c.POINTER(_dbl), _c.POINTER(_dbl)]),
    "drpo_linear_scores": (_st, [_vp, _sz, _sz, _vp, _vp]),
    # trainer
    "drpo_trainer_create": (_st, [_c.POINTER(_vp), _vp, _vp]),
    "drpo_trainer_set": (_st, [_vp, _i32, _dbl]),
    "drpo_trainer_get": (_st, [_vp, _i32, _c.POINTER(_dbl)]),
    "drpo_trainer_step": (_st, [_vp, _vp]),
    "drpo_trainer_weights": (_st, [_vp, _vp, _vp, _vp, _c.POINTER(_dbl)]),
    "drpo_trainer_commit": (_st, [_vp]),
    "drpo_trainer_test": (_st, [_vp]),
    "drpo_trainer_set_progress": (_st, [_vp, _vp, _vp]),
    "drpo_trainer_diag": (_st, [_vp, _i32, _c.POINTER(_dbl)]),
    "drpo_trainer_group_diag": (_st, [_vp, _i32, _i32, _c.POINTER(_dbl)]),
    "drpo_trainer_evaluate": (_st, [_vp, _vp, _c.POINTER(_dbl), _c.POINTER(_dbl)]),
    "drpo_trainer_save": (_st, [_vp, _c.c_char_p]),
    "drpo_trainer_load": (_st, [_vp, _c.c_char_p]),
    "drpo_trainer_last_error": (_c.c_char_p, [_vp]),
    "drpo_trainer_free": (None, [_vp]),
    # losses
    "drpo_loss_from_margins": (_st, [_i32, _sz, _vp, _dbl, _dbl, _vp, _vp]),
    "drpo_loss_from_logps": (_st, [_i32, _sz, _vp, _vp, _vp, _vp, _dbl, _dbl, _vp, _vp]),
}

for _name, (_res, _args) in _PROTOS.items():
    _f = getattr(_lib, _name)
    _f.restype = _res
    _f.argtypes = _args


def version_number():
    """The linked library's version, major * 10000 + minor * 100 + patch."""
    return int(_lib.drpo_version_number())


def version():
    return _lib.drpo_version_string().decode()


_vn = version_number()
if _vn // 10000 != BINDING_MAJOR or _vn < MIN_VERSION_NUMBER:
    raise ImportError("drpo: this binding needs libdrpo %d.x (>= 0.1.0), the library loaded "
                      "is %s" % (BINDING_MAJOR, version()))
LIBRARY_PATH = _lib._name


def _status_string(status):
    return _lib.drpo_status_string(int(status)).decode()


def _raise(status, message=None):
    cls = _ERRORS.get(int(status), DrpoError)
    raise cls(status, message)


def _check(status, last_error=None, handle=None):
    """Raise for a negative status with the handle's message; return status."""
    if status < 0:
        msg = None
        if last_error is not None and handle:
            raw = last_error(handle)
            msg = raw.decode("utf-8", "replace") if raw else None
        _raise(status, msg)
    return status


# ---- arrays -----------------------------------------------------------------


def _array(x, dtype, name, n=None, ndim=1):
    """x as a C-contiguous array of dtype (the same object when it already is
    one: no copy), checked for its size."""
    a = np.ascontiguousarray(x, dtype=dtype)
    if ndim == 1:
        if a.ndim != 1:
            if a.ndim == 0:
                raise ValueError("%s: expected a 1-d array, got a scalar" % name)
            a = a.reshape(-1)  # a view: a is contiguous
    if n is not None and a.size != n:
        raise ValueError("%s: expected %d values, got %d" % (name, n, a.size))
    return a


def _out(out, dtype, n, name):
    if out is None:
        return np.empty(n, dtype=dtype)
    if (not isinstance(out, np.ndarray) or out.dtype != dtype or not out.flags.c_contiguous
            or not out.flags.writeable or out.size != n):
        raise ValueError("%s: out= must be a writable C-contiguous %s array of %d values"
                         % (name, np.dtype(dtype).name, n))
    return out


def _ptr(a):
    return a.ctypes.data if a is not None else None


def _view(addr, n, ctype, readonly, owner=None):
    """A numpy view of n values at addr (no copy); owner is kept alive by it."""
    if n == 0 or not addr:
        return np.empty(0, dtype=np.dtype(ctype))
    buf = (ctype * n).from_address(addr)
    if owner is not None:
        buf._owner = owner
    a = np.frombuffer(buf, dtype=np.dtype(ctype))
    if readonly:
        a.flags.writeable = False
    return a


# ---- handles ------------------------------------------------------------------

_live = {"objective": 0, "batch": 0, "model": 0, "trainer": 0}


def live_handles(kind=None):
    """Library handles created through this module and not yet freed (all
    kinds, or one of 'objective', 'batch', 'model', 'trainer')."""
    return _live[kind] if kind else sum(_live.values())


class _Box:
    """Owns one C handle.  Holds no reference to the Python wrapper, so a
    finalizer holding the box never keeps the wrapper alive.  A borrowed
    handle (a trainer's model or objective) is freed only once its owner
    released it and every borrower is gone."""

    __slots__ = ("ptr", "free", "kind", "borrowers", "released")

    def __init__(self, ptr, free, kind):
        self.ptr, self.free, self.kind = ptr, free, kind
        self.borrowers, self.released = 0, False
        _live[kind] += 1

    def _maybe_free(self):
        if self.released and self.borrowers == 0 and self.ptr:
            ptr, self.ptr = self.ptr, None
            self.free(ptr)
            _live[self.kind] -= 1

    def release(self):
        self.released = True
        self._maybe_free()

    def borrow(self):
        self.borrowers += 1

    def unborrow(self):
        self.borrowers -= 1
        self._maybe_free()


def _free_trainer(box, borrowed):
    box.release()
    for b in borrowed:
        b.unborrow()


class _Handle:
    _what = "handle"

    def _own(self, ptr, free, kind, finalize=None, args=()):
        self._box = _Box(ptr, free, kind)
        self._finalizer = weakref.finalize(self, finalize or _Box.release, self._box, *args)

    @property
    def _p(self):
        box = getattr(self, "_box", None)
        if box is None or not self._finalizer.alive:
            raise DrpoClosedError(self._what)
        return box.ptr

    @property
    def closed(self):
        return not getattr(self, "_finalizer", None) or not self._finalizer.alive

    def close(self):
        """Free the handle now (a borrowed one once its borrowers are gone).
        Idempotent."""
        f = getattr(self, "_finalizer", None)
        if f is not None:
            f()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _enum(value, table, what):
    if isinstance(value, str):
        try:
            return table[value.lower().replace("-", "_")]
        except KeyError:
            raise ValueError("unknown %s %r (one of: %s)" % (what, value, ", ".join(table))) from None
    return int(value)


SETS = {"none": 0, "erm": 0, "kl": 1, "chi2": 2, "chi_square": 2, "cvar": 3, "tv": 4}
MODES = {"exact": 0, "stochastic": 1, "group": 2}
_OBJ_PARAMS = {"radius": 1, "penalty": 2, "level": 3, "mode": 4, "dual_lr": 5, "groups": 6}
OBJECTIVE_DIAGS = {
    "value": 1, "mean": 2, "eta": 3, "lambda": 4, "divergence": 5, "ess": 6,
    "ess_fraction": 7, "max_weight": 8, "support": 9, "iterations": 10, "tight": 11,
    "degenerate": 12,
}

# ---- collectives --------------------------------------------------------------


# Function pointers go into typed fields (and argtypes): ctypes.cast of a
# CFUNCTYPE object makes a reference cycle that keeps the callback, and all it
# references, alive until the cyclic garbage collector runs.
_ALLGATHER_U64 = ctypes.CFUNCTYPE(ctypes.c_int, _vp, _u64, _vp)
_ALLGATHERV = ctypes.CFUNCTYPE(ctypes.c_int, _vp, _vp, _u64, _vp, _vp)
_ALLREDUCE = ctypes.CFUNCTYPE(ctypes.c_int, _vp, _vp, _u64)


class _CCollective(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("rank", ctypes.c_int32),
        ("size", ctypes.c_int32),
        ("allgather_u64", _ALLGATHER_U64),
        ("allgatherv", _ALLGATHERV),
        ("allreduce_sum", _ALLREDUCE),
    ]


class _Pending:
    """Where a trampoline leaves the exception it caught."""

    __slots__ = ("exc",)

    def __init__(self):
        self.exc = None

    def take(self):
        e, self.exc = self.exc, None
        return e


def _guarded(pending, body):
    """A trampoline around body: returns body's int result (None: 0); an
    exception of any kind is left in pending and CALLBACK_EXCEPTION_CODE is
    returned, so that nothing crosses into C."""

    def tramp(*args):
        try:
            rc = body(*args)
            return int(rc) if rc else 0
        except BaseException as e:  # noqa: B036 - nothing may cross into C
            pending.exc = e
            return CALLBACK_EXCEPTION_CODE

    return tramp


def _reraise(err_cls_status, message, pendings):
    """Raise the Python exception a callback left, chained from the library's
    error; or the library's error alone."""
    exc = None
    for p in pendings:
        if p is not None:
            e = p.take()
            if e is not None and exc is None:
                exc = e
    err = _ERRORS.get(err_cls_status, DrpoError)(err_cls_status, message)
    if exc is not None:
        raise exc from err
    raise err


class Collective:
    """Collectives for data parallelism, implemented in Python.  Subclass and
    override the three methods (or pass callables), then attach with
    Objective.set_collective.  Every rank must make the same calls in the same
    order; an exception on one rank cannot unblock the others, so a failing
    collective should abort the job.

      allgather_u64(value) -> sequence of `size` ints (rank r's value at r)
      allgatherv(send, recv, counts): send is a read-only uint8 array, recv a
          writable uint8 array to fill with every rank's bytes in rank order,
          counts a uint64 array of each rank's byte count
      allreduce_sum(values): sum the float64 array over ranks, in place
    """

    def __init__(self, rank, size, allgather_u64=None, allgatherv=None, allreduce_sum=None):
        self.rank, self.size = int(rank), int(size)
        if allgather_u64 is not None:
            self.allgather_u64 = allgather_u64
        if allgatherv is not None:
            self.allgatherv = allgatherv
        if allreduce_sum is not None:
            self.allreduce_sum = allreduce_sum

    def allgather_u64(self, value):
        raise NotImplementedError

    def allgatherv(self, send, recv, counts):
        raise NotImplementedError

    def allreduce_sum(self, values):
        raise NotImplementedError


def _collective_trampolines(coll, pending):
    size = coll.size

    def ag(user, value, values):
        got = np.asarray(coll.allgather_u64(int(value)), dtype=np.uint64).reshape(-1)
        if got.size != size:
            raise ValueError("allgather_u64 returned %d values for %d ranks" % (got.size, size))
        _view(values, size, ctypes.c_uint64, False)[:] = got

    def agv(user, send, send_bytes, recv, recv_bytes):
        counts = _view(recv_bytes, size, ctypes.c_uint64, True)
        s = _view(send, int(send_bytes), ctypes.c_uint8, True)
        r = _view(recv, int(counts.sum()), ctypes.c_uint8, False)
        coll.allgatherv(s, r, counts)

    def ar(user, values, n):
        coll.allreduce_sum(_view(values, int(n), ctypes.c_double, False))

    return (_ALLGATHER_U64(_guarded(pending, ag)), _ALLGATHERV(_guarded(pending, agv)),
            _ALLREDUCE(_guarded(pending, ar)))


# ---- the objective ---------------------------------------------------------------


class Objective(_Handle):
    """An ambiguity set with its parameter: Objective('kl', radius=0.1),
    Objective('chi2', penalty=1.0), Objective('cvar', level=0.2),
    Objective('tv', radius=0.3), Objective('none').  mode: 'exact' (default),
    'stochastic' or 'group'; dual_lr and groups as DRPO_PARAM_DUAL_LR/GROUPS."""

    _what = "Objective"

    def __init__(self, set="none", *, radius=None, penalty=None, level=None, mode=None,
                 dual_lr=None, groups=None):
        kind = _enum(set, SETS, "ambiguity set")
        out = _vp()
        _check(_lib.drpo_objective_create(ctypes.byref(out), kind))
        self._own(out.value, _lib.drpo_objective_free, "objective")
        self._collective = None
        self._pending = _Pending()
        for key, v in (("groups", groups), ("mode", mode), ("dual_lr", dual_lr),
                       ("radius", radius), ("penalty", penalty), ("level", level)):
            if v is not None:
                self.set(key, v)

    def _err(self, st):
        return _check(st, _lib.drpo_objective_last_error, self._p)

    @property
    def set_kind(self):
        return int(_lib.drpo_objective_set_kind(self._p))

    def set(self, name, value):
        """Set a parameter by name ('radius', 'penalty', 'level', 'mode',
        'dual_lr', 'groups') or DRPO_PARAM_* number."""
        key = _enum(name, _OBJ_PARAMS, "objective parameter")
        if key == 4:
            value = _enum(value, MODES, "mode")
        self._err(_lib.drpo_objective_set(self._p, key, float(value)))
        return self

    def get(self, name):
        key = _enum(name, _OBJ_PARAMS, "objective parameter")
        v = _dbl()
        self._err(_lib.drpo_objective_get(self._p, key, ctypes.byref(v)))
        return v.value

    def solve(self, losses, base=None, out=None):
        """The worst case over the set around base (None: uniform).
        Returns (weights, value); weights is out when given."""
        loss = _array(losses, np.float64, "losses")
        n = loss.size
        b = None if base is None else _array(base, np.float64, "base", n)
        w = _out(out, np.float64, n, "solve")
        v = _dbl()
        self._err(_lib.drpo_objective_solve(self._p, n, _ptr(loss), _ptr(b), _ptr(w),
                                            ctypes.byref(v)))
        return w, v.value

    def value(self, losses, base=None):
        """The robust value only."""
        loss = _array(losses, np.float64, "losses")
        b = None if base is None else _array(base, np.float64, "base", loss.size)
        v = _dbl()
        self._err(_lib.drpo_objective_solve(self._p, loss.size, _ptr(loss), _ptr(b), None,
                                            ctypes.byref(v)))
        return v.value

    def diag(self, name):
        """A diagnostic of the last solve: 'value', 'mean', 'eta', 'lambda',
        'divergence', 'ess', 'ess_fraction', 'max_weight', 'support',
        'iterations', 'tight', 'degenerate' (or a DRPO_DIAG_* number)."""
        key = _enum(name, OBJECTIVE_DIAGS, "objective diagnostic")
        v = _dbl()
        self._err(_lib.drpo_objective_diag(self._p, key, ctypes.byref(v)))
        return v.value

    @property
    def last_error(self):
        return _lib.drpo_objective_last_error(self._p).decode("utf-8", "replace")

    def set_collective(self, collective):
        """Attach a Collective (or detach with None).  It and its trampolines
        stay referenced by this objective while attached."""
        p = self._p
        if collective is None:
            self._err(_lib.drpo_objective_set_collective(p, None, None))
            self._collective = None
            return
        pending = _Pending()
        fns = _collective_trampolines(collective, pending)
        c = _CCollective(ctypes.sizeof(_CCollective), collective.rank, collective.size, *fns)
        self._err(_lib.drpo_objective_set_collective(p, ctypes.byref(c), None))
        self._collective = (collective, fns, pending)

    @property
    def _coll_pending(self):
        return self._collective[2] if self._collective else None


# ---- batches --------------------------------------------------------------------


def prompt_key(prompt):
    """The XXH3-64 key Batch.add uses for a prompt (bytes or str, UTF-8)."""
    data = prompt.encode("utf-8") if isinstance(prompt, str) else bytes(prompt)
    return int(_lib.drpo_prompt_key(data, len(data)))


class _BatchReader:
    """Read access common to owned and borrowed batches."""

    def __len__(self):
        return int(_lib.drpo_batch_size(self._p))

    @property
    def size(self):
        return len(self)

    @property
    def units(self):
        """Distinct prompts."""
        return int(_lib.drpo_batch_units(self._p))

    def host_index(self, j):
        return int(_lib.drpo_batch_host_index(self._p, j))

    def group(self, j):
        return int(_lib.drpo_batch_group(self._p, j))

    def key(self, j):
        return int(_lib.drpo_batch_key(self._p, j))

    def unit_of(self, j):
        return int(_lib.drpo_batch_unit_of(self._p, j))

    def _per_pair(self, fn, dtype):
        p = self._p
        return np.fromiter((fn(p, j) for j in range(len(self))), dtype=dtype)

    def host_indices(self):
        return self._per_pair(_lib.drpo_batch_host_index, np.int64)

    def groups(self):
        return self._per_pair(_lib.drpo_batch_group, np.int32)

    def keys(self):
        return self._per_pair(_lib.drpo_batch_key, np.uint64)

    def unit_ids(self):
        """The unit (distinct prompt, numbered from 0) of every pair."""
        return self._per_pair(_lib.drpo_batch_unit_of, np.int64)


class BorrowedBatch(_BatchReader):
    """A batch the library hands a callback that this module did not create
    (read-only, valid during the callback only)."""

    def __init__(self, ptr):
        self._ptr = ptr

    @property
    def _p(self):
        return self._ptr


_batches = weakref.WeakValueDictionary()  # address -> Batch, for callbacks


class Batch(_Handle, _BatchReader):
    """A batch of preference pairs.  Pairs with the same prompt form one unit
    of the robust objective.  host_index (default: the pair's position) is how
    your callbacks find the pair's data; group (-1: none) labels a domain.
    host_indices() and groups() of a batch built here come from Python-side
    copies (no calls into the library)."""

    _what = "Batch"

    def __init__(self, prompts=None, groups=None, host_indices=None):
        out = _vp()
        _check(_lib.drpo_batch_create(ctypes.byref(out)))
        self._own(out.value, _lib.drpo_batch_free, "batch")
        _batches[out.value] = self
        self._host, self._group = [], []
        if prompts is not None:
            self.extend(prompts, groups, host_indices)

    def add(self, prompt, group=-1, host_index=None):
        """Add a pair of this prompt (bytes, or str encoded as UTF-8)."""
        data = prompt.encode("utf-8") if isinstance(prompt, str) else bytes(prompt)
        h = len(self._host) if host_index is None else int(host_index)
        _check(_lib.drpo_batch_add(self._p, data, len(data), int(group), h))
        self._host.append(h)
        self._group.append(int(group))
        return self

    def add_key(self, key, group=-1, host_index=None):
        """Add a pair with a prompt key of your own (a uint64)."""
        h = len(self._host) if host_index is None else int(host_index)
        _check(_lib.drpo_batch_add_key(self._p, int(key) & 0xFFFFFFFFFFFFFFFF, int(group), h))
        self._host.append(h)
        self._group.append(int(group))
        return self

    def extend(self, prompts, groups=None, host_indices=None):
        """Add many pairs: prompts (str/bytes, or ints taken as keys)."""
        n = len(prompts)
        for j in range(n):
            g = -1 if groups is None else int(groups[j])
            h = None if host_indices is None else int(host_indices[j])
            p = prompts[j]
            if isinstance(p, (str, bytes, bytearray, memoryview)):
                self.add(p, g, h)
            else:
                self.add_key(int(p), g, h)
        return self

    def clear(self):
        """Empty the batch, keeping its memory."""
        _lib.drpo_batch_clear(self._p)
        self._host, self._group = [], []

    def host_indices(self):
        self._p
        return np.asarray(self._host, dtype=np.int64)

    def groups(self):
        self._p
        return np.asarray(self._group, dtype=np.int32)


def _batch_for(addr):
    b = _batches.get(addr)
    return b if b is not None else BorrowedBatch(addr)


# ---- models ----------------------------------------------------------------------


_FORWARD = ctypes.CFUNCTYPE(ctypes.c_int, _vp, _vp, _vp, _vp)
_BACKWARD = ctypes.CFUNCTYPE(ctypes.c_int, _vp, _vp, _vp, _vp, _vp)
_PROGRESS = ctypes.CFUNCTYPE(ctypes.c_int, _vp, _vp)
_lib.drpo_trainer_set_progress.argtypes = [_vp, _PROGRESS, _vp]


class _CModelCallbacks(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint32), ("forward", _FORWARD),
                ("backward", _BACKWARD), ("free_user", _vp)]


class Model(_Handle):
    """A flat float32 parameter vector (starting at zero) with Python
    callbacks:

      forward(params, batch) -> per-pair losses (len(batch) values)
      backward(params, batch, pair_weights) -> gradient of
          sum_j pair_weights[j] * loss_j (n_params values)

    params is a read-only float32 view of the library's parameters (no copy),
    batch the Batch being stepped, pair_weights a read-only float64 view.
    With inplace=True the callbacks write into the library's buffers instead
    of returning arrays: forward(params, batch, out_losses) and
    backward(params, batch, pair_weights, out_grad) (out_grad is zeroed).
    An exception in a callback fails the step (nothing changes) and is
    re-raised by the Trainer call."""

    _what = "Model"

    def __init__(self, n_params, forward=None, backward=None, *, inplace=False, _ptr=None,
                 _keep=()):
        self._pending = _Pending()
        self._keep = _keep
        if _ptr is not None:  # a built-in model
            self._own(_ptr, _lib.drpo_model_free, "model")
            self._n = int(_lib.drpo_model_n_params(_ptr))
            return
        if forward is None or backward is None:
            raise TypeError("Model needs forward and backward callables")
        n = int(n_params)
        self._n = n
        pending = self._pending

        def fwd(user, params, batch, pair_loss):
            b = _batch_for(batch)
            m = len(b)
            p = _view(params, n, ctypes.c_float, True)
            out = _view(pair_loss, m, ctypes.c_double, False)
            if inplace:
                forward(p, b, out)
            else:
                out[:] = _array(forward(p, b), np.float64, "forward's losses", m)

        def bwd(user, params, batch, pair_weight, grad):
            b = _batch_for(batch)
            m = len(b)
            p = _view(params, n, ctypes.c_float, True)
            w = _view(pair_weight, m, ctypes.c_double, True)
            g = _view(grad, n, ctypes.c_float, False)
            if inplace:
                backward(p, b, w, g)
            else:
                g[:] = _array(backward(p, b, w), np.float32, "backward's gradient", n)

        self._cfuncs = (_FORWARD(_guarded(pending, fwd)), _BACKWARD(_guarded(pending, bwd)))
        cb = _CModelCallbacks(ctypes.sizeof(_CModelCallbacks), self._cfuncs[0],
                              self._cfuncs[1], None)
        out = _vp()
        _check(_lib.drpo_model_create(ctypes.byref(out), n, ctypes.byref(cb), None))
        self._own(out.value, _lib.drpo_model_free, "model")

    @property
    def n_params(self):
        return self._n

    def _params_view(self):
        return _view(_lib.drpo_model_params(self._box.ptr), self._n, ctypes.c_float, False,
                     owner=self)

    @property
    def params(self):
        """The parameters: a writable float32 view of the library's vector
        (zero-copy); it keeps this model alive."""
        self._p
        return self._params_view()

    @params.setter
    def params(self, values):
        v = np.asarray(values, dtype=np.float32)
        view = self.params
        if v.ndim == 0:
            view.fill(v)
        else:
            view[:] = _array(v, np.float32, "params", self._n)


def pairwise_linear(diff, loss="bt", beta=1.0, smoothing=0.0, theta_ref=None):
    """The built-in linear pairwise model over feature differences
    diff[h] = phi(chosen) - phi(rejected) (rows x dim float32, borrowed: kept
    referenced by the model).  The host index of a pair is its row."""
    d = np.ascontiguousarray(diff, dtype=np.float32)
    if d.ndim != 2:
        raise ValueError("diff: expected a rows x dim array")
    rows, dim = d.shape
    ref = None if theta_ref is None else _array(theta_ref, np.float32, "theta_ref", dim)
    out = _vp()
    _check(_lib.drpo_pairwise_linear_create(ctypes.byref(out), dim, rows, _ptr(d),
                                            _enum(loss, LOSSES, "loss"), float(beta),
                                            float(smoothing), _ptr(ref)))
    return Model(dim, _ptr=out.value, _keep=(d,))


class SoftmaxPolicy(Model):
    def stats(self, prompt, reward=None):
        """(E_{k~pi} reward_k, KL(pi || pi_ref)) for one prompt; reward: per-
        candidate values over all candidates (None: the model's rewards)."""
        r = None if reward is None else _array(reward, np.float64, "reward")
        er, kl = _dbl(), _dbl()
        _check(_lib.drpo_softmax_policy_stats(self._p, int(prompt), _ptr(r), ctypes.byref(er),
                                              ctypes.byref(kl)))
        return er.value, kl.value


def softmax_policy(offsets, features, rewards, beta, theta_ref=None):
    """The built-in softmax policy for the RLHF policy step: prompt i's
    candidates are rows offsets[i]..offsets[i+1]-1 of features (float32,
    candidates x dim) with rewards (float64).  Arrays are borrowed (kept
    referenced by the model)."""
    f = np.ascontiguousarray(features, dtype=np.float32)
    if f.ndim != 2:
        raise ValueError("features: expected a candidates x dim array")
    off = _array(offsets, np.uintp, "offsets")
    r = _array(rewards, np.float64, "rewards", f.shape[0])
    dim = f.shape[1]
    ref = None if theta_ref is None else _array(theta_ref, np.float32, "theta_ref", dim)
    out = _vp()
    _check(_lib.drpo_softmax_policy_create(ctypes.byref(out), dim, off.size - 1, _ptr(off),
                                           _ptr(f), _ptr(r), _ptr(ref), float(beta)))
    return SoftmaxPolicy(dim, _ptr=out.value, _keep=(off, f, r))


def linear_scores(theta, x):
    """scores[i] = x[i] . theta (x: rows x dim float32)."""
    xa = np.ascontiguousarray(x, dtype=np.float32)
    if xa.ndim != 2:
        raise ValueError("x: expected a rows x dim array")
    t = _array(theta, np.float32, "theta", xa.shape[1])
    s = np.empty(xa.shape[0], dtype=np.float64)
    _check(_lib.drpo_linear_scores(_ptr(t), xa.shape[1], xa.shape[0], _ptr(xa), _ptr(s)))
    return s


# ---- losses ------------------------------------------------------------------------

LOSSES = {"bt": 0, "dpo": 1, "ipo": 2, "hinge": 3, "cdpo": 4}


def loss_from_margins(margins, kind="bt", beta=1.0, smoothing=0.0):
    """(loss, dloss/dmargin) per margin, float64 arrays."""
    m = _array(margins, np.float64, "margins")
    loss, d = np.empty(m.size), np.empty(m.size)
    _check(_lib.drpo_loss_from_margins(_enum(kind, LOSSES, "loss"), m.size, _ptr(m),
                                       float(beta), float(smoothing), _ptr(loss), _ptr(d)))
    return loss, d


def loss_from_logps(policy_chosen, policy_rejected, ref_chosen, ref_rejected, kind="dpo",
                    beta=0.1, smoothing=0.0):
    """(loss, dloss/dmargin) with the DPO margin from log-probabilities."""
    pc = _array(policy_chosen, np.float64, "policy_chosen")
    n = pc.size
    pr = _array(policy_rejected, np.float64, "policy_rejected", n)
    rc = _array(ref_chosen, np.float64, "ref_chosen", n)
    rr = _array(ref_rejected, np.float64, "ref_rejected", n)
    loss, d = np.empty(n), np.empty(n)
    _check(_lib.drpo_loss_from_logps(_enum(kind, LOSSES, "loss"), n, _ptr(pc), _ptr(pr),
                                     _ptr(rc), _ptr(rr), float(beta), float(smoothing),
                                     _ptr(loss), _ptr(d)))
    return loss, d


# ---- the trainer ---------------------------------------------------------------------

TRAINER_OPTIONS = {
    "optimizer": 1, "lr": 2, "momentum": 3, "nesterov": 4, "beta1": 5, "beta2": 6, "eps": 7,
    "weight_decay": 8, "clip_norm": 9, "schedule": 10, "warmup": 11, "total_steps": 12,
    "min_lr": 13, "grad_tol": 14, "rel_tol": 15, "window": 16, "max_steps": 17,
    "smoothing": 18,
}
OPTIMIZERS = {"sgd": 0, "momentum": 1, "adamw": 2}
SCHEDULES = {"constant": 0, "warmup": 1, "cosine": 2}
TRAINER_DIAGS = {
    "robust": 1, "mean_loss": 2, "eta": 3, "lambda": 4, "ess": 5, "max_weight": 6,
    "divergence": 7, "grad_norm": 8, "update_norm": 9, "param_norm": 10, "dual_grad": 11,
    "steps": 12, "lr": 13, "smoothed": 14, "units": 15, "converged_by": 16,
    "callback_code": 17,
}
GROUP_DIAGS = {"mean_loss": 1, "weight": 2, "pairs": 3}


class Trainer(_Handle):
    """The robust training step over a Model (None for the weights-only path)
    and an Objective, both borrowed: the trainer keeps them alive.  Options by
    name as keyword arguments: Trainer(model, obj, optimizer='adamw', lr=1e-2)."""

    _what = "Trainer"

    def __init__(self, model, objective, **options):
        if not isinstance(objective, Objective):
            raise TypeError("objective must be an Objective")
        if model is not None and not isinstance(model, Model):
            raise TypeError("model must be a Model or None")
        mp = model._p if model is not None else None
        op = objective._p
        out = _vp()
        st = _lib.drpo_trainer_create(ctypes.byref(out), mp, op)
        _check(st)
        borrowed = [objective._box] + ([model._box] if model is not None else [])
        for b in borrowed:
            b.borrow()
        self._own(out.value, _lib.drpo_trainer_free, "trainer", finalize=_free_trainer,
                  args=(borrowed,))
        self.model, self.objective = model, objective
        self._progress = None
        self._progress_pending = _Pending()
        for k, v in options.items():
            self.set(k, v)

    def _fail(self, st):
        """Raise for st < 0: a callback's Python exception if one was left
        (chained from the library's error), else the library's error."""
        if st >= 0:
            return st
        msg = _lib.drpo_trainer_last_error(self._box.ptr)
        msg = msg.decode("utf-8", "replace") if msg else None
        _reraise(st, msg, (self.model._pending if self.model is not None else None,
                           self.objective._coll_pending, self._progress_pending))

    def _clear_pending(self):
        for p in (self.model._pending if self.model is not None else None,
                  self.objective._coll_pending, self._progress_pending):
            if p is not None:
                p.exc = None

    def set(self, name, value):
        """Set an option: optimizer ('sgd', 'momentum', 'adamw'), lr,
        momentum, nesterov, beta1, beta2, eps, weight_decay, clip_norm,
        schedule ('constant', 'warmup', 'cosine'), warmup, total_steps,
        min_lr, grad_tol, rel_tol, window, max_steps, smoothing."""
        key = _enum(name, TRAINER_OPTIONS, "trainer option")
        if key == 1:
            value = _enum(value, OPTIMIZERS, "optimizer")
        elif key == 10:
            value = _enum(value, SCHEDULES, "schedule")
        self._fail(_lib.drpo_trainer_set(self._p, key, float(value)))
        return self

    def get(self, name):
        v = _dbl()
        self._fail(_lib.drpo_trainer_get(self._p, _enum(name, TRAINER_OPTIONS, "trainer option"),
                                         ctypes.byref(v)))
        return v.value

    @property
    def params(self):
        if self.model is None:
            raise DrpoStateError(DRPO_ERR_STATE, "this trainer has no model (weights only)")
        return self.model._params_view()

    def step(self, batch):
        """One robust step; returns the batch's robust objective."""
        p = self._p
        self._clear_pending()
        self._fail(_lib.drpo_trainer_step(p, batch._p))
        return self.diag("robust")

    def weights(self, batch, losses, out=None):
        """Weights only: per-pair weights and the robust value for these
        per-pair losses (float64, len(batch)).  Returns (weights, value); the
        dual / group update is staged until commit()."""
        p = self._p
        n = len(batch)
        loss = _array(losses, np.float64, "losses", n)
        w = _out(out, np.float64, n, "weights")
        v = _dbl()
        self._clear_pending()
        self._fail(_lib.drpo_trainer_weights(p, batch._p, _ptr(loss), _ptr(w), ctypes.byref(v)))
        return w, v.value

    def commit(self):
        """Apply the update the last weights() staged and count a step."""
        self._fail(_lib.drpo_trainer_commit(self._p))

    def test(self):
        """The convergence test: CONTINUE (1), CONVERGED (2) or STOPPED (3)."""
        self._clear_pending()
        st = _lib.drpo_trainer_test(self._p)
        self._fail(st)
        e = self._progress_pending.take()
        if e is not None:
            raise e
        return int(st)

    def set_progress(self, fn):
        """fn(trainer) -> truthy to stop; called by test().  None removes it.
        An exception in fn stops training and is re-raised by test()."""
        p = self._p
        if fn is None:
            self._fail(_lib.drpo_trainer_set_progress(p, _PROGRESS(), None))
            self._progress = None
            return
        pending = self._progress_pending
        ref = weakref.ref(self)

        def progress(user, t):
            return 1 if fn(ref()) else 0

        cf = _PROGRESS(_guarded(pending, progress))
        self._fail(_lib.drpo_trainer_set_progress(p, cf, None))
        self._progress = cf

    def diag(self, name):
        """A diagnostic of the last step ('robust', 'mean_loss', 'eta',
        'lambda', 'ess', 'max_weight', 'divergence', 'grad_norm',
        'update_norm', 'param_norm', 'dual_grad', 'steps', 'lr', 'smoothed',
        'units', 'converged_by', 'callback_code')."""
        v = _dbl()
        key = _enum(name, TRAINER_DIAGS, "trainer diagnostic")
        self._fail(_lib.drpo_trainer_diag(self._p, key, ctypes.byref(v)))
        return v.value

    def diags(self):
        """Every diagnostic available now, as a dict."""
        out = {}
        p = self._p
        for name, key in TRAINER_DIAGS.items():
            v = _dbl()
            if _lib.drpo_trainer_diag(p, key, ctypes.byref(v)) == 0:
                out[name] = v.value
        return out

    def group_diag(self, group, name):
        """'mean_loss', 'weight' or 'pairs' of a group in the last step."""
        v = _dbl()
        key = _enum(name, GROUP_DIAGS, "group diagnostic")
        self._fail(_lib.drpo_trainer_group_diag(self._p, int(group), key, ctypes.byref(v)))
        return v.value

    def evaluate(self, batch):
        """(robust value, gradient norm) of a batch at the current
        parameters, changing no state."""
        p = self._p
        v, g = _dbl(), _dbl()
        self._clear_pending()
        self._fail(_lib.drpo_trainer_evaluate(p, batch._p, ctypes.byref(v), ctypes.byref(g)))
        return v.value, g.value

    def save(self, path):
        self._fail(_lib.drpo_trainer_save(self._p, os.fsencode(path)))

    def load(self, path):
        self._fail(_lib.drpo_trainer_load(self._p, os.fsencode(path)))

    @property
    def last_error(self):
        return _lib.drpo_trainer_last_error(self._p).decode("utf-8", "replace")

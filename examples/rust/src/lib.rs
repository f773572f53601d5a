//! Safe Rust bindings to libdrpo, distributionally robust preference
//! optimisation.  No dependencies: the raw declarations in [`ffi`] are written
//! by hand from `include/drpo.h`, and the build script links the library it
//! finds through the `pkg-config` program, `DRPO_LIB_DIR`, or the build tree.
//!
//! * Every handle ([`Objective`], [`Batch`], [`Model`], [`Trainer`]) frees its C
//!   handle on `Drop`.
//! * Every fallible call returns [`Result`]; an [`Error`] carries the status
//!   code and the handle's last-error message.
//! * Model callbacks are Rust closures.  A closure that returns `Err` or
//!   panics makes the step fail with `DRPO_ERR_CALLBACK`: the panic is caught
//!   at the C boundary (it never unwinds into C), the library leaves the
//!   parameters, optimiser moments and duals as they were, and the step's
//!   [`Error`] carries the closure's message ([`Error::callback`]).
//!
//! The library has no global state; use one handle per thread.

pub mod ffi;
pub mod synth;

use std::ffi::{CStr, CString};
use std::fmt;
use std::marker::PhantomData;
use std::os::raw::{c_char, c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::{self, NonNull};
use std::slice;

// ---- errors ----------------------------------------------------------------

/// How a model callback failed.
#[derive(Debug, Clone, PartialEq)]
pub enum CallbackFailure {
    /// The closure returned `Err(message)` (code 1 to the library).
    Returned {
        callback: &'static str,
        message: String,
    },
    /// The closure panicked (code 2 to the library); the panic's message.
    Panicked {
        callback: &'static str,
        message: String,
    },
}

/// A failed libdrpo call.
#[derive(Debug, Clone)]
pub struct Error {
    code: i32,
    message: String,
    callback: Option<CallbackFailure>,
}

impl Error {
    fn new(code: i32, message: String) -> Error {
        Error {
            code,
            message,
            callback: None,
        }
    }
    /// The drpo_status (< 0), e.g. -14 for DRPO_ERR_CALLBACK.
    pub fn code(&self) -> i32 {
        self.code
    }
    /// The library's message (the handle's last error, or the status string).
    pub fn message(&self) -> &str {
        &self.message
    }
    /// The library's fixed description of the status code.
    pub fn status_string(&self) -> String {
        status_string(self.code)
    }
    /// Set when a model callback failed or panicked.
    pub fn callback(&self) -> Option<&CallbackFailure> {
        self.callback.as_ref()
    }
    /// True if the step failed because a callback panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.callback, Some(CallbackFailure::Panicked { .. }))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "libdrpo error {} ({}): {}",
            self.code,
            status_string(self.code),
            self.message
        )?;
        match &self.callback {
            Some(CallbackFailure::Returned { callback, message }) => {
                write!(f, "; {callback} returned an error: {message}")
            }
            Some(CallbackFailure::Panicked { callback, message }) => {
                write!(f, "; {callback} panicked: {message}")
            }
            None => Ok(()),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

fn cstr(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: the library returns NUL-terminated strings that live as long as
    // the handle (or static ones); we copy at once.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// The library's description of a status value.
pub fn status_string(code: i32) -> String {
    cstr(unsafe { ffi::drpo_status_string(code) })
}

/// The version of the library linked, e.g. "0.1.0", and its number
/// (major * 10000 + minor * 100 + patch).
pub fn version() -> (String, u32) {
    unsafe { (cstr(ffi::drpo_version_string()), ffi::drpo_version_number()) }
}

/// Ok(status) for OK and informational statuses, else an error whose message
/// `msg` reads from the handle.
fn check(st: ffi::drpo_status, msg: impl FnOnce() -> String) -> Result<i32> {
    if st >= 0 {
        return Ok(st);
    }
    let mut m = msg();
    if m.is_empty() {
        m = status_string(st);
    }
    Err(Error::new(st, m))
}

fn check_plain(st: ffi::drpo_status) -> Result<i32> {
    check(st, || status_string(st))
}

// ---- the robust objective -------------------------------------------------

/// The ambiguity sets around the base distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Set {
    /// Empirical risk, q = p.
    None = ffi::DRPO_SET_NONE as isize,
    /// KL divergence.
    Kl = ffi::DRPO_SET_KL as isize,
    /// Chi-square divergence (with the 1/2).
    Chi2 = ffi::DRPO_SET_CHI2 as isize,
    /// CVaR: q <= p / alpha.
    Cvar = ffi::DRPO_SET_CVAR as isize,
    /// Total variation.
    Tv = ffi::DRPO_SET_TV as isize,
}

/// The objective's mode inside the training step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Exact = ffi::DRPO_MODE_EXACT as isize,
    Stochastic = ffi::DRPO_MODE_STOCHASTIC as isize,
    Group = ffi::DRPO_MODE_GROUP as isize,
}

/// Objective parameters (DRPO_PARAM_*).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    Radius = 1,
    Penalty = 2,
    Level = 3,
    Mode = 4,
    DualLr = 5,
    Groups = 6,
}

/// Diagnostics of the last solve (DRPO_DIAG_*).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Diag {
    Value = 1,
    Mean = 2,
    Eta = 3,
    Lambda = 4,
    Divergence = 5,
    Ess = 6,
    EssFraction = 7,
    MaxWeight = 8,
    Support = 9,
    Iterations = 10,
    Tight = 11,
    Degenerate = 12,
}

/// A robust objective: one ambiguity set and its parameter.
pub struct Objective {
    raw: NonNull<ffi::drpo_objective>,
}

// SAFETY: a handle has no ties to the thread that made it; the library has
// no global mutable state.  It is not Sync: calls on one handle mutate it.
unsafe impl Send for Objective {}

impl Objective {
    /// An objective over `set`; set its parameter before solving.
    pub fn new(set: Set) -> Result<Objective> {
        let mut raw = ptr::null_mut();
        check_plain(unsafe { ffi::drpo_objective_create(&mut raw, set as i32) })?;
        Ok(Objective {
            raw: NonNull::new(raw).expect("drpo_objective_create returned NULL"),
        })
    }

    fn last_error(&self) -> String {
        cstr(unsafe { ffi::drpo_objective_last_error(self.raw.as_ptr()) })
    }

    /// Set a parameter (radius and penalty exclude each other).
    pub fn set(&mut self, key: Param, value: f64) -> Result<()> {
        let st = unsafe { ffi::drpo_objective_set(self.raw.as_ptr(), key as i32, value) };
        check(st, || self.last_error()).map(|_| ())
    }

    pub fn get(&self, key: Param) -> Result<f64> {
        let mut v = 0.0;
        let st = unsafe { ffi::drpo_objective_get(self.raw.as_ptr(), key as i32, &mut v) };
        check(st, || self.last_error()).map(|_| v)
    }

    /// Builder forms of `set`.
    pub fn with(mut self, key: Param, value: f64) -> Result<Objective> {
        self.set(key, value)?;
        Ok(self)
    }
    pub fn with_mode(self, mode: Mode) -> Result<Objective> {
        self.with(Param::Mode, mode as i32 as f64)
    }

    /// The set the objective was created with.
    pub fn kind(&self) -> i32 {
        unsafe { ffi::drpo_objective_set_kind(self.raw.as_ptr()) }
    }

    /// The worst case over the set around `base` (None: uniform): the
    /// weights q and the robust value.
    pub fn solve(&mut self, loss: &[f64], base: Option<&[f64]>) -> Result<(Vec<f64>, f64)> {
        if let Some(b) = base {
            if b.len() != loss.len() {
                return Err(Error::new(
                    -2,
                    format!("base has {} weights for {} losses", b.len(), loss.len()),
                ));
            }
        }
        let mut q = vec![0.0; loss.len()];
        let mut value = 0.0;
        let st = unsafe {
            ffi::drpo_objective_solve(
                self.raw.as_ptr(),
                loss.len(),
                loss.as_ptr(),
                base.map_or(ptr::null(), |b| b.as_ptr()),
                q.as_mut_ptr(),
                &mut value,
            )
        };
        check(st, || self.last_error())?;
        Ok((q, value))
    }

    /// A diagnostic of the last successful solve.
    pub fn diag(&self, key: Diag) -> Result<f64> {
        let mut v = 0.0;
        let st = unsafe { ffi::drpo_objective_diag(self.raw.as_ptr(), key as i32, &mut v) };
        check(st, || self.last_error()).map(|_| v)
    }

    /// The raw handle, for calls these bindings do not wrap (e.g.
    /// drpo_objective_set_collective).  It stays owned by `self`.
    pub fn as_ptr(&self) -> *mut ffi::drpo_objective {
        self.raw.as_ptr()
    }
}

impl Drop for Objective {
    fn drop(&mut self) {
        unsafe { ffi::drpo_objective_free(self.raw.as_ptr()) }
    }
}

// ---- batches ----------------------------------------------------------------

/// A read-only view of a batch: what a callback receives.  Only ever seen
/// behind a reference that points at the library's batch.
#[repr(transparent)]
pub struct BatchView(ffi::drpo_batch);

impl BatchView {
    /// # Safety
    /// `p` must point at a live batch that outlives 'a and is not written
    /// during 'a.
    unsafe fn from_ptr<'a>(p: *const ffi::drpo_batch) -> &'a BatchView {
        &*(p as *const BatchView)
    }
    fn ptr(&self) -> *const ffi::drpo_batch {
        &self.0
    }
    /// Pairs in the batch.
    pub fn len(&self) -> usize {
        unsafe { ffi::drpo_batch_size(self.ptr()) }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Distinct prompts (units).
    pub fn units(&self) -> usize {
        unsafe { ffi::drpo_batch_units(self.ptr()) }
    }
    /// The host index of pair j (None if out of range).
    pub fn host_index(&self, j: usize) -> Option<i64> {
        let h = unsafe { ffi::drpo_batch_host_index(self.ptr(), j) };
        (j < self.len()).then_some(h)
    }
    /// The group of pair j (None: no group, or out of range).
    pub fn group(&self, j: usize) -> Option<i32> {
        let g = unsafe { ffi::drpo_batch_group(self.ptr(), j) };
        (j < self.len() && g >= 0).then_some(g)
    }
    /// The prompt key of pair j.
    pub fn key(&self, j: usize) -> u64 {
        unsafe { ffi::drpo_batch_key(self.ptr(), j) }
    }
    /// The unit (prompt) of pair j.
    pub fn unit_of(&self, j: usize) -> usize {
        unsafe { ffi::drpo_batch_unit_of(self.ptr(), j) }
    }
    /// Host indices of every pair, in order.
    pub fn host_indices(&self) -> impl Iterator<Item = i64> + '_ {
        (0..self.len()).map(move |j| unsafe { ffi::drpo_batch_host_index(self.ptr(), j) })
    }
}

/// The XXH3-64 key `Batch::add` uses for these prompt bytes.
pub fn prompt_key(prompt: &[u8]) -> u64 {
    unsafe { ffi::drpo_prompt_key(prompt.as_ptr() as *const c_void, prompt.len()) }
}

/// A batch of preference pairs; pairs with the same prompt form one unit.
pub struct Batch {
    raw: NonNull<ffi::drpo_batch>,
}

// SAFETY: a finished batch is never written by the library and may be read
// from several threads (drpo.h); writing needs &mut.
unsafe impl Send for Batch {}
unsafe impl Sync for Batch {}

fn group_id(group: Option<i32>) -> i32 {
    group.unwrap_or(ffi::DRPO_GROUP_NONE)
}

impl Batch {
    pub fn new() -> Result<Batch> {
        let mut raw = ptr::null_mut();
        check_plain(unsafe { ffi::drpo_batch_create(&mut raw) })?;
        Ok(Batch {
            raw: NonNull::new(raw).expect("drpo_batch_create returned NULL"),
        })
    }
    /// Add a pair whose prompt is these bytes (hashed with XXH3-64).
    pub fn add(&mut self, prompt: &[u8], group: Option<i32>, host_index: i64) -> Result<()> {
        let st = unsafe {
            ffi::drpo_batch_add(
                self.raw.as_ptr(),
                prompt.as_ptr() as *const c_void,
                prompt.len(),
                group_id(group),
                host_index,
            )
        };
        check_plain(st).map(|_| ())
    }
    /// Add a pair with a prompt key of the host's own.
    pub fn add_key(&mut self, key: u64, group: Option<i32>, host_index: i64) -> Result<()> {
        let st =
            unsafe { ffi::drpo_batch_add_key(self.raw.as_ptr(), key, group_id(group), host_index) };
        check_plain(st).map(|_| ())
    }
    /// Empty the batch, keeping its memory.
    pub fn clear(&mut self) {
        unsafe { ffi::drpo_batch_clear(self.raw.as_ptr()) }
    }
    fn as_ptr(&self) -> *const ffi::drpo_batch {
        self.raw.as_ptr()
    }
}

impl std::ops::Deref for Batch {
    type Target = BatchView;
    fn deref(&self) -> &BatchView {
        // SAFETY: the batch lives as long as the borrow and is only written
        // through &mut self.
        unsafe { BatchView::from_ptr(self.raw.as_ptr()) }
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        unsafe { ffi::drpo_batch_free(self.raw.as_ptr()) }
    }
}

// ---- models ------------------------------------------------------------------

/// What a model closure returns: `Err(message)` fails the step.
pub type CallbackResult = std::result::Result<(), String>;

type ForwardFn<'a> = dyn FnMut(&[f32], &BatchView, &mut [f64]) -> CallbackResult + 'a;
type BackwardFn<'a> = dyn FnMut(&[f32], &BatchView, &[f64], &mut [f32]) -> CallbackResult + 'a;

struct Callbacks<'a> {
    n_params: usize,
    forward: Box<ForwardFn<'a>>,
    backward: Box<BackwardFn<'a>>,
    /// The last failure, read by the trainer after a failed step.
    failure: Option<CallbackFailure>,
}

const CODE_RETURNED: c_int = 1;
const CODE_PANICKED: c_int = 2;

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_string()
    }
}

/// Run a closure at the C boundary: its Err and its panics become a
/// non-zero code and a recorded failure; nothing unwinds into C.
fn guarded(
    failure: &mut Option<CallbackFailure>,
    callback: &'static str,
    f: impl FnOnce() -> CallbackResult,
) -> c_int {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => 0,
        Ok(Err(message)) => {
            *failure = Some(CallbackFailure::Returned { callback, message });
            CODE_RETURNED
        }
        Err(payload) => {
            let message = panic_message(&*payload);
            // a payload whose Drop panics must not unwind into C either
            let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
            *failure = Some(CallbackFailure::Panicked { callback, message });
            CODE_PANICKED
        }
    }
}

unsafe extern "C" fn forward_trampoline(
    user: *mut c_void,
    params: *const f32,
    batch: *const ffi::drpo_batch,
    pair_loss: *mut f64,
) -> c_int {
    // SAFETY: `user` is the Callbacks box the model owns; the library calls
    // on the caller's thread, inside a step that holds the model exclusively.
    let cb = &mut *(user as *mut Callbacks<'_>);
    let n = ffi::drpo_batch_size(batch);
    let params = slice::from_raw_parts(params, cb.n_params);
    let loss = slice::from_raw_parts_mut(pair_loss, n);
    let view = BatchView::from_ptr(batch);
    let f = &mut cb.forward;
    guarded(&mut cb.failure, "forward", || f(params, view, loss))
}

unsafe extern "C" fn backward_trampoline(
    user: *mut c_void,
    params: *const f32,
    batch: *const ffi::drpo_batch,
    pair_weight: *const f64,
    grad: *mut f32,
) -> c_int {
    let cb = &mut *(user as *mut Callbacks<'_>);
    let n = ffi::drpo_batch_size(batch);
    let params = slice::from_raw_parts(params, cb.n_params);
    let w = slice::from_raw_parts(pair_weight, n);
    let grad = slice::from_raw_parts_mut(grad, cb.n_params);
    let view = BatchView::from_ptr(batch);
    let f = &mut cb.backward;
    guarded(&mut cb.failure, "backward", || f(params, view, w, grad))
}

/// Per-pair losses of the built-in pairwise models (DRPO_LOSS_*).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    Bt = ffi::DRPO_LOSS_BT as isize,
    Dpo = ffi::DRPO_LOSS_DPO as isize,
    Ipo = ffi::DRPO_LOSS_IPO as isize,
    Hinge = ffi::DRPO_LOSS_HINGE as isize,
    Cdpo = ffi::DRPO_LOSS_CDPO as isize,
}

/// A model: a flat float32 parameter vector the library owns, with either
/// Rust closures or a built-in model behind it.  'a bounds what the
/// closures borrow.
pub struct Model<'a> {
    raw: NonNull<ffi::drpo_model>,
    callbacks: Option<Box<Callbacks<'a>>>,
    _diff: Option<Box<[f32]>>, // borrowed by a built-in model: freed after it
}

impl<'a> Model<'a> {
    /// A model with `n_params` parameters (starting at zero) whose forward
    /// writes one loss per pair and whose backward writes the gradient of
    /// sum_j w_j loss_j (grad arrives zeroed).
    pub fn from_closures<F, B>(n_params: usize, forward: F, backward: B) -> Result<Model<'a>>
    where
        F: FnMut(&[f32], &BatchView, &mut [f64]) -> CallbackResult + 'a,
        B: FnMut(&[f32], &BatchView, &[f64], &mut [f32]) -> CallbackResult + 'a,
    {
        let mut callbacks = Box::new(Callbacks {
            n_params,
            forward: Box::new(forward),
            backward: Box::new(backward),
            failure: None,
        });
        let table = ffi::drpo_model_callbacks {
            struct_size: std::mem::size_of::<ffi::drpo_model_callbacks>() as u32,
            forward: Some(forward_trampoline),
            backward: Some(backward_trampoline),
            free_user: None, // the Box is ours, dropped after the model
        };
        let user = &mut *callbacks as *mut Callbacks<'a> as *mut c_void;
        let mut raw = ptr::null_mut();
        check_plain(unsafe { ffi::drpo_model_create(&mut raw, n_params, &table, user) })?;
        Ok(Model {
            raw: NonNull::new(raw).expect("drpo_model_create returned NULL"),
            callbacks: Some(callbacks),
            _diff: None,
        })
    }

    /// The built-in linear pairwise model over feature differences
    /// (`rows` x `dim`, row-major; the batch's host index of a pair is its
    /// row).  `Loss::Bt` with no reference is the linear Bradley-Terry reward
    /// model; the others with beta and theta_ref the log-linear DPO policy.
    pub fn pairwise_linear(
        dim: usize,
        diff: Vec<f32>,
        loss: Loss,
        beta: f64,
        smoothing: f64,
        theta_ref: Option<&[f32]>,
    ) -> Result<Model<'static>> {
        if dim == 0 || diff.len() % dim != 0 {
            return Err(Error::new(
                -2,
                format!("{} floats is not rows x {dim}", diff.len()),
            ));
        }
        if theta_ref.is_some_and(|t| t.len() != dim) {
            return Err(Error::new(-2, format!("theta_ref must have {dim} floats")));
        }
        let diff = diff.into_boxed_slice();
        let mut raw = ptr::null_mut();
        let st = unsafe {
            ffi::drpo_pairwise_linear_create(
                &mut raw,
                dim,
                diff.len() / dim,
                diff.as_ptr(),
                loss as i32,
                beta,
                smoothing,
                theta_ref.map_or(ptr::null(), |t| t.as_ptr()),
            )
        };
        check_plain(st)?;
        Ok(Model {
            raw: NonNull::new(raw).expect("drpo_pairwise_linear_create returned NULL"),
            callbacks: None,
            _diff: Some(diff),
        })
    }

    /// The linear Bradley-Terry reward model r(x, y) = theta . phi(x, y).
    pub fn linear_bt(dim: usize, diff: Vec<f32>) -> Result<Model<'static>> {
        Model::pairwise_linear(dim, diff, Loss::Bt, 1.0, 0.0, None)
    }

    pub fn params(&self) -> &[f32] {
        unsafe {
            let m = self.raw.as_ptr();
            slice::from_raw_parts(ffi::drpo_model_params(m), ffi::drpo_model_n_params(m))
        }
    }
    pub fn params_mut(&mut self) -> &mut [f32] {
        unsafe {
            let m = self.raw.as_ptr();
            slice::from_raw_parts_mut(ffi::drpo_model_params(m), ffi::drpo_model_n_params(m))
        }
    }
}

impl Drop for Model<'_> {
    fn drop(&mut self) {
        // the model first: it refers to the callbacks box and the features
        unsafe { ffi::drpo_model_free(self.raw.as_ptr()) }
    }
}

// ---- the trainer ----------------------------------------------------------------

/// Trainer options (DRPO_TRAIN_*).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrainOption {
    Optimizer = 1,
    Lr = 2,
    Momentum = 3,
    Nesterov = 4,
    Beta1 = 5,
    Beta2 = 6,
    Eps = 7,
    WeightDecay = 8,
    ClipNorm = 9,
    Schedule = 10,
    Warmup = 11,
    TotalSteps = 12,
    MinLr = 13,
    GradTol = 14,
    RelTol = 15,
    Window = 16,
    MaxSteps = 17,
    Smoothing = 18,
}

/// Optimisers (DRPO_OPT_*), for `TrainOption::Optimizer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Optimizer {
    Sgd = 0,
    Momentum = 1,
    AdamW = 2,
}

/// Learning-rate schedules (DRPO_SCHED_*), for `TrainOption::Schedule`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    Constant = 0,
    Warmup = 1,
    Cosine = 2,
}

/// Trainer diagnostics (DRPO_TDIAG_*).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrainDiag {
    Robust = 1,
    MeanLoss = 2,
    Eta = 3,
    Lambda = 4,
    Ess = 5,
    MaxWeight = 6,
    Divergence = 7,
    GradNorm = 8,
    UpdateNorm = 9,
    ParamNorm = 10,
    DualGrad = 11,
    Steps = 12,
    Lr = 13,
    Smoothed = 14,
    Units = 15,
    ConvergedBy = 16,
    CallbackCode = 17,
}

/// The outcome of the convergence test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Convergence {
    Continue,
    Converged,
    Stopped,
}

/// A trainer over a model and an objective, both borrowed exclusively for
/// its lifetime (the library writes to both during a step).
pub struct Trainer<'t> {
    raw: NonNull<ffi::drpo_trainer>,
    model: *mut ffi::drpo_model,
    failure: *mut Option<CallbackFailure>, // the model's callbacks' slot, or NULL
    _borrows: PhantomData<&'t mut ()>,
}

impl<'t> Trainer<'t> {
    /// A trainer for full steps of `model`.
    pub fn new<'a: 't>(
        model: &'t mut Model<'a>,
        objective: &'t mut Objective,
    ) -> Result<Trainer<'t>> {
        let failure = match model.callbacks.as_mut() {
            Some(cb) => &mut cb.failure as *mut Option<CallbackFailure>,
            None => ptr::null_mut(),
        };
        Trainer::create(model.raw.as_ptr(), objective, failure)
    }

    /// A trainer without a model, for `weights` and `commit` only.
    pub fn weights_only(objective: &'t mut Objective) -> Result<Trainer<'t>> {
        Trainer::create(ptr::null_mut(), objective, ptr::null_mut())
    }

    fn create(
        model: *mut ffi::drpo_model,
        objective: &'t mut Objective,
        failure: *mut Option<CallbackFailure>,
    ) -> Result<Trainer<'t>> {
        let mut raw = ptr::null_mut();
        let st = unsafe { ffi::drpo_trainer_create(&mut raw, model, objective.raw.as_ptr()) };
        check(st, || status_string(st))?;
        Ok(Trainer {
            raw: NonNull::new(raw).expect("drpo_trainer_create returned NULL"),
            model,
            failure,
            _borrows: PhantomData,
        })
    }

    fn last_error(&self) -> String {
        cstr(unsafe { ffi::drpo_trainer_last_error(self.raw.as_ptr()) })
    }

    /// A status of a call that may have run the callbacks.
    fn checked(&mut self, st: ffi::drpo_status) -> Result<i32> {
        let failure = if self.failure.is_null() {
            None
        } else {
            // SAFETY: the callbacks box outlives 't and nothing else runs now
            unsafe { (*self.failure).take() }
        };
        check(st, || self.last_error()).map_err(|mut e| {
            if st == ffi::DRPO_ERR_CALLBACK {
                e.callback = failure;
            }
            e
        })
    }

    pub fn set(&mut self, key: TrainOption, value: f64) -> Result<()> {
        let st = unsafe { ffi::drpo_trainer_set(self.raw.as_ptr(), key as i32, value) };
        check(st, || self.last_error()).map(|_| ())
    }
    pub fn get(&self, key: TrainOption) -> Result<f64> {
        let mut v = 0.0;
        let st = unsafe { ffi::drpo_trainer_get(self.raw.as_ptr(), key as i32, &mut v) };
        check(st, || self.last_error()).map(|_| v)
    }
    pub fn set_optimizer(&mut self, opt: Optimizer) -> Result<()> {
        self.set(TrainOption::Optimizer, opt as i32 as f64)
    }
    pub fn set_schedule(&mut self, s: Schedule) -> Result<()> {
        self.set(TrainOption::Schedule, s as i32 as f64)
    }

    /// One robust step.  On error nothing changed (parameters, moments,
    /// duals); a failed or panicking closure gives DRPO_ERR_CALLBACK with
    /// `Error::callback` set.
    pub fn step(&mut self, batch: &Batch) -> Result<()> {
        let st = unsafe { ffi::drpo_trainer_step(self.raw.as_ptr(), batch.as_ptr()) };
        self.checked(st).map(|_| ())
    }

    /// Weights only: per-pair weights and the robust value from per-pair
    /// losses; nothing changes until `commit`.
    pub fn weights(&mut self, batch: &Batch, pair_loss: &[f64]) -> Result<(Vec<f64>, f64)> {
        if pair_loss.len() != batch.len() {
            return Err(Error::new(
                -2,
                format!(
                    "{} losses for a batch of {} pairs",
                    pair_loss.len(),
                    batch.len()
                ),
            ));
        }
        let mut w = vec![0.0; pair_loss.len()];
        let mut value = 0.0;
        let st = unsafe {
            ffi::drpo_trainer_weights(
                self.raw.as_ptr(),
                batch.as_ptr(),
                pair_loss.as_ptr(),
                w.as_mut_ptr(),
                &mut value,
            )
        };
        check(st, || self.last_error())?;
        Ok((w, value))
    }

    /// Apply the dual / group update staged by `weights` and count a step.
    pub fn commit(&mut self) -> Result<()> {
        let st = unsafe { ffi::drpo_trainer_commit(self.raw.as_ptr()) };
        check(st, || self.last_error()).map(|_| ())
    }

    /// The convergence test.
    pub fn test(&mut self) -> Result<Convergence> {
        let st = unsafe { ffi::drpo_trainer_test(self.raw.as_ptr()) };
        match check(st, || self.last_error())? {
            ffi::DRPO_CONVERGED => Ok(Convergence::Converged),
            ffi::DRPO_STOPPED => Ok(Convergence::Stopped),
            _ => Ok(Convergence::Continue),
        }
    }

    pub fn diag(&self, key: TrainDiag) -> Result<f64> {
        let mut v = 0.0;
        let st = unsafe { ffi::drpo_trainer_diag(self.raw.as_ptr(), key as i32, &mut v) };
        check(st, || self.last_error()).map(|_| v)
    }

    /// The exact robust objective of `batch` and its gradient norm at the
    /// current parameters, changing no state.
    pub fn evaluate(&mut self, batch: &Batch) -> Result<(f64, f64)> {
        let (mut value, mut gnorm) = (0.0, 0.0);
        let st = unsafe {
            ffi::drpo_trainer_evaluate(self.raw.as_ptr(), batch.as_ptr(), &mut value, &mut gnorm)
        };
        self.checked(st).map(|_| (value, gnorm))
    }

    /// The model's parameters (empty for a weights-only trainer).
    pub fn params(&self) -> &[f32] {
        if self.model.is_null() {
            return &[];
        }
        unsafe {
            slice::from_raw_parts(
                ffi::drpo_model_params(self.model),
                ffi::drpo_model_n_params(self.model),
            )
        }
    }

    /// Save the whole trainer state (atomic write) / load it.
    pub fn save(&self, path: &str) -> Result<()> {
        let p = CString::new(path).map_err(|_| Error::new(-17, "path contains NUL".into()))?;
        let st = unsafe { ffi::drpo_trainer_save(self.raw.as_ptr(), p.as_ptr()) };
        check(st, || self.last_error()).map(|_| ())
    }
    pub fn load(&mut self, path: &str) -> Result<()> {
        let p = CString::new(path).map_err(|_| Error::new(-17, "path contains NUL".into()))?;
        let st = unsafe { ffi::drpo_trainer_load(self.raw.as_ptr(), p.as_ptr()) };
        check(st, || self.last_error()).map(|_| ())
    }
}

impl Drop for Trainer<'_> {
    fn drop(&mut self) {
        unsafe { ffi::drpo_trainer_free(self.raw.as_ptr()) }
    }
}

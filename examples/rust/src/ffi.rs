//! Raw declarations of include/drpo.h (libdrpo 0.1), written by hand.
//! Keep in step with the header: every type here has the C layout.
#![allow(non_camel_case_types)]

use std::os::raw::{c_char, c_int, c_void};

pub type drpo_status = i32;

pub const DRPO_OK: drpo_status = 0;
pub const DRPO_CONTINUE: drpo_status = 1;
pub const DRPO_CONVERGED: drpo_status = 2;
pub const DRPO_STOPPED: drpo_status = 3;
pub const DRPO_ERR_CALLBACK: drpo_status = -14;

pub const DRPO_GROUP_NONE: i32 = -1;

// Sets, parameters, modes.
pub const DRPO_SET_NONE: i32 = 0;
pub const DRPO_SET_KL: i32 = 1;
pub const DRPO_SET_CHI2: i32 = 2;
pub const DRPO_SET_CVAR: i32 = 3;
pub const DRPO_SET_TV: i32 = 4;

pub const DRPO_PARAM_RADIUS: i32 = 1;
pub const DRPO_PARAM_PENALTY: i32 = 2;
pub const DRPO_PARAM_LEVEL: i32 = 3;
pub const DRPO_PARAM_MODE: i32 = 4;
pub const DRPO_PARAM_DUAL_LR: i32 = 5;
pub const DRPO_PARAM_GROUPS: i32 = 6;

pub const DRPO_MODE_EXACT: i32 = 0;
pub const DRPO_MODE_STOCHASTIC: i32 = 1;
pub const DRPO_MODE_GROUP: i32 = 2;

pub const DRPO_LOSS_BT: i32 = 0;
pub const DRPO_LOSS_DPO: i32 = 1;
pub const DRPO_LOSS_IPO: i32 = 2;
pub const DRPO_LOSS_HINGE: i32 = 3;
pub const DRPO_LOSS_CDPO: i32 = 4;

#[repr(C)]
pub struct drpo_objective {
    _opaque: [u8; 0],
}
#[repr(C)]
pub struct drpo_batch {
    _opaque: [u8; 0],
}
#[repr(C)]
pub struct drpo_model {
    _opaque: [u8; 0],
}
#[repr(C)]
pub struct drpo_trainer {
    _opaque: [u8; 0],
}

pub type forward_fn = unsafe extern "C" fn(
    user: *mut c_void,
    params: *const f32,
    batch: *const drpo_batch,
    pair_loss: *mut f64,
) -> c_int;
pub type backward_fn = unsafe extern "C" fn(
    user: *mut c_void,
    params: *const f32,
    batch: *const drpo_batch,
    pair_weight: *const f64,
    grad: *mut f32,
) -> c_int;

#[repr(C)]
pub struct drpo_model_callbacks {
    pub struct_size: u32,
    pub forward: Option<forward_fn>,
    pub backward: Option<backward_fn>,
    pub free_user: Option<unsafe extern "C" fn(user: *mut c_void)>,
}

#[repr(C)]
pub struct drpo_collective {
    pub struct_size: u32,
    pub rank: i32,
    pub size: i32,
    pub allgather_u64:
        Option<unsafe extern "C" fn(user: *mut c_void, value: u64, values: *mut u64) -> c_int>,
    pub allgatherv: Option<
        unsafe extern "C" fn(
            user: *mut c_void,
            send: *const c_void,
            send_bytes: u64,
            recv: *mut c_void,
            recv_bytes: *const u64,
        ) -> c_int,
    >,
    pub allreduce_sum:
        Option<unsafe extern "C" fn(user: *mut c_void, values: *mut f64, n: u64) -> c_int>,
}

pub type drpo_progress_fn =
    Option<unsafe extern "C" fn(user: *mut c_void, t: *const drpo_trainer) -> c_int>;

extern "C" {
    pub fn drpo_version_number() -> u32;
    pub fn drpo_version_string() -> *const c_char;
    pub fn drpo_status_string(s: drpo_status) -> *const c_char;

    pub fn drpo_objective_create(out: *mut *mut drpo_objective, set: i32) -> drpo_status;
    pub fn drpo_objective_set(obj: *mut drpo_objective, key: i32, value: f64) -> drpo_status;
    pub fn drpo_objective_get(obj: *const drpo_objective, key: i32, value: *mut f64)
        -> drpo_status;
    pub fn drpo_objective_solve(
        obj: *mut drpo_objective,
        n: usize,
        loss: *const f64,
        base: *const f64,
        weights: *mut f64,
        value: *mut f64,
    ) -> drpo_status;
    pub fn drpo_objective_diag(
        obj: *const drpo_objective,
        key: i32,
        value: *mut f64,
    ) -> drpo_status;
    pub fn drpo_objective_set_kind(obj: *const drpo_objective) -> i32;
    pub fn drpo_objective_last_error(obj: *const drpo_objective) -> *const c_char;
    pub fn drpo_objective_free(obj: *mut drpo_objective);
    pub fn drpo_objective_set_collective(
        obj: *mut drpo_objective,
        c: *const drpo_collective,
        user: *mut c_void,
    ) -> drpo_status;

    pub fn drpo_batch_create(out: *mut *mut drpo_batch) -> drpo_status;
    pub fn drpo_batch_add(
        b: *mut drpo_batch,
        prompt: *const c_void,
        prompt_len: usize,
        group: i32,
        host_index: i64,
    ) -> drpo_status;
    pub fn drpo_batch_add_key(
        b: *mut drpo_batch,
        key: u64,
        group: i32,
        host_index: i64,
    ) -> drpo_status;
    pub fn drpo_prompt_key(prompt: *const c_void, prompt_len: usize) -> u64;
    pub fn drpo_batch_size(b: *const drpo_batch) -> usize;
    pub fn drpo_batch_units(b: *const drpo_batch) -> usize;
    pub fn drpo_batch_host_index(b: *const drpo_batch, j: usize) -> i64;
    pub fn drpo_batch_group(b: *const drpo_batch, j: usize) -> i32;
    pub fn drpo_batch_key(b: *const drpo_batch, j: usize) -> u64;
    pub fn drpo_batch_unit_of(b: *const drpo_batch, j: usize) -> usize;
    pub fn drpo_batch_clear(b: *mut drpo_batch);
    pub fn drpo_batch_free(b: *mut drpo_batch);

    pub fn drpo_model_create(
        out: *mut *mut drpo_model,
        n_params: usize,
        cb: *const drpo_model_callbacks,
        user: *mut c_void,
    ) -> drpo_status;
    pub fn drpo_model_params(m: *mut drpo_model) -> *mut f32;
    pub fn drpo_model_n_params(m: *const drpo_model) -> usize;
    pub fn drpo_model_free(m: *mut drpo_model);

    pub fn drpo_trainer_create(
        out: *mut *mut drpo_trainer,
        m: *mut drpo_model,
        o: *mut drpo_objective,
    ) -> drpo_status;
    pub fn drpo_trainer_set(t: *mut drpo_trainer, key: i32, value: f64) -> drpo_status;
    pub fn drpo_trainer_get(t: *const drpo_trainer, key: i32, value: *mut f64) -> drpo_status;
    pub fn drpo_trainer_step(t: *mut drpo_trainer, b: *const drpo_batch) -> drpo_status;
    pub fn drpo_trainer_weights(
        t: *mut drpo_trainer,
        b: *const drpo_batch,
        pair_loss: *const f64,
        pair_weight: *mut f64,
        robust_value: *mut f64,
    ) -> drpo_status;
    pub fn drpo_trainer_commit(t: *mut drpo_trainer) -> drpo_status;
    pub fn drpo_trainer_test(t: *mut drpo_trainer) -> drpo_status;
    pub fn drpo_trainer_set_progress(
        t: *mut drpo_trainer,
        f: drpo_progress_fn,
        user: *mut c_void,
    ) -> drpo_status;
    pub fn drpo_trainer_diag(t: *const drpo_trainer, key: i32, value: *mut f64) -> drpo_status;
    pub fn drpo_trainer_group_diag(
        t: *const drpo_trainer,
        group: i32,
        key: i32,
        value: *mut f64,
    ) -> drpo_status;
    pub fn drpo_trainer_evaluate(
        t: *mut drpo_trainer,
        b: *const drpo_batch,
        robust_value: *mut f64,
        grad_norm: *mut f64,
    ) -> drpo_status;
    pub fn drpo_trainer_save(t: *const drpo_trainer, path: *const c_char) -> drpo_status;
    pub fn drpo_trainer_load(t: *mut drpo_trainer, path: *const c_char) -> drpo_status;
    pub fn drpo_trainer_last_error(t: *const drpo_trainer) -> *const c_char;
    pub fn drpo_trainer_free(t: *mut drpo_trainer);

    pub fn drpo_loss_from_margins(
        kind: i32,
        n: usize,
        margin: *const f64,
        beta: f64,
        smoothing: f64,
        loss: *mut f64,
        dloss: *mut f64,
    ) -> drpo_status;

    pub fn drpo_pairwise_linear_create(
        out: *mut *mut drpo_model,
        dim: usize,
        rows: usize,
        diff: *const f32,
        loss_kind: i32,
        beta: f64,
        smoothing: f64,
        theta_ref: *const f32,
    ) -> drpo_status;
}

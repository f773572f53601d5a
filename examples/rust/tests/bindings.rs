//! The bindings against the library: solves of every set, callbacks that
//! fail or panic, and training the linear model.
use drpo::synth::linear_pairs;
use drpo::{
    Batch, CallbackFailure, Convergence, Diag, Mode, Model, Objective, Optimizer, Param, Set,
    TrainDiag, TrainOption, Trainer,
};

const LOSS: [f64; 6] = [0.3, 1.2, -0.4, 2.5, 0.9, 0.1];

/// An objective of `set` with one parameter set.
fn objective(set: Set, key: Param, value: f64) -> Objective {
    Objective::new(set).unwrap().with(key, value).unwrap()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn version_matches() {
    let (s, n) = drpo::version();
    assert_eq!(n / 10000, 0);
    assert!(s.starts_with("0."), "{s}");
}

#[test]
fn solve_every_set() {
    let mean = LOSS.iter().sum::<f64>() / LOSS.len() as f64;
    let max = LOSS.iter().cloned().fold(f64::MIN, f64::max);
    let cases = [
        (Set::None, None),
        (Set::Kl, Some((Param::Radius, 0.2))),
        (Set::Kl, Some((Param::Penalty, 0.5))),
        (Set::Chi2, Some((Param::Radius, 0.3))),
        (Set::Chi2, Some((Param::Penalty, 1.0))),
        (Set::Cvar, Some((Param::Level, 0.5))),
        (Set::Tv, Some((Param::Radius, 0.25))),
    ];
    for (set, param) in cases {
        let mut o = Objective::new(set).unwrap();
        assert_eq!(o.kind(), set as i32);
        if let Some((key, v)) = param {
            o.set(key, v).unwrap();
            assert_eq!(o.get(key).unwrap(), v);
        }
        let (q, value) = o.solve(&LOSS, None).unwrap();
        let total: f64 = q.iter().sum();
        assert!(
            (total - 1.0).abs() < 1e-12,
            "{set:?}: weights sum to {total}"
        );
        assert!(q.iter().all(|&w| w >= 0.0));
        assert!(
            value >= mean - 1e-12 && value <= max + 1e-12,
            "{set:?}: value {value}"
        );
        let penalty = matches!(param, Some((Param::Penalty, _)));
        if !penalty {
            assert!(
                (dot(&q, &LOSS) - value).abs() < 1e-9,
                "{set:?}: q does not attain the value"
            );
        }
        if set == Set::Cvar {
            assert!(q.iter().all(|&w| w <= (1.0 / 6.0) / 0.5 + 1e-12));
        }
        assert_eq!(o.diag(Diag::Value).unwrap(), value);
        assert!((o.diag(Diag::Mean).unwrap() - mean).abs() < 1e-12);
    }
    // a non-uniform base, and the errors with the library's messages
    let mut o = Objective::new(Set::Kl).unwrap();
    let e = o.solve(&LOSS, None).unwrap_err();
    assert_eq!(e.code(), -7, "{e}"); // DRPO_ERR_PARAM_UNSET
    assert!(!e.message().is_empty());
    let e = o.set(Param::Radius, -1.0).unwrap_err();
    assert_eq!(e.code(), -6, "{e}"); // DRPO_ERR_PARAM_RANGE
    o.set(Param::Radius, 0.1).unwrap();
    assert_eq!(o.solve(&[], None).unwrap_err().code(), -2); // DRPO_ERR_SIZE
    let base = [0.5, 0.1, 0.1, 0.1, 0.1, 0.1];
    let (q, _) = o.solve(&LOSS, Some(&base)).unwrap();
    assert!(q[3] > base[3]);
    assert!(o.solve(&LOSS, Some(&base[..3])).is_err());
    assert!(o.solve(&[1.0, f64::NAN], None).unwrap_err().code() == -3);
}

#[test]
fn batch_units() {
    let mut b = Batch::new().unwrap();
    b.add(b"what is 2 + 2?", None, 10).unwrap();
    b.add(b"name a colour", Some(1), 11).unwrap();
    b.add(b"what is 2 + 2?", Some(0), 12).unwrap();
    assert_eq!((b.len(), b.units()), (3, 2));
    assert_eq!(b.unit_of(0), b.unit_of(2));
    assert_eq!(b.key(0), drpo::prompt_key(b"what is 2 + 2?"));
    assert_eq!(b.group(0), None);
    assert_eq!(b.group(1), Some(1));
    assert_eq!(b.host_indices().collect::<Vec<_>>(), vec![10, 11, 12]);
    assert_eq!(b.host_index(3), None);
    assert_eq!(b.add_key(5, Some(-2), 0).unwrap_err().code(), -6);
    b.clear();
    assert!(b.is_empty());
}

/// The linear BT model as closures over the same features as the built-in.
fn closure_model(data: &drpo::synth::PairData) -> Model<'_> {
    let dim = data.dim;
    let margin = move |theta: &[f32], h: usize| -> f64 {
        data.row(h)
            .iter()
            .zip(theta)
            .map(|(x, t)| *x as f64 * *t as f64)
            .sum()
    };
    Model::from_closures(
        dim,
        move |theta, batch, loss| {
            for (j, h) in batch.host_indices().enumerate() {
                let m = margin(theta, h as usize);
                loss[j] = if m > 0.0 {
                    (-m).exp().ln_1p()
                } else {
                    -m + m.exp().ln_1p()
                };
            }
            Ok(())
        },
        move |theta, batch, w, grad| {
            let mut g = vec![0.0f64; dim];
            for (j, h) in batch.host_indices().enumerate() {
                let m = margin(theta, h as usize);
                let s = -w[j] / (1.0 + m.exp()); // w * d/dm -log sigmoid(m)
                for (gi, x) in g.iter_mut().zip(data.row(h as usize)) {
                    *gi += s * *x as f64;
                }
            }
            for (o, v) in grad.iter_mut().zip(&g) {
                *o = *v as f32;
            }
            Ok(())
        },
    )
    .unwrap()
}

fn batch_of(data: &drpo::synth::PairData, rows: std::ops::Range<usize>) -> Batch {
    let mut b = Batch::new().unwrap();
    for h in rows {
        b.add_key(data.prompt(h), None, h as i64).unwrap();
    }
    b
}

#[test]
fn train_linear_model() {
    let data = linear_pairs(3, 400, &[1.0, -1.0, 0.5], 4.0);
    let full = batch_of(&data, 0..data.rows());
    let mut model = Model::linear_bt(data.dim, data.diff.clone()).unwrap();
    let mut obj = objective(Set::Cvar, Param::Level, 0.3);
    let mut t = Trainer::new(&mut model, &mut obj).unwrap();
    t.set_optimizer(Optimizer::AdamW).unwrap();
    t.set(TrainOption::Lr, 0.05).unwrap();
    t.set(TrainOption::MaxSteps, 150.0).unwrap();
    let (before, _) = t.evaluate(&full).unwrap();
    let mut steps = 0;
    loop {
        let start = (steps * 40) % data.rows();
        t.step(&batch_of(&data, start..start + 40)).unwrap();
        steps += 1;
        if t.test().unwrap() == Convergence::Converged {
            break;
        }
    }
    assert_eq!(steps, 150);
    assert_eq!(t.diag(TrainDiag::Steps).unwrap(), 150.0);
    let (after, _) = t.evaluate(&full).unwrap();
    assert!(after < 0.8 * before, "robust loss {before} -> {after}");
    assert!(data.accuracy(t.params()) > 0.85);
    drop(t);
    assert!(model.params().iter().any(|&p| p != 0.0));

    // The closures compute the same model: the same steps give the same
    // parameters (up to float rounding of the gradient sums).
    let mut m1 = Model::linear_bt(data.dim, data.diff.clone()).unwrap();
    let mut m2 = closure_model(&data);
    let mut o1 = objective(Set::Kl, Param::Radius, 0.2);
    let mut o2 = objective(Set::Kl, Param::Radius, 0.2);
    {
        let mut t1 = Trainer::new(&mut m1, &mut o1).unwrap();
        let mut t2 = Trainer::new(&mut m2, &mut o2).unwrap();
        for t in [&mut t1, &mut t2] {
            t.set(TrainOption::Lr, 0.5).unwrap();
        }
        for s in 0..20 {
            let b = batch_of(&data, s * 20..s * 20 + 20);
            t1.step(&b).unwrap();
            t2.step(&b).unwrap();
        }
    }
    for (a, b) in m1.params().iter().zip(m2.params()) {
        assert!((a - b).abs() <= 1e-4 * a.abs().max(1.0), "{a} vs {b}");
    }
}

#[test]
fn weights_only_path() {
    let mut o = Objective::new(Set::Chi2)
        .unwrap()
        .with(Param::Penalty, 0.5)
        .unwrap()
        .with_mode(Mode::Stochastic)
        .unwrap();
    let mut t = Trainer::weights_only(&mut o).unwrap();
    let mut b = Batch::new().unwrap();
    for j in 0..6 {
        b.add_key(j as u64 / 2, None, j).unwrap();
    }
    let (w, value) = t.weights(&b, &LOSS).unwrap();
    assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    assert!(value.is_finite());
    assert!(t.params().is_empty());
    t.commit().unwrap();
    assert_eq!(t.diag(TrainDiag::Steps).unwrap(), 1.0);
    assert_eq!(t.commit().unwrap_err().code(), -16); // nothing staged
    assert_eq!(t.weights(&b, &LOSS[..2]).unwrap_err().code(), -2);
}

#[test]
fn panic_in_callback_fails_the_step() {
    use std::cell::Cell;
    let data = linear_pairs(5, 60, &[1.0, 0.5], 2.0);
    let b = batch_of(&data, 0..20);
    let forward_calls = Cell::new(0);
    let backward_panics = Cell::new(false);
    let backward_errs = Cell::new(false);
    let mut model = Model::from_closures(
        2,
        |theta, batch, loss| {
            forward_calls.set(forward_calls.get() + 1);
            if forward_calls.get() == 2 {
                panic!("forward exploded at call {}", forward_calls.get());
            }
            for (j, h) in batch.host_indices().enumerate() {
                let m: f64 = data
                    .row(h as usize)
                    .iter()
                    .zip(theta)
                    .map(|(x, t)| (x * t) as f64)
                    .sum();
                loss[j] = (-m).exp().ln_1p();
            }
            Ok(())
        },
        |_theta, batch, w, grad| {
            if backward_panics.get() {
                let v: Vec<i32> = Vec::new();
                let _ = v[batch.len()]; // index out of bounds: a panic with a String
            }
            if backward_errs.get() {
                return Err("gradient unavailable".to_string());
            }
            for (j, h) in batch.host_indices().enumerate() {
                for (g, x) in grad.iter_mut().zip(data.row(h as usize)) {
                    *g -= (w[j] * 0.5) as f32 * x;
                }
            }
            Ok(())
        },
    )
    .unwrap();
    let mut obj = objective(Set::Kl, Param::Penalty, 1.0);
    let mut t = Trainer::new(&mut model, &mut obj).unwrap();
    t.set(TrainOption::Lr, 0.1).unwrap();
    t.step(&b).unwrap();
    let before = t.params().to_vec();

    // forward panics: an error carrying the panic message, nothing changed
    let e = t.step(&b).unwrap_err();
    assert_eq!(e.code(), -14, "{e}");
    assert!(e.is_panic());
    assert_eq!(
        e.callback(),
        Some(&CallbackFailure::Panicked {
            callback: "forward",
            message: "forward exploded at call 2".to_string()
        })
    );
    assert!(e.message().contains("forward"), "{}", e.message());
    assert!(e.to_string().contains("forward exploded"), "{e}");
    assert_eq!(t.params(), &before[..]);
    assert_eq!(t.diag(TrainDiag::Steps).unwrap(), 1.0);
    assert_eq!(t.diag(TrainDiag::CallbackCode).unwrap(), 2.0);

    // backward panics with a formatted message
    backward_panics.set(true);
    let e = t.step(&b).unwrap_err();
    match e.callback() {
        Some(CallbackFailure::Panicked {
            callback: "backward",
            message,
        }) => {
            assert!(message.contains("index out of bounds"), "{message}")
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(t.params(), &before[..]);
    backward_panics.set(false);

    // a closure's Err is an error too, with its message
    backward_errs.set(true);
    let e = t.step(&b).unwrap_err();
    assert!(!e.is_panic());
    assert_eq!(
        e.callback(),
        Some(&CallbackFailure::Returned {
            callback: "backward",
            message: "gradient unavailable".to_string()
        })
    );
    assert_eq!(t.diag(TrainDiag::CallbackCode).unwrap(), 1.0);
    assert_eq!(t.params(), &before[..]);
    backward_errs.set(false);

    // and training goes on
    t.step(&b).unwrap();
    assert_ne!(t.params(), &before[..]);
    assert_eq!(t.diag(TrainDiag::Steps).unwrap(), 2.0);
    // a later error that is not a callback's carries no stale failure
    let empty = Batch::new().unwrap();
    let e = t.step(&empty).unwrap_err();
    assert_eq!(e.code(), -2);
    assert!(e.callback().is_none());
}

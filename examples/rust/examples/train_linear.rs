//! Train the built-in linear Bradley-Terry reward model with a KL-robust
//! objective over prompts, on generated pairs.
//!
//!     cargo run --offline --example train_linear
use drpo::synth::linear_pairs;
use drpo::{Batch, Mode, Model, Objective, Optimizer, Param, Set, TrainDiag, TrainOption, Trainer};

fn main() -> Result<(), drpo::Error> {
    let truth = [1.0, -0.5, 0.25, 0.0];
    let data = linear_pairs(7, 512, &truth, 3.0);

    // The model owns a copy of the features; parameters start at zero.
    let mut model = Model::linear_bt(data.dim, data.diff.clone())?;
    // Worst case over prompts within KL radius 0.1 of the empirical weights.
    let mut objective = Objective::new(Set::Kl)?
        .with(Param::Radius, 0.1)?
        .with_mode(Mode::Exact)?;
    let mut trainer = Trainer::new(&mut model, &mut objective)?;
    trainer.set_optimizer(Optimizer::AdamW)?;
    trainer.set(TrainOption::Lr, 0.05)?;

    // Minibatches of 64 pairs (32 prompts of 2 pairs); the host index of a
    // pair is its row in the feature table.
    let mut batch = Batch::new()?;
    for step in 0..200 {
        batch.clear();
        let start = (step * 64) % data.rows();
        for h in start..start + 64 {
            batch.add_key(data.prompt(h), None, h as i64)?;
        }
        trainer.step(&batch)?;
        if step % 50 == 0 {
            println!(
                "step {step:3}: robust {:.4}  mean {:.4}  lambda {:.4}",
                trainer.diag(TrainDiag::Robust)?,
                trainer.diag(TrainDiag::MeanLoss)?,
                trainer.diag(TrainDiag::Lambda)?
            );
        }
    }
    let theta = trainer.params().to_vec();
    let accuracy = data.accuracy(&theta);
    println!("theta = {theta:?}, training accuracy {accuracy:.3}");
    if accuracy < 0.75 {
        eprintln!("accuracy too low");
        std::process::exit(1);
    }
    Ok(())
}

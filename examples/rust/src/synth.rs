//! Small deterministic preference data for the examples and tests: pairs
//! whose feature difference x = phi(chosen) - phi(rejected) follows a
//! linear Bradley-Terry model, some of them from a harder "minority" slice.

/// splitmix64: the same numbers on every machine.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1))
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unif(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
    /// Standard normal (Box-Muller).
    pub fn gauss(&mut self) -> f64 {
        let (u, v) = (self.unif(), self.unif());
        (-2.0 * (1.0 - u).ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// Pair data: row h (dim floats) is phi(chosen) - phi(rejected); pairs
/// 2p and 2p + 1 share prompt p.
pub struct PairData {
    pub dim: usize,
    pub diff: Vec<f32>,
    pub pairs_per_prompt: usize,
}

impl PairData {
    pub fn rows(&self) -> usize {
        self.diff.len() / self.dim
    }
    pub fn row(&self, h: usize) -> &[f32] {
        &self.diff[h * self.dim..(h + 1) * self.dim]
    }
    /// The prompt of row h.
    pub fn prompt(&self, h: usize) -> u64 {
        (h / self.pairs_per_prompt) as u64
    }
    /// Share of rows with theta . x > 0 (the chosen answer scores higher).
    pub fn accuracy(&self, theta: &[f32]) -> f64 {
        let good = (0..self.rows())
            .filter(|&h| {
                self.row(h)
                    .iter()
                    .zip(theta)
                    .map(|(x, t)| (x * t) as f64)
                    .sum::<f64>()
                    > 0.0
            })
            .count();
        good as f64 / self.rows() as f64
    }
}

/// `rows` pairs in `truth.len()` dimensions, x ~ N(0, I), the label drawn
/// from the logistic model of `truth` times `sharpness`.
pub fn linear_pairs(seed: u64, rows: usize, truth: &[f64], sharpness: f64) -> PairData {
    let dim = truth.len();
    let mut rng = Rng::new(seed);
    let mut diff = Vec::with_capacity(rows * dim);
    for _ in 0..rows {
        let x: Vec<f64> = (0..dim).map(|_| rng.gauss()).collect();
        let z: f64 = x.iter().zip(truth).map(|(a, b)| a * b).sum::<f64>() * sharpness;
        let y = if rng.unif() < 1.0 / (1.0 + (-z).exp()) {
            1.0
        } else {
            -1.0
        };
        diff.extend(x.iter().map(|v| (v * y) as f32));
    }
    PairData {
        dim,
        diff,
        pairs_per_prompt: 2,
    }
}

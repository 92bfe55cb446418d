//! OBC1 generalised Born implicit solvent with the ACE surface-area term (OpenMM's GBSAOBC1Force as
//! a CustomGBForce), energies in kJ/mol with analytic gradients; positions in nm.
//!
//! With ρᵢ = RADII/10, offset radius oᵢ = ρᵢ − 0.009 and scaled radius sᵢ = SCREENᵢ·oᵢ:
//!   Iᵢ = Σ_{j≠i} Iᵢⱼ,  Iᵢⱼ = ½[1/L − 1/U + ¼(r − sⱼ²/r)(1/U² − 1/L²) + ln(L/U)/(2r)]
//!        (U = r + sⱼ, L = max(oᵢ, |r − sⱼ|); 0 if r + sⱼ < oᵢ),
//!   Bᵢ = 1 / (1/oᵢ − tanh(αψ − βψ² + γψ³)/ρᵢ), ψ = Iᵢ oᵢ, (α, β, γ) = (0.8, 0, 2.909125),
//!   E_GB = −½kD Σᵢ qᵢ²/Bᵢ − kD Σ_{i<j} qᵢqⱼ/fᵢⱼ, fᵢⱼ = √(r² + BᵢBⱼ exp(−r²/(4BᵢBⱼ))),
//!   E_ACE = Σᵢ 28.3919551 (ρᵢ + 0.14)² (ρᵢ/Bᵢ)⁶,
//! k = 138.935485 (OpenMM's literal), D = 1/ε_in − 1/ε_out = 1 − 1/78.5. All sums run over all pairs,
//! bonded ones included. The gradient adds the explicit r-dependence of fᵢⱼ to the chain rule through
//! the Born radii: ∂E/∂Bᵢ · dBᵢ/dψᵢ · oᵢ · dIᵢⱼ/dr.

use crate::aldp::prmtop::Prmtop;

const K_GB: f64 = 138.935485;
const EPS_SOLVENT: f64 = 78.5;
const OFFSET: f64 = 0.009;
const ALPHA: f64 = 0.8;
const BETA: f64 = 0.0;
const GAMMA: f64 = 2.909125;
const ACE: f64 = 28.3919551;
const PROBE: f64 = 0.14;

/// GB energies (kJ/mol) split as the reference breakdown.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GbEnergy {
    pub self_energy: f64,
    pub pair: f64,
    pub ace: f64,
}

impl GbEnergy {
    /// OpenMM's CustomGBForce energy.
    pub fn total(&self) -> f64 {
        self.self_energy + self.pair + self.ace
    }
}

/// OBC1 parameters of a molecule.
#[derive(Debug, Clone)]
pub struct GbObc {
    charges: Vec<f64>,
    rho: Vec<f64>,
    offset_radius: Vec<f64>,
    scaled_radius: Vec<f64>,
}

/// Iᵢⱼ and dIᵢⱼ/dr for distance r, offset radius `o` of atom i and scaled radius `s` of atom j.
fn born_integral(r: f64, o: f64, s: f64) -> (f64, f64) {
    if r + s < o {
        return (0.0, 0.0);
    }
    let u = r + s;
    let (l, dl) = if (r - s).abs() > o {
        ((r - s).abs(), (r - s).signum())
    } else {
        (o, 0.0)
    };
    let q = r - s * s / r;
    let inv = 1.0 / (u * u) - 1.0 / (l * l);
    let log = (l / u).ln();
    let value = 0.5 * (1.0 / l - 1.0 / u + 0.25 * q * inv + log / (2.0 * r));
    let derivative = 0.5
        * (-dl / (l * l)
            + 1.0 / (u * u)
            + 0.25 * (1.0 + s * s / (r * r)) * inv
            + 0.25 * q * (-2.0 / (u * u * u) + 2.0 * dl / (l * l * l))
            - log / (2.0 * r * r)
            + (dl / l - 1.0 / u) / (2.0 * r));
    (value, derivative)
}

impl GbObc {
    /// Parameters from the prmtop's RADII, SCREEN and charges (in e).
    pub fn from_prmtop(top: &Prmtop, charges: &[f64]) -> Self {
        let rho: Vec<f64> = top.gb_radii.iter().map(|r| r / 10.0).collect();
        let offset_radius: Vec<f64> = rho.iter().map(|r| r - OFFSET).collect();
        let scaled_radius = offset_radius
            .iter()
            .zip(&top.gb_screen)
            .map(|(o, s)| o * s)
            .collect();
        Self {
            charges: charges.to_vec(),
            rho,
            offset_radius,
            scaled_radius,
        }
    }

    /// Born radii Bᵢ of one conformation.
    pub fn born_radii(&self, x: &[[f64; 3]]) -> Vec<f64> {
        self.born(&Geometry::new(x)).0
    }

    /// Born radii Bᵢ, dBᵢ/dIᵢ, and dIᵢⱼ/dr for every ordered pair (row-major n × n).
    fn born(&self, geo: &Geometry) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let n = geo.n;
        let mut radii = Vec::with_capacity(n);
        let mut d_radii = Vec::with_capacity(n);
        let mut d_integral = vec![0.0; n * n];
        for i in 0..n {
            let o = self.offset_radius[i];
            let mut integral = 0.0;
            for j in (0..n).filter(|&j| j != i) {
                let (value, derivative) = born_integral(geo.r[i * n + j], o, self.scaled_radius[j]);
                integral += value;
                d_integral[i * n + j] = derivative;
            }
            let psi = integral * o;
            let t = (ALPHA * psi - BETA * psi * psi + GAMMA * psi.powi(3)).tanh();
            let b = 1.0 / (1.0 / o - t / self.rho[i]);
            radii.push(b);
            // dB/dI = B² (1 − tanh²)/ρ · (α − 2βψ + 3γψ²) · o
            d_radii.push(
                b * b * (1.0 - t * t) / self.rho[i]
                    * (ALPHA - 2.0 * BETA * psi + 3.0 * GAMMA * psi * psi)
                    * o,
            );
        }
        (radii, d_radii, d_integral)
    }

    /// Energies of one conformation (atoms × 3, nm); adds ∂E/∂x into `grad`.
    pub fn energy_and_grad(&self, x: &[[f64; 3]], grad: &mut [[f64; 3]]) -> GbEnergy {
        let n = x.len();
        let geo = Geometry::new(x);
        let kd = K_GB * (1.0 - 1.0 / EPS_SOLVENT);
        let (b, db_di, di_dr) = self.born(&geo);
        let q = &self.charges;
        let mut e = GbEnergy::default();
        // ∂E/∂Bᵢ accumulated from every term, then pushed through the Born radii.
        let mut de_db = vec![0.0; n];
        for i in 0..n {
            e.self_energy -= 0.5 * kd * q[i] * q[i] / b[i];
            de_db[i] += 0.5 * kd * q[i] * q[i] / (b[i] * b[i]);
            let ace = ACE * (self.rho[i] + PROBE).powi(2) * (self.rho[i] / b[i]).powi(6);
            e.ace += ace;
            de_db[i] -= 6.0 * ace / b[i];
        }
        for i in 0..n {
            for j in i + 1..n {
                let (d, r) = (geo.d[i * n + j], geo.r[i * n + j]);
                let r2 = r * r;
                let bb = b[i] * b[j];
                let ex = (-r2 / (4.0 * bb)).exp();
                let f = (r2 + bb * ex).sqrt();
                let qq = kd * q[i] * q[j];
                e.pair -= qq / f;
                // ∂E/∂f = qq/f²; ∂f/∂r · 1/r = (1 − ex/4)/f; ∂f/∂Bᵢ = Bⱼ ex (1 + r²/(4BᵢBⱼ)) / (2f).
                let de_df = qq / (f * f);
                let radial = de_df * (1.0 - 0.25 * ex) / f;
                for k in 0..3 {
                    grad[i][k] += radial * d[k];
                    grad[j][k] -= radial * d[k];
                }
                let common = de_df * ex * (1.0 + r2 / (4.0 * bb)) / (2.0 * f);
                de_db[i] += common * b[j];
                de_db[j] += common * b[i];
            }
        }
        // Chain rule through Iᵢ = Σⱼ Iᵢⱼ(rᵢⱼ).
        for i in 0..n {
            let c = de_db[i] * db_di[i];
            for j in (0..n).filter(|&j| j != i) {
                let s = c * di_dr[i * n + j] / geo.r[i * n + j];
                let d = geo.d[i * n + j];
                for k in 0..3 {
                    grad[i][k] += s * d[k];
                    grad[j][k] -= s * d[k];
                }
            }
        }
        e
    }
}

/// Pair displacements xᵢ − xⱼ and distances of one conformation, row-major n × n.
struct Geometry {
    n: usize,
    d: Vec<[f64; 3]>,
    r: Vec<f64>,
}

impl Geometry {
    fn new(x: &[[f64; 3]]) -> Self {
        let n = x.len();
        let mut d = vec![[0.0; 3]; n * n];
        let mut r = vec![0.0; n * n];
        for i in 0..n {
            for j in i + 1..n {
                let v = diff(x, i, j);
                let dist = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
                d[i * n + j] = v;
                d[j * n + i] = [-v[0], -v[1], -v[2]];
                r[i * n + j] = dist;
                r[j * n + i] = dist;
            }
        }
        Self { n, d, r }
    }
}

fn diff(x: &[[f64; 3]], i: usize, j: usize) -> [f64; 3] {
    [x[i][0] - x[j][0], x[i][1] - x[j][1], x[i][2] - x[j][2]]
}

//! FAB's internal-coordinate transform for alanine dipeptide (boltzgen `CompleteInternalCoordinateTransform`,
//! spec aldp-target.md §3): 66 Cartesian coordinates ↔ 60 normalised internal coordinates z, with
//! log|det| of the Jacobian and the reverse-mode product with it (for ∇_z log p).
//!
//! Layout of z: z[0], z[1] = the anchor bonds N–CA and C–CA, z[2] = the angle N–CA–C; then for
//! Z-matrix row r: z[3+3r] bond, z[4+3r] angle, z[5+3r] dihedral. Each is (value − mean)/std with
//! means taken from one reference structure; dihedral differences are wrapped to [−π, π).
//!
//! Dihedral sign: boltzgen's dihedral of a row equals minus the IUPAC torsion of
//! (atom, ref0, ref1, ref2); the reconstruction below is its exact inverse.
//!
//! z → x places CA at the origin, N on +x and C in the xy-plane (y > 0), then every other atom
//! from its references (NeRF). Its log|det| w.r.t. those 60 reduced Cartesian coordinates is
//! Σ_rows (2 ln b + ln|sin a|) + ln b₂ + Σ ln std, as in boltzgen (the exact marginal would also
//! carry b₁² b₂ sin t from the 6 discarded rigid-body coordinates; FAB leaves it out and so do we).

use std::f64::consts::PI;

use serde::Deserialize;

use crate::aldp::vec3::{add_to, angle, cross, dot, norm, scale, sub, torsion, unit_vjp, Vec3};
use crate::aldp::zmatrix::ZMatrix;
use crate::aldp::PrmtopError;

/// boltzgen's default normalisation scales, used when the means come from a single structure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DefaultStd {
    /// Bond lengths (nm).
    pub bond: f64,
    /// Bond angles (rad).
    pub angle: f64,
    /// Non-circular dihedrals (rad); circular dihedrals always get 1.
    pub dihedral: f64,
}

impl Default for DefaultStd {
    /// FAB's values: 0.005 nm, 0.15 rad, 0.2 rad.
    fn default() -> Self {
        Self {
            bond: 0.005,
            angle: 0.15,
            dihedral: 0.2,
        }
    }
}

/// Wraps an angle to [−π, π).
pub fn wrap_angle(a: f64) -> f64 {
    (a + PI).rem_euclid(2.0 * PI) - PI
}

/// The normalised internal-coordinate transform.
#[derive(Debug, Clone)]
pub struct InternalCoordinates {
    zmatrix: ZMatrix,
    mean: Vec<f64>,
    std: Vec<f64>,
    is_dihedral: Vec<bool>,
    log_std_sum: f64,
}

/// The shipped reference structure (fab-torch `position_min_energy.pt` as JSON, nm).
const POSITION_MIN_ENERGY: &str = include_str!("../../data/aldp/position_min_energy.json");

#[derive(Deserialize)]
struct ReferenceFile {
    positions_nm: Vec<[f64; 3]>,
}

/// Reads a reference structure from JSON with a `positions_nm` field (atoms × 3, nm).
pub fn parse_reference_json(text: &str, origin: &str) -> Result<Vec<Vec3>, PrmtopError> {
    let file: ReferenceFile = serde_json::from_str(text).map_err(|e| PrmtopError::Coordinates {
        origin: origin.to_string(),
        reason: format!("positions_nm: {e}"),
    })?;
    Ok(file.positions_nm)
}

impl InternalCoordinates {
    /// FAB's transform: alanine-dipeptide Z-matrix, means from fab-torch's minimum-energy structure,
    /// default stds.
    pub fn alanine_dipeptide() -> Self {
        let reference = parse_reference_json(POSITION_MIN_ENERGY, "position_min_energy.json")
            .expect("the shipped reference structure parses (checked by tests)");
        Self::from_reference(
            ZMatrix::alanine_dipeptide(),
            &reference,
            DefaultStd::default(),
        )
    }

    /// A transform whose means are the internal coordinates of `reference` (atoms × 3, nm).
    pub fn from_reference(zmatrix: ZMatrix, reference: &[Vec3], std: DefaultStd) -> Self {
        let dim = zmatrix.dim();
        let mut is_dihedral = vec![false; dim];
        let mut stds = vec![std.bond, std.bond, std.angle];
        for (r, row) in zmatrix.rows.iter().enumerate() {
            is_dihedral[5 + 3 * r] = true;
            let dih = if row.circular { 1.0 } else { std.dihedral };
            stds.extend([std.bond, std.angle, dih]);
        }
        let mut transform = Self {
            log_std_sum: stds.iter().map(|s| s.ln()).sum(),
            zmatrix,
            mean: vec![0.0; dim],
            std: stds,
            is_dihedral,
        };
        transform.mean = transform.raw(reference);
        transform
    }

    /// Dimension of z (60 for alanine dipeptide).
    pub fn dim(&self) -> usize {
        self.zmatrix.dim()
    }

    /// Number of atoms.
    pub fn n_atoms(&self) -> usize {
        self.zmatrix.n_atoms()
    }

    /// The Z-matrix.
    pub fn zmatrix(&self) -> &ZMatrix {
        &self.zmatrix
    }

    /// Means of the raw coordinates (nm, rad), in z layout.
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// Normalisation scales, in z layout.
    pub fn std(&self) -> &[f64] {
        &self.std
    }

    /// Indices of the circular (periodic, std 1) coordinates of z.
    pub fn circular_indices(&self) -> Vec<usize> {
        self.zmatrix.circular_indices()
    }

    /// Raw internal coordinates of `x` (bonds nm, angles and dihedrals rad), in z layout.
    pub fn raw(&self, x: &[Vec3]) -> Vec<f64> {
        let [ca, n, c] = self.zmatrix.anchors;
        let mut out = Vec::with_capacity(self.dim());
        out.push(norm(sub(x[n], x[ca])));
        out.push(norm(sub(x[c], x[ca])));
        out.push(angle(x[n], x[ca], x[c]));
        for row in &self.zmatrix.rows {
            let [p1, p2, p3] = row.refs.map(|a| x[a]);
            let xa = x[row.atom];
            out.push(norm(sub(xa, p1)));
            out.push(angle(p2, p1, xa));
            out.push(-torsion(xa, p1, p2, p3));
        }
        out
    }

    /// Cartesian → internal: writes z and returns log|det ∂z/∂x| (on the 60 reduced coordinates).
    pub fn to_internal(&self, x: &[Vec3], z: &mut [f64]) -> f64 {
        let raw = self.raw(x);
        for (k, v) in raw.iter().enumerate() {
            let d = v - self.mean[k];
            z[k] = if self.is_dihedral[k] {
                wrap_angle(d)
            } else {
                d
            } / self.std[k];
        }
        -self.log_det_raw(&raw)
    }

    /// log|det ∂x/∂z| given raw bonds and angles (dihedrals do not enter).
    fn log_det_raw(&self, raw: &[f64]) -> f64 {
        let mut ld = raw[1].ln() + self.log_std_sum;
        for r in 0..self.zmatrix.rows.len() {
            ld += 2.0 * raw[3 + 3 * r].ln() + raw[4 + 3 * r].sin().abs().ln();
        }
        ld
    }

    /// Internal → Cartesian: writes x (atoms × 3, nm) and returns log|det ∂x/∂z|.
    pub fn to_cartesian(&self, z: &[f64], x: &mut [Vec3]) -> f64 {
        let raw: Vec<f64> = (0..z.len())
            .map(|k| z[k] * self.std[k] + self.mean[k])
            .collect();
        let [ca, n, c] = self.zmatrix.anchors;
        x[ca] = [0.0; 3];
        x[n] = [raw[0], 0.0, 0.0];
        x[c] = [raw[1] * raw[2].cos(), raw[1] * raw[2].sin(), 0.0];
        for &r in &self.zmatrix.build_order {
            let row = &self.zmatrix.rows[r];
            let [p1, p2, p3] = row.refs.map(|a| x[a]);
            x[row.atom] = place(p1, p2, p3, raw[3 + 3 * r], raw[4 + 3 * r], raw[5 + 3 * r]).x;
        }
        self.log_det_raw(&raw)
    }

    /// Reverse pass of `to_cartesian` at (z, x = x(z)): writes grad_z = (∂x/∂z)ᵀ grad_x and, when
    /// `with_log_det`, adds ∇_z log|det ∂x/∂z|. `grad_x` is overwritten (used as scratch).
    pub fn pull_back(
        &self,
        z: &[f64],
        x: &[Vec3],
        grad_x: &mut [Vec3],
        grad_z: &mut [f64],
        with_log_det: bool,
    ) {
        let raw: Vec<f64> = (0..z.len())
            .map(|k| z[k] * self.std[k] + self.mean[k])
            .collect();
        let mut g_raw = vec![0.0; z.len()];
        for &r in self.zmatrix.build_order.iter().rev() {
            let row = &self.zmatrix.rows[r];
            let [i1, i2, i3] = row.refs;
            let placed = place(
                x[i1],
                x[i2],
                x[i3],
                raw[3 + 3 * r],
                raw[4 + 3 * r],
                raw[5 + 3 * r],
            );
            let adj = placed.vjp(grad_x[row.atom]);
            for (i, g) in [(i1, adj.p1), (i2, adj.p2), (i3, adj.p3)] {
                add_to(&mut grad_x[i], g, 1.0);
            }
            g_raw[3 + 3 * r] = adj.b;
            g_raw[4 + 3 * r] = adj.a;
            g_raw[5 + 3 * r] = adj.d;
        }
        let [_, n, c] = self.zmatrix.anchors;
        let (b2, t) = (raw[1], raw[2]);
        g_raw[0] = grad_x[n][0];
        g_raw[1] = grad_x[c][0] * t.cos() + grad_x[c][1] * t.sin();
        g_raw[2] = b2 * (-grad_x[c][0] * t.sin() + grad_x[c][1] * t.cos());
        if with_log_det {
            g_raw[1] += 1.0 / b2;
            for r in 0..self.zmatrix.rows.len() {
                let (b, a) = (raw[3 + 3 * r], raw[4 + 3 * r]);
                g_raw[3 + 3 * r] += 2.0 / b;
                g_raw[4 + 3 * r] += a.cos() / a.sin();
            }
        }
        for k in 0..z.len() {
            grad_z[k] = g_raw[k] * self.std[k];
        }
    }
}

/// One NeRF placement with its intermediates, kept for the reverse pass.
struct Placement {
    x: Vec3,
    v1: Vec3,
    v2: Vec3,
    c_len: f64,
    n: Vec3,
    w_len: f64,
    m: Vec3,
    v1_len: f64,
    u1: Vec3,
    s: Vec3,
    b: f64,
    sin_a: f64,
    cos_a: f64,
    sin_d: f64,
    cos_d: f64,
}

/// Adjoints of one placement w.r.t. its inputs.
struct PlacementAdjoint {
    p1: Vec3,
    p2: Vec3,
    p3: Vec3,
    b: f64,
    a: f64,
    d: f64,
}

/// Places an atom at bond b from p1, angle a (p2–p1–atom) and boltzgen dihedral d:
/// v1 = p1 − p2, v2 = p1 − p3, n = unit(v1 × v2), m = unit(v1 × n),
/// x = p1 + b sin a (n sin d + m cos d) − b cos a unit(v1).
fn place(p1: Vec3, p2: Vec3, p3: Vec3, b: f64, a: f64, d: f64) -> Placement {
    let (v1, v2) = (sub(p1, p2), sub(p1, p3));
    let c = cross(v1, v2);
    let c_len = norm(c);
    let n = scale(c, 1.0 / c_len);
    let w = cross(v1, n);
    let w_len = norm(w);
    let m = scale(w, 1.0 / w_len);
    let v1_len = norm(v1);
    let u1 = scale(v1, 1.0 / v1_len);
    let (sin_d, cos_d) = d.sin_cos();
    let (sin_a, cos_a) = a.sin_cos();
    let mut s = scale(n, sin_d);
    add_to(&mut s, m, cos_d);
    let mut x = p1;
    add_to(&mut x, s, b * sin_a);
    add_to(&mut x, u1, -b * cos_a);
    Placement {
        x,
        v1,
        v2,
        c_len,
        n,
        w_len,
        m,
        v1_len,
        u1,
        s,
        b,
        sin_a,
        cos_a,
        sin_d,
        cos_d,
    }
}

impl Placement {
    /// Vector-Jacobian product: given ∂L/∂x, the adjoints of p1, p2, p3, b, a, d.
    fn vjp(&self, gx: Vec3) -> PlacementAdjoint {
        let (alpha, beta) = (self.b * self.sin_a, self.b * self.cos_a);
        // x = p1 + α s − β u1
        let g_s = scale(gx, alpha);
        let g_alpha = dot(self.s, gx);
        let g_u1 = scale(gx, -beta);
        let g_beta = -dot(self.u1, gx);
        let g_b = self.sin_a * g_alpha + self.cos_a * g_beta;
        let g_a = beta * g_alpha - alpha * g_beta;
        // s = n sin d + m cos d (unit by construction, so boltzgen's extra normalisation has no effect)
        let mut g_n = scale(g_s, self.sin_d);
        let g_m = scale(g_s, self.cos_d);
        let g_d = self.cos_d * dot(self.n, g_s) - self.sin_d * dot(self.m, g_s);
        // m = unit(w), w = v1 × n
        let g_w = unit_vjp(self.m, self.w_len, g_m);
        let mut g_v1 = cross(self.n, g_w);
        add_to(&mut g_n, cross(g_w, self.v1), 1.0);
        // n = unit(c), c = v1 × v2
        let g_c = unit_vjp(self.n, self.c_len, g_n);
        add_to(&mut g_v1, cross(self.v2, g_c), 1.0);
        let g_v2 = cross(g_c, self.v1);
        // u1 = unit(v1)
        add_to(&mut g_v1, unit_vjp(self.u1, self.v1_len, g_u1), 1.0);
        // v1 = p1 − p2, v2 = p1 − p3
        let mut p1 = gx;
        add_to(&mut p1, g_v1, 1.0);
        add_to(&mut p1, g_v2, 1.0);
        PlacementAdjoint {
            p1,
            p2: scale(g_v1, -1.0),
            p3: scale(g_v2, -1.0),
            b: g_b,
            a: g_a,
            d: g_d,
        }
    }
}

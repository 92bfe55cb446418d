//! FAB's internal-coordinate transform for alanine dipeptide (boltzgen `CompleteInternalCoordinateTransform`,
//! spec aldp-target.md §3): 66 Cartesian coordinates ↔ 60 normalised internal coordinates z, with
//! log|det| of the Jacobian and the reverse-mode product with it (for ∇_z log p).
//!
//! Layout of z: z\[0\], z\[1\] = the anchor bonds N–CA and C–CA, z\[2\] = the angle N–CA–C; then for
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

use crate::molecule::coordinates::zmatrix::ZMatrix;
use crate::molecule::numeric::lanes::Lane;
use crate::molecule::numeric::vec3::{
    add_to, angle, cross, dot, norm, scale, sub, torsion, unit_vjp, Vec3,
};
use crate::molecule::PrmtopError;

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

/// What an internal coordinate measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum CoordinateKind {
    /// A bond length.
    Bond,
    /// A bond angle.
    Angle,
    /// A dihedral (torsion or improper).
    Dihedral,
}

impl CoordinateKind {
    /// The kind of z\[i\] in the layout above: z\[0\], z\[1\] bonds, z\[2\] an angle, then bond, angle,
    /// dihedral per Z-matrix row.
    pub fn of_index(i: usize) -> Self {
        match i {
            0 | 1 => Self::Bond,
            2 => Self::Angle,
            _ => [Self::Bond, Self::Angle, Self::Dihedral][(i - 3) % 3],
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
const POSITION_MIN_ENERGY: &str = include_str!("../../../data/aldp/position_min_energy.json");

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

    /// `f` of the Cartesian conformation of every row of a batch of z, in parallel over rows
    /// (one reconstruction buffer per rayon task).
    pub fn map_cartesian<T: Send>(
        &self,
        z: ndarray::ArrayView2<f64>,
        f: impl Fn(&[Vec3]) -> T + Sync,
    ) -> Vec<T> {
        use rayon::prelude::*;
        z.outer_iter()
            .into_par_iter()
            .map_init(
                || (vec![0.0; self.dim()], vec![[0.0; 3]; self.n_atoms()]),
                |(zr, x), row| {
                    zr.iter_mut().zip(row.iter()).for_each(|(d, &v)| *d = v);
                    self.to_cartesian(zr, x);
                    f(x)
                },
            )
            .collect()
    }

    /// Cartesian conformations of a batch of z as rows x₀, y₀, z₀, x₁, … (nm), in parallel over
    /// rows (the layout of MD frames and DCD files); rows of another width are an error.
    pub fn cartesian_of_rows(
        &self,
        z: ndarray::ArrayView2<f64>,
    ) -> fab_core::Result<ndarray::Array2<f64>> {
        fab_core::density::check_dim("internal coordinates", &z, self.dim())?;
        let flat: Vec<f64> = self.map_cartesian(z, |x| x.concat()).concat();
        ndarray::Array2::from_shape_vec((z.nrows(), 3 * self.n_atoms()), flat)
            .map_err(|e| fab_core::FabError::Backend(format!("Cartesian rows: {e}")))
    }

    /// The reverse of [`Self::map_cartesian`]: normalised internal coordinates z of a batch of
    /// Cartesian conformations (rows of 3 × atoms, nm; e.g. MD frames), in parallel over rows;
    /// rows of another width are an error.
    pub fn internal_of_rows(
        &self,
        x: ndarray::ArrayView2<f64>,
    ) -> fab_core::Result<ndarray::Array2<f64>> {
        fab_core::density::check_dim("Cartesian conformations", &x, 3 * self.n_atoms())?;
        let mut z = ndarray::Array2::zeros((x.nrows(), self.dim()));
        ndarray::Zip::from(z.rows_mut())
            .and(x.rows())
            .par_for_each(|mut zr, xr| {
                let atoms: Vec<Vec3> = (0..self.n_atoms())
                    .map(|a| [xr[3 * a], xr[3 * a + 1], xr[3 * a + 2]])
                    .collect();
                let mut out = vec![0.0; self.dim()];
                self.to_internal(&atoms, &mut out);
                zr.assign(&ndarray::ArrayView1::from(&out));
            });
        Ok(z)
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
    fn log_det_raw<S: Lane>(&self, raw: &[S]) -> S {
        let mut ld = raw[1].ln() + self.log_std_sum;
        for r in 0..self.zmatrix.rows.len() {
            let (b, a) = (raw[3 + 3 * r], raw[4 + 3 * r]);
            ld += b.ln() * 2.0 + a.sin_cos().0.abs().ln();
        }
        ld
    }

    /// Raw coordinates (nm, rad) of normalised z: z·std + mean.
    fn denormalise<S: Lane>(&self, z: &[S]) -> Vec<S> {
        z.iter()
            .zip(self.std.iter().zip(&self.mean))
            .map(|(&z, (&s, &m))| z * s + m)
            .collect()
    }

    /// Internal → Cartesian: writes x (atoms × 3, nm) and returns log|det ∂x/∂z|. Generic over
    /// [`Lane`]: with `S = X4` four conformations are built at once, one per SIMD lane.
    pub fn to_cartesian<S: Lane>(&self, z: &[S], x: &mut [[S; 3]]) -> S {
        let raw = self.denormalise(z);
        let zero = S::splat(0.0);
        let [ca, n, c] = self.zmatrix.anchors;
        x[ca] = [zero; 3];
        x[n] = [raw[0], zero, zero];
        let (sin_t, cos_t) = raw[2].sin_cos();
        x[c] = [raw[1] * cos_t, raw[1] * sin_t, zero];
        for &r in &self.zmatrix.build_order {
            let row = &self.zmatrix.rows[r];
            let [p1, p2, p3] = row.refs.map(|a| x[a]);
            x[row.atom] = place(p1, p2, p3, raw[3 + 3 * r], raw[4 + 3 * r], raw[5 + 3 * r]).x;
        }
        self.log_det_raw(&raw)
    }

    /// Reverse pass of `to_cartesian` at (z, x = x(z)): writes grad_z = (∂x/∂z)ᵀ grad_x and, when
    /// `with_log_det`, adds ∇_z log|det ∂x/∂z|. `grad_x` is overwritten (used as scratch).
    /// Generic over [`Lane`] as `to_cartesian`.
    pub fn pull_back<S: Lane>(
        &self,
        z: &[S],
        x: &[[S; 3]],
        grad_x: &mut [[S; 3]],
        grad_z: &mut [S],
        with_log_det: bool,
    ) {
        let raw = self.denormalise(z);
        let one = S::splat(1.0);
        let g_raw = grad_z;
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
                add_to(&mut grad_x[i], g, one);
            }
            g_raw[3 + 3 * r] = adj.b;
            g_raw[4 + 3 * r] = adj.a;
            g_raw[5 + 3 * r] = adj.d;
            if with_log_det {
                // ∂/∂b of 2 ln b and ∂/∂a of ln|sin a|.
                g_raw[3 + 3 * r] += S::splat(2.0) / placed.b;
                g_raw[4 + 3 * r] += placed.cos_a / placed.sin_a;
            }
        }
        let [_, n, c] = self.zmatrix.anchors;
        let (b2, (sin_t, cos_t)) = (raw[1], raw[2].sin_cos());
        g_raw[0] = grad_x[n][0];
        g_raw[1] = grad_x[c][0] * cos_t + grad_x[c][1] * sin_t;
        g_raw[2] = b2 * (-grad_x[c][0] * sin_t + grad_x[c][1] * cos_t);
        if with_log_det {
            g_raw[1] += one / b2;
        }
        // From raw to normalised coordinates: ∂/∂z = std · ∂/∂raw.
        g_raw
            .iter_mut()
            .zip(&self.std)
            .for_each(|(g, &s)| *g = *g * s);
    }
}

/// One NeRF placement with its intermediates, kept for the reverse pass.
struct Placement<S> {
    x: [S; 3],
    v1: [S; 3],
    v2: [S; 3],
    c_len: S,
    n: [S; 3],
    w_len: S,
    m: [S; 3],
    v1_len: S,
    u1: [S; 3],
    s: [S; 3],
    b: S,
    sin_a: S,
    cos_a: S,
    sin_d: S,
    cos_d: S,
}

/// Adjoints of one placement w.r.t. its inputs.
struct PlacementAdjoint<S> {
    p1: [S; 3],
    p2: [S; 3],
    p3: [S; 3],
    b: S,
    a: S,
    d: S,
}

/// Places an atom at bond b from p1, angle a (p2–p1–atom) and boltzgen dihedral d:
/// v1 = p1 − p2, v2 = p1 − p3, n = unit(v1 × v2), m = unit(v1 × n),
/// x = p1 + b sin a (n sin d + m cos d) − b cos a unit(v1).
#[inline(always)]
fn place<S: Lane>(p1: [S; 3], p2: [S; 3], p3: [S; 3], b: S, a: S, d: S) -> Placement<S> {
    let one = S::splat(1.0);
    let (v1, v2) = (sub(p1, p2), sub(p1, p3));
    let c = cross(v1, v2);
    let c_len = norm(c);
    let n = scale(c, one / c_len);
    let w = cross(v1, n);
    let w_len = norm(w);
    let m = scale(w, one / w_len);
    let v1_len = norm(v1);
    let u1 = scale(v1, one / v1_len);
    let (sin_d, cos_d) = d.sin_cos();
    let (sin_a, cos_a) = a.sin_cos();
    let mut s = scale(n, sin_d);
    add_to(&mut s, m, cos_d);
    let mut x = p1;
    add_to(&mut x, s, b * sin_a);
    add_to(&mut x, u1, -(b * cos_a));
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

impl<S: Lane> Placement<S> {
    /// Vector-Jacobian product: given ∂L/∂x, the adjoints of p1, p2, p3, b, a, d.
    #[inline(always)]
    fn vjp(&self, gx: [S; 3]) -> PlacementAdjoint<S> {
        let one = S::splat(1.0);
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
        add_to(&mut g_n, cross(g_w, self.v1), one);
        // n = unit(c), c = v1 × v2
        let g_c = unit_vjp(self.n, self.c_len, g_n);
        add_to(&mut g_v1, cross(self.v2, g_c), one);
        let g_v2 = cross(g_c, self.v1);
        // u1 = unit(v1)
        add_to(&mut g_v1, unit_vjp(self.u1, self.v1_len, g_u1), one);
        // v1 = p1 − p2, v2 = p1 − p3
        let mut p1 = gx;
        add_to(&mut p1, g_v1, one);
        add_to(&mut p1, g_v2, one);
        PlacementAdjoint {
            p1,
            p2: scale(g_v1, -one),
            p3: scale(g_v2, -one),
            b: g_b,
            a: g_a,
            d: g_d,
        }
    }
}

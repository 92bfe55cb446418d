//! Small 3-vector helpers shared by the force-field terms and the internal-coordinate transform,
//! with the vector-Jacobian products (adjoints) the transform's reverse pass needs. The basic
//! operations are generic over [`Lane`], so the force field can run them on SIMD lanes.

use crate::molecule::numeric::lanes::Lane;

/// A point or vector in R³ (nm).
pub type Vec3 = [f64; 3];

/// a − b.
pub fn sub<S: Lane>(a: [S; 3], b: [S; 3]) -> [S; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

/// a · b.
pub fn dot<S: Lane>(a: [S; 3], b: [S; 3]) -> S {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// a × b.
pub fn cross<S: Lane>(a: [S; 3], b: [S; 3]) -> [S; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

/// s a.
pub fn scale<S: Lane>(a: [S; 3], s: S) -> [S; 3] {
    [a[0] * s, a[1] * s, a[2] * s]
}

/// |a|.
pub fn norm<S: Lane>(a: [S; 3]) -> S {
    dot(a, a).sqrt()
}

/// g += s a.
pub fn add_to<S: Lane>(g: &mut [S; 3], a: [S; 3], s: S) {
    for d in 0..3 {
        g[d] += s * a[d];
    }
}

/// Adjoint of u = a/|a|: given ∂L/∂u and u, returns ∂L/∂a = (g − u (u·g))/|a|.
pub fn unit_vjp<S: Lane>(u: [S; 3], len: S, g: [S; 3]) -> [S; 3] {
    let ug = dot(u, g);
    let inv = S::splat(1.0) / len;
    [
        (g[0] - u[0] * ug) * inv,
        (g[1] - u[1] * ug) * inv,
        (g[2] - u[2] * ug) * inv,
    ]
}

/// IUPAC torsion angle of the atoms at a, b, c, d (rad, in (−π, π]); positive when, looking along
/// b→c, the bond c–d is rotated clockwise from a–b. This is the sign of mdtraj and OpenMM.
pub fn torsion(a: Vec3, b: Vec3, c: Vec3, d: Vec3) -> f64 {
    let (b1, b2, b3) = (sub(b, a), sub(c, b), sub(d, c));
    let (n1, n2) = (cross(b1, b2), cross(b2, b3));
    (norm(b2) * dot(b1, n2)).atan2(dot(n1, n2))
}

/// Angle a–b–c at b (rad, in [0, π]).
pub fn angle(a: Vec3, b: Vec3, c: Vec3) -> f64 {
    let (u, v) = (sub(a, b), sub(c, b));
    norm(cross(u, v)).atan2(dot(u, v))
}

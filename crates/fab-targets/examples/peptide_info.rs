//! What fab-rs derives from a molecule's topology: internal coordinates, circular ones (for the
//! flow's `circular` list), stereocentres, φ/ψ atoms, and the energy of the reference structure.
//!
//! `cargo run --release -p fab-targets --example peptide_info [PRMTOP COORDINATES]`
//! (default: the shipped alanine tetrapeptide).

use std::path::Path;

use fab_targets::molecule::Peptide;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let peptide = match args.as_slice() {
        [prmtop, coordinates] => Peptide::from_files(Path::new(prmtop), Path::new(coordinates))?,
        _ => Peptide::alanine_tetrapeptide(),
    };
    let transform = peptide.internal_coordinates()?;
    let zm = transform.zmatrix();
    let names = |atoms: &[usize]| -> Vec<String> {
        atoms
            .iter()
            .map(|&a| {
                format!(
                    "{}{}",
                    peptide.topology.atom_names[a], peptide.topology.residue_of[a]
                )
            })
            .collect()
    };
    println!(
        "atoms: {}, internal coordinates: {}",
        zm.n_atoms(),
        zm.dim()
    );
    println!(
        "anchors (origin, +x, plane): {:?} {:?}",
        zm.anchors,
        names(&zm.anchors)
    );
    println!("circular coordinates: {:?}", zm.circular_indices());
    for c in peptide.graph.stereocentres() {
        println!("stereocentre {} {:?}", c.centre, names(&[c.centre]));
    }
    let target = peptide.target(300.0, true)?;
    for r in target.residues() {
        println!("residue {}: phi {:?} psi {:?}", r.residue, r.phi, r.psi);
    }
    let x: Vec<f64> = peptide.reference.iter().flatten().copied().collect();
    let x = fab_targets::ndarray::Array2::from_shape_vec((1, x.len()), x)?;
    let (energy, _) = target.force_field().energies_and_forces(x.view())?;
    println!("reference energy: {:.4} kJ/mol", energy[0]);
    Ok(())
}

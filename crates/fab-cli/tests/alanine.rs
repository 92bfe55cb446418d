//! End-to-end checks of the alanine-dipeptide pipeline on a tiny configuration: `fab md` writes
//! and reuses its ground truth, FAB trains on the internal-coordinate target, `fab eval
//! --ground-truth` adds the KL divergences and plots, `fab sample` writes a PDB, and bad input
//! (wrong target, corrupt frames) fails cleanly with the file named.

use std::path::Path;
use std::process::{Command, Output};

fn fab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fab"))
        .args(args)
        .output()
        .expect("run fab")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `fab sample -n 3` of `run` as PDB into `dir` (three weighted models of `atoms` atoms each),
/// as CSV (coordinates, φ/ψ and normalised weights), as .npy (the same table) and as DCD (the
/// CSV's Cartesian coordinates, with a topology PDB and the weights beside it).
fn assert_three_pdb_models(dir: &Path, run: &str, atoms: usize) {
    // Three samples of `run` into `name` in `dir`; the file's text.
    let sample = |name: &str| {
        let out = dir.join(name);
        let o = fab(&[
            "sample",
            "--run",
            run,
            "-n",
            "3",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        String::from_utf8_lossy(&std::fs::read(&out).unwrap()).into_owned()
    };
    let text = sample("s.pdb");
    assert_eq!(text.matches("MODEL").count(), 3);
    assert_eq!(text.matches("\nATOM").count(), 3 * atoms);
    assert_eq!(text.matches("NORMALISED_WEIGHT").count(), 3);
    // The CSV of the same samples: internal and Cartesian coordinates, φ/ψ, weights summing to 1.
    let text = sample("s.csv");
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    for col in [
        "z0", "atom0_x", "phi_1", "psi_1", "log_q", "log_w", "weight",
    ] {
        assert!(header.contains(&col), "no column {col}: {header:?}");
    }
    assert!(header.contains(&format!("atom{}_z", atoms - 1).as_str()));
    let w = header.iter().position(|c| *c == "weight").unwrap();
    let total: f64 = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(w).unwrap().parse::<f64>().unwrap())
        .sum();
    assert!((total - 1.0).abs() < 1e-9, "weights sum to {total}");
    // The same seed as .npy: the CSV's numbers; its column names beside it.
    sample("s.npy");
    let table: ndarray::Array2<f64> = ndarray_npy::read_npy(dir.join("s.npy")).unwrap();
    let csv: Vec<Vec<f64>> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    assert_eq!(table.dim(), (3, header.len()));
    for (i, row) in csv.iter().enumerate() {
        for (j, v) in row.iter().enumerate() {
            let t = table[[i, j]];
            assert!(
                t == *v || (t.is_nan() && v.is_nan()),
                "({i}, {j}): {t} vs {v}"
            );
        }
    }
    let names = std::fs::read_to_string(dir.join("s.columns.txt")).unwrap();
    assert_eq!(names.lines().collect::<Vec<_>>(), header);
    // As DCD: the CSV's atom positions (f32 in Å), frame by frame, and its weights.
    sample("s.dcd");
    let traj = fab_targets::molecule::formats::dcd::read_dcd(
        &std::fs::read(dir.join("s.dcd")).unwrap(),
        "s.dcd",
    )
    .unwrap();
    assert_eq!(traj.dim(), (3, 3 * atoms));
    let x0 = header.iter().position(|c| *c == "atom0_x").unwrap();
    for (i, row) in csv.iter().enumerate() {
        for k in 0..3 * atoms {
            assert!(
                (traj[[i, k]] - row[x0 + k]).abs() < 1e-5,
                "frame {i}, column {k}"
            );
        }
    }
    let top = std::fs::read_to_string(dir.join("s.topology.pdb")).unwrap();
    assert_eq!(top.matches("\nATOM").count(), atoms);
    let weights = std::fs::read_to_string(dir.join("s.weights.csv")).unwrap();
    assert!(weights.starts_with("frame,log_q,log_w,weight"), "{weights}");
    assert_eq!(weights.lines().count(), 4);
}

/// Trains with `config`, then `fab eval --ground-truth gt` on `run`: eval.json, with every key
/// in `keys` finite.
fn train_and_eval_against(config: &str, run: &Path, gt: &str, keys: &[&str]) -> serde_json::Value {
    let o = fab(&["train", "--config", config]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = fab(&["eval", "--run", run.to_str().unwrap(), "--ground-truth", gt]);
    assert!(o.status.success(), "{}", stderr(&o));
    let eval: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("eval.json")).unwrap()).unwrap();
    for key in keys {
        assert!(
            eval[key].as_f64().is_some_and(f64::is_finite),
            "{key}: {}",
            eval[key]
        );
    }
    eval
}

fn tiny_config(run: &Path, length: f64) -> String {
    format!(
        r#"(
    target: AlanineDipeptide((
        ground_truth: (n_replicas: 2, t_max: 350.0, exchange_interval: 0.1, save_interval: 0.2,
                       equilibration: 1.0, length: {length}, seed: 1),
    )),
    flow: SplineCoupling((n_layers: 2, hidden_units: 8, hidden_layers: 1, init_seed: 0,
        spline: (bins: 4, bound: 5.0),
        circular: [5, 8, 17, 20, 23, 26, 29, 32, 44, 47, 50, 53], circular_shift: Random)),
    ais: (n_intermediate: 2, kernel: Hmc(n_leapfrog: 1, max_grad: 1000.0), init_step_size: 0.05),
    training: (seed: 3, batch_size: 16,
        buffer: (min_length: 32, max_length: 128, n_updates: 2, w_adjust_clip: Some(10.0)),
        optimizer: (lr: 1e-3), iterations: Fixed(2)),
    eval: (n_samples: 64, inner_batch: 32, n_test: 0, log_z_groups: 2),
    output: (dir: "{}", log_every: 1, n_evals: 0, checkpoint_every: 1),
    threads: Some(1),
)"#,
        run.display()
    )
}

#[test]
fn md_train_eval_and_pdb_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let gt = dir.path().join("gt");
    let config = dir.path().join("aldp.ron");
    std::fs::write(&config, tiny_config(&run, 4.0)).unwrap();
    let c = config.to_str().unwrap();
    let g = gt.to_str().unwrap();

    let o = fab(&["md", "--config", c, "--out", g]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in [
        "frames_z.npy",
        "frames_x.npy",
        "phi_psi.npy",
        "energy.npy",
        "md.json",
        "ramachandran.png",
        "frames.dcd",
        "frames.topology.pdb",
    ] {
        assert!(gt.join(f).exists(), "missing {f}");
    }
    // The DCD trajectory holds the frames of frames_x.npy (f32 in Å).
    let x: ndarray::Array2<f64> = ndarray_npy::read_npy(gt.join("frames_x.npy")).unwrap();
    let dcd = std::fs::read(gt.join("frames.dcd")).unwrap();
    let traj = fab_targets::molecule::formats::dcd::read_dcd(&dcd, "frames.dcd").unwrap();
    assert_eq!(traj.dim(), x.dim());
    assert!((&traj - &x).iter().all(|d| d.abs() < 1e-5));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(gt.join("md.json")).unwrap()).unwrap();
    assert_eq!(summary["frames"], 20);
    assert_eq!(summary["complete"], true);
    // Same settings: reused; other settings: run again.
    let o = fab(&["md", "--reuse", "--config", c, "--out", g]);
    assert!(
        o.status.success() && stderr(&o).contains("reusing"),
        "{}",
        stderr(&o)
    );
    let o = fab(&[
        "md",
        "--reuse",
        "--config",
        c,
        "--out",
        g,
        "--length-ps",
        "2",
    ]);
    assert!(
        o.status.success() && !stderr(&o).contains("reusing"),
        "{}",
        stderr(&o)
    );

    let r = run.to_str().unwrap();
    let eval = train_and_eval_against(
        c,
        &run,
        g,
        &[
            "kld_ramachandran_flow",
            "kld_phi_flow_reweighted",
            "population_phi_positive_ground_truth",
            "l_form_fraction_flow",
            "eval_ess_ais",
        ],
    );
    assert!(eval["kld_ramachandran_flow"].as_f64().unwrap() >= 0.0);
    assert!(run.join("ramachandran.png").exists() && run.join("phi.png").exists());

    assert_three_pdb_models(dir.path(), r, 22);

    // A corrupt frames file is named in the error.
    // (Evaluation maps the Cartesian frames into the run's own internal coordinates.)
    std::fs::write(gt.join("frames_x.npy"), b"not numpy").unwrap();
    let o = fab(&["eval", "--run", r, "--ground-truth", g]);
    assert!(
        !o.status.success() && stderr(&o).contains("frames_x.npy"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("panicked"));
}

#[test]
fn md_needs_an_alanine_config_with_consistent_temperatures() {
    let dir = tempfile::tempdir().unwrap();
    let gmm = dir.path().join("gmm.ron");
    std::fs::write(&gmm, "(target: Gmm40)").unwrap();
    let o = fab(&["md", "--config", gmm.to_str().unwrap()]);
    assert!(
        !o.status.success() && stderr(&o).contains("AlanineDipeptide"),
        "{}",
        stderr(&o)
    );
    let bad = dir.path().join("bad.ron");
    std::fs::write(&bad, "(target: AlanineDipeptide((temperature: 310.0)))").unwrap();
    let o = fab(&["md", "--config", bad.to_str().unwrap()]);
    let err = stderr(&o);
    assert!(
        !o.status.success() && err.contains("bad.ron") && err.contains("t_min"),
        "{err}"
    );
    assert!(!err.contains("panicked"));
}

#[test]
fn a_blown_up_or_empty_md_is_refused_not_cached() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    // A 20 fs step (20× too large for unconstrained hydrogens) blows the integration up.
    let text = tiny_config(&run, 4.0)
        .replace("exchange_interval: 0.1", "dt: 0.02, exchange_interval: 0.1");
    let config = dir.path().join("hot.ron");
    std::fs::write(&config, text).unwrap();
    let gt = dir.path().join("gt");
    let o = fab(&[
        "md",
        "--config",
        config.to_str().unwrap(),
        "--out",
        gt.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert!(
        !o.status.success() && err.contains("failed its checks"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(gt.join("md.json")).unwrap()).unwrap();
    assert_eq!(summary["complete"], false);
    // Neither reused nor accepted as ground truth.
    let o = fab(&[
        "md",
        "--reuse",
        "--config",
        config.to_str().unwrap(),
        "--out",
        gt.to_str().unwrap(),
    ]);
    assert!(!stderr(&o).contains("reusing"), "{}", stderr(&o));
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join("config.ron"), tiny_config(&run, 4.0)).unwrap();
    let o = fab(&[
        "eval",
        "--run",
        run.to_str().unwrap(),
        "--ground-truth",
        gt.to_str().unwrap(),
    ]);
    assert!(
        !o.status.success() && stderr(&o).contains("not a complete ground truth"),
        "{}",
        stderr(&o)
    );

    // A save interval longer than the run would save no frame: refused before running.
    let text = tiny_config(&run, 4.0).replace("save_interval: 0.2", "save_interval: 10.0");
    std::fs::write(&config, text).unwrap();
    let o = fab(&[
        "md",
        "--config",
        config.to_str().unwrap(),
        "--out",
        gt.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert!(
        !o.status.success() && err.contains("save_interval") && err.contains("no frame"),
        "{err}"
    );
}

/// `fab md` on a `Peptide` target (the shipped tetrapeptide): φ/ψ of each of the three residues,
/// per-residue populations in md.json; a tiny training run evaluated against those frames with
/// per-residue metrics, plots and marginal KLDs, and its samples as PDB; and a dipeptide run in
/// the same directory is not mistaken for it by `--reuse` (the molecule is part of the cache key).
#[test]
fn md_train_eval_and_pdb_of_a_peptide_per_residue() {
    let dir = tempfile::tempdir().unwrap();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fab-targets/data/tetrapeptide");
    let ground_truth = "ground_truth: (n_replicas: 2, t_max: 350.0, exchange_interval: 0.1, \
                        save_interval: 0.2, equilibration: 1.0, length: 2.0, seed: 1)";
    let config = dir.path().join("tetra.ron");
    std::fs::write(
        &config,
        format!(
            "(target: Peptide((prmtop: \"{}\", coordinates: \"{}\", {ground_truth})))",
            data.join("alanine-tetrapeptide.prmtop").display(),
            data.join("alanine-tetrapeptide.inpcrd").display()
        ),
    )
    .unwrap();
    let gt = dir.path().join("gt");
    let g = gt.to_str().unwrap();
    let o = fab(&["md", "--config", config.to_str().unwrap(), "--out", g]);
    assert!(o.status.success(), "{}", stderr(&o));
    let angles: ndarray::Array2<f64> = ndarray_npy::read_npy(gt.join("phi_psi.npy")).unwrap();
    assert_eq!(angles.dim(), (10, 6));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(gt.join("md.json")).unwrap()).unwrap();
    assert_eq!(
        summary["populations_by_residue"].as_array().unwrap().len(),
        3
    );
    assert_eq!(summary["complete"], true);

    // A tiny FAB run on it, judged against those frames per residue, and samples as PDB.
    let run = dir.path().join("run");
    let train = dir.path().join("train.ron");
    std::fs::write(
        &train,
        format!(
            r#"(
    target: Peptide((prmtop: "{}", coordinates: "{}", {ground_truth})),
    flow: SplineCoupling((n_layers: 2, hidden_units: 8, hidden_layers: 1, init_seed: 0,
        spline: (bins: 4, bound: 5.0),
        circular: [8, 11, 17, 23, 26, 32, 38, 41, 47, 53, 62, 83, 92, 104, 113],
        circular_shift: Random)),
    ais: (n_intermediate: 1, kernel: Hmc(n_leapfrog: 1, max_grad: 1000.0), init_step_size: 0.02),
    training: (seed: 3, batch_size: 16,
        buffer: (min_length: 32, max_length: 64, n_updates: 1, w_adjust_clip: Some(10.0)),
        optimizer: (lr: 1e-3), iterations: Fixed(1)),
    eval: (n_samples: 48, inner_batch: 16, n_test: 0, log_z_groups: 2),
    output: (dir: "{}", log_every: 1, n_evals: 0, checkpoint_every: 1),
    threads: Some(1),
)"#,
            data.join("alanine-tetrapeptide.prmtop").display(),
            data.join("alanine-tetrapeptide.inpcrd").display(),
            run.display()
        ),
    )
    .unwrap();
    let r = run.to_str().unwrap();
    let keys = [
        "kld_phi_flow_1",
        "kld_ramachandran_flow_reweighted_3",
        "population_alpha_r_ground_truth_se_2",
        "kld_marginals_all_mean_flow",
        "kld_marginals_dihedrals_mean_ais_reweighted",
    ];
    let eval = train_and_eval_against(train.to_str().unwrap(), &run, g, &keys);
    for key in keys {
        assert!(eval[key].as_f64().unwrap() >= 0.0, "{key}");
    }
    for png in [
        "ramachandran.png",
        "ramachandran_residue3.png",
        "phi_residue2.png",
    ] {
        assert!(run.join(png).exists(), "missing {png}");
    }
    let csv = std::fs::read_to_string(run.join("marginal_klds.csv")).unwrap();
    assert_eq!(csv.lines().count(), 121, "header + 120 coordinates");
    assert_three_pdb_models(dir.path(), r, 42);

    // The dipeptide with the same MD settings does not reuse the tetrapeptide's frames.
    let di = dir.path().join("di.ron");
    std::fs::write(&di, format!("(target: AlanineDipeptide(({ground_truth})))")).unwrap();
    let o = fab(&[
        "md",
        "--reuse",
        "--config",
        di.to_str().unwrap(),
        "--out",
        g,
    ]);
    assert!(
        o.status.success() && !stderr(&o).contains("reusing"),
        "{}",
        stderr(&o)
    );
    let angles: ndarray::Array2<f64> = ndarray_npy::read_npy(gt.join("phi_psi.npy")).unwrap();
    assert_eq!(angles.dim(), (10, 2));
}

#[test]
fn md_stops_on_sigterm_during_equilibration_and_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    // 1,000 ps of equilibration: hours unless the signal is honoured.
    let text = tiny_config(&run, 1.0).replace("equilibration: 1.0", "equilibration: 1000.0");
    let cfg = dir.path().join("md.ron");
    std::fs::write(&cfg, text).unwrap();
    let out = dir.path().join("md");
    let child = Command::new(env!("CARGO_BIN_EXE_fab"))
        .args([
            "md",
            "--config",
            cfg.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let sent = std::time::Instant::now();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(
        sent.elapsed().as_secs_f64() < 10.0,
        "took {:?}",
        sent.elapsed()
    );
    assert!(err.contains("interrupted"), "{err}");
}

#[test]
fn a_circular_entry_that_is_not_a_torsion_is_refused() {
    // Coordinate 0 of alanine dipeptide's internal coordinates is a bond length.
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let text = tiny_config(&run, 1.0).replace("circular: [5,", "circular: [0, 5,");
    let cfg = dir.path().join("c.ron");
    std::fs::write(&cfg, text).unwrap();
    let o = fab(&["train", "--config", cfg.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains("flow.circular") && err.contains("coordinate 0") && err.contains("c.ron"),
        "{err}"
    );
}

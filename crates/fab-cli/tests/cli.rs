//! End-to-end checks of the `fab` binary on a tiny configuration: training writes its files,
//! resuming reproduces an uninterrupted run bit for bit, and bad input gives a clear error
//! naming the file and field with a non-zero exit code (never a panic).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fab_core::checkpoint::Checkpoint;

fn tiny_config(dir: &Path, iterations: u64, hidden_per_dim: usize) -> String {
    format!(
        r#"(
    target: Gmm40,
    flow: RealNvp((n_layers: 2, hidden_units_per_dim: {hidden_per_dim}, hidden_layers: 2, init_seed: 3)),
    ais: (n_intermediate: 1, kernel: Metropolis(n_steps: 1), init_step_size: 5.0),
    training: (
        seed: 7,
        batch_size: 32,
        buffer: (min_length: 128, max_length: 512, n_updates: 2, w_adjust_clip: Some(10.0)),
        optimizer: (lr: 1e-3),
        iterations: Fixed({iterations}),
    ),
    eval: (n_samples: 200, inner_batch: 100, n_test: 200, log_z_groups: 4),
    output: (dir: "{}", log_every: 1, n_evals: 1, checkpoint_every: 2),
)"#,
        dir.display()
    )
}

/// A tiny run of 2 iterations trained into `dir`/run.
fn trained_tiny_run(dir: &Path) -> PathBuf {
    let run = dir.join("run");
    let cfg = write_config(dir, "c.ron", &tiny_config(&run, 2, 2));
    let o = fab(&["train", "--config", cfg.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    run
}

fn fab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fab"))
        .args(args)
        .output()
        .expect("run fab")
}

fn write_config(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_clean_failure(o: &Output, needles: &[&str]) {
    let err = stderr(o);
    assert!(!o.status.success(), "expected failure, got success: {err}");
    assert!(
        !err.contains("panicked"),
        "panic instead of an error: {err}"
    );
    for n in needles {
        assert!(err.contains(n), "error should mention `{n}`: {err}");
    }
}

/// Writes `text` as config `name` in `dir` and checks that `fab train` on it fails cleanly with
/// every needle in its error.
fn train_refuses(dir: &Path, name: &str, text: &str, needles: &[&str]) {
    let cfg = write_config(dir, name, text);
    assert_clean_failure(&fab(&["train", "--config", cfg.to_str().unwrap()]), needles);
}

fn flow_tensors(path: &Path) -> Vec<f64> {
    let ck = Checkpoint::read(path).unwrap();
    let mut out = Vec::new();
    for l in 0..2 {
        for name in ["hidden0.w", "hidden1.w", "shift.w", "scale.b"] {
            let key = format!("flow.layer{l}.{name}");
            out.extend(ck.tensor1_any(&key));
        }
    }
    out
}

trait AnyShape {
    fn tensor1_any(&self, name: &str) -> Vec<f64>;
}

impl AnyShape for Checkpoint {
    fn tensor1_any(&self, name: &str) -> Vec<f64> {
        for shape in [vec![1, 4], vec![4, 4], vec![4, 1], vec![1]] {
            if let Ok(t) = self.tensor(name, &shape) {
                return t.iter().copied().collect();
            }
        }
        panic!("no tensor {name}");
    }
}

#[test]
fn a_target_with_known_log_z_gets_its_error_plotted_against_time() {
    // Two in-training evaluations on the GMM (log Z = 0) give two log Z errors and their plot;
    // one evaluation gives no curve and no plot.
    let tmp = tempfile::tempdir().unwrap();
    for (n_evals, plotted) in [(2, true), (1, false)] {
        let run = tmp.path().join(format!("run{n_evals}"));
        let text = tiny_config(&run, 4, 2).replace("n_evals: 1", &format!("n_evals: {n_evals}"));
        let cfg = write_config(tmp.path(), &format!("c{n_evals}.ron"), &text);
        let out = fab(&["train", "--config", cfg.to_str().unwrap()]);
        assert!(out.status.success(), "{}", stderr(&out));
        let evals = std::fs::read_to_string(run.join("eval.jsonl")).unwrap();
        let maes = evals
            .lines()
            .filter(|l| l.contains("\"log_z_mae_flow\""))
            .count();
        assert_eq!(maes, n_evals, "{evals}");
        assert_eq!(run.join("log_z_mae_vs_time.png").exists(), plotted);
    }
}

#[test]
fn train_writes_results_and_resume_reproduces_an_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let cfg_a = write_config(tmp.path(), "a.ron", &tiny_config(&a, 6, 2));
    let out = fab(&["train", "--config", cfg_a.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    for f in [
        "checkpoint.safetensors",
        "config.ron",
        "metrics.csv",
        "eval.jsonl",
        "train_summary.json",
        "curves.png",
    ] {
        assert!(a.join(f).exists(), "missing {f}");
    }
    assert!(a.join("plots/samples_0000006.png").exists());
    let metrics = std::fs::read_to_string(a.join("metrics.csv")).unwrap();
    assert_eq!(metrics.lines().count(), 7, "header + one row per iteration");
    // Training wall time: a last column that never decreases, also in every evaluation row,
    // and the ESS-vs-time plot drawn from it.
    assert!(metrics.lines().next().unwrap().ends_with(",wall_seconds"));
    let wall: Vec<f64> = metrics
        .lines()
        .skip(1)
        .map(|l| l.rsplit(',').next().unwrap().parse().unwrap())
        .collect();
    assert!(
        wall.windows(2).all(|w| w[1] >= w[0]) && wall[0] >= 0.0,
        "{wall:?}"
    );
    let evals = std::fs::read_to_string(a.join("eval.jsonl")).unwrap();
    for line in evals.lines() {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(row["wall_seconds"].as_f64().is_some(), "{line}");
    }
    assert!(a.join("ess_vs_time.png").exists());

    // Refuses to overwrite a finished run.
    let again = fab(&["train", "--config", cfg_a.to_str().unwrap()]);
    assert_clean_failure(&again, &["already holds a checkpoint", "--resume"]);

    // Same run in two sessions: 3 iterations, then resume to 6.
    let cfg_b3 = write_config(tmp.path(), "b3.ron", &tiny_config(&b, 3, 2));
    assert!(fab(&["train", "--config", cfg_b3.to_str().unwrap()])
        .status
        .success());
    // As if the first session had been killed after logging past its checkpoint (iteration 3)
    // and while writing a row, and while writing a checkpoint.
    let mut torn = std::fs::read_to_string(b.join("metrics.csv")).unwrap();
    let row4 = torn.lines().last().unwrap().replacen('3', "4", 1);
    torn.push_str(&format!("{row4}\n5,0.1,"));
    std::fs::write(b.join("metrics.csv"), torn).unwrap();
    std::fs::write(b.join(".checkpoint-x1y2z3.partial"), b"half a checkpoint").unwrap();
    let cfg_b6 = write_config(tmp.path(), "b6.ron", &tiny_config(&b, 6, 2));
    let out = fab(&["train", "--config", cfg_b6.to_str().unwrap(), "--resume"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        flow_tensors(&a.join("checkpoint.safetensors")),
        flow_tensors(&b.join("checkpoint.safetensors"))
    );
    assert!(!b.join(".checkpoint-x1y2z3.partial").exists());
    let metrics_b = std::fs::read_to_string(b.join("metrics.csv")).unwrap();
    let iterations: Vec<&str> = metrics_b
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(
        iterations,
        ["1", "2", "3", "4", "5", "6"],
        "resumed metrics continue from the checkpoint: {metrics_b}"
    );

    // eval and sample work on the run.
    let out = fab(&["eval", "--run", a.to_str().unwrap(), "--n-samples", "100"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let eval: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("eval.json")).unwrap()).unwrap();
    assert!(eval["eval_ess_flow"].as_f64().unwrap() > 0.0);
    // --repeats 3 --seed 5 reports the mean and standard error of the evaluations with seeds
    // 5, 6 and 7, each as a single `--seed` evaluation gives it.
    let read_eval = || -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(a.join("eval.json")).unwrap()).unwrap()
    };
    let eval_args = ["eval", "--run", a.to_str().unwrap(), "--n-samples", "100"];
    let single: Vec<f64> = (5..8)
        .map(|seed| {
            let s = seed.to_string();
            let out = fab(&[&eval_args[..], &["--seed", &s]].concat());
            assert!(out.status.success(), "{}", stderr(&out));
            read_eval()["eval_ess_flow"].as_f64().unwrap()
        })
        .collect();
    let out = fab(&[&eval_args[..], &["--seed", "5", "--repeats", "3"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let repeated = read_eval();
    assert_eq!(repeated["eval_seeds"], serde_json::json!([5, 6, 7]));
    let mean = single.iter().sum::<f64>() / 3.0;
    let se = (single.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 2.0 / 3.0).sqrt();
    assert!((repeated["eval_ess_flow"].as_f64().unwrap() - mean).abs() < 1e-12);
    assert!((repeated["eval_ess_flow_se"].as_f64().unwrap() - se).abs() < 1e-12);
    assert!(
        se > 0.0,
        "different seeds give different evaluations: {single:?}"
    );
    let csv = tmp.path().join("s.csv");
    let out = fab(&[
        "sample",
        "--run",
        a.to_str().unwrap(),
        "-n",
        "50",
        "--out",
        csv.to_str().unwrap(),
        "--ais",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&csv).unwrap().lines().count(), 51);
    // Zero samples are refused with an error, with and without AIS.
    for extra in [&[][..], &["--ais"][..]] {
        let mut args = vec!["sample", "--run", a.to_str().unwrap(), "-n", "0"];
        args.extend(["--out", csv.to_str().unwrap()]);
        args.extend(extra);
        assert_clean_failure(&fab(&args), &["-n"]);
    }
}

#[test]
fn bad_configs_name_the_file_and_field() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let text = tiny_config(&run, 2, 2).replace("batch_size: 32", "bach_size: 32");
    train_refuses(tmp.path(), "typo.ron", &text, &["typo.ron", "bach_size"]);

    train_refuses(
        tmp.path(),
        "broken.ron",
        "(target: Gmm40, flow: ",
        &["broken.ron:1"],
    );

    let text = tiny_config(&run, 2, 2).replace("min_length: 128", "min_length: 16");
    train_refuses(
        tmp.path(),
        "small.ron",
        &text,
        &["small.ron", "training.buffer.min_length"],
    );

    assert_clean_failure(
        &fab(&["train", "--config", "no/such.ron"]),
        &["no/such.ron"],
    );

    // Settings that used to run with exit 0 and no learning, no result, or a hang: each refused
    // at load time with the file and field named.
    let base = tiny_config(&run, 2, 2);
    let cases = [
        (
            "threads0.ron",
            "output: (",
            "threads: Some(0), output: (",
            "threads",
        ),
        (
            "threads_huge.ron",
            "output: (",
            "threads: Some(100000), output: (",
            "threads",
        ),
        (
            "no_iterations.ron",
            "Fixed(2)",
            "Fixed(0)",
            "training.iterations",
        ),
        (
            "groups.ron",
            "log_z_groups: 4",
            "log_z_groups: 1000",
            "eval.log_z_groups",
        ),
        (
            "warmup.ron",
            "optimizer: (lr: 1e-3)",
            "optimizer: (lr: 1e-3, schedule: WarmupCosine(warmup_steps: 50))",
            "warmup_steps",
        ),
        (
            "alpha.ron",
            "seed: 7,",
            "seed: 7, alpha: 1e300,",
            "training.alpha",
        ),
        (
            "chunks.ron",
            "init_seed: 3)",
            "init_seed: 3, gradient_chunk_rows: 0)",
            "gradient_chunk_rows",
        ),
    ];
    for (name, from, to, field) in cases {
        assert!(base.contains(from), "{from}");
        train_refuses(tmp.path(), name, &base.replace(from, to), &[name, field]);
    }
    assert!(!run.join("checkpoint.safetensors").exists());
}

#[test]
fn missing_corrupt_and_foreign_checkpoints_are_rejected_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let run = trained_tiny_run(tmp.path());
    let ck = run.join("checkpoint.safetensors");

    // Missing checkpoint.
    let missing = tmp.path().join("nope.safetensors");
    assert_clean_failure(
        &fab(&[
            "eval",
            "--run",
            run.to_str().unwrap(),
            "--checkpoint",
            missing.to_str().unwrap(),
        ]),
        &["nope.safetensors", "not found"],
    );
    // Corrupt checkpoint.
    let corrupt = tmp.path().join("corrupt.safetensors");
    let bytes = std::fs::read(&ck).unwrap();
    std::fs::write(&corrupt, &bytes[..bytes.len() / 3]).unwrap();
    assert_clean_failure(
        &fab(&[
            "eval",
            "--run",
            run.to_str().unwrap(),
            "--checkpoint",
            corrupt.to_str().unwrap(),
        ]),
        &["corrupt.safetensors"],
    );
    // A checkpoint of another architecture (hidden width 3 per dim instead of 2).
    let other = tmp.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("config.ron"), tiny_config(&other, 2, 3)).unwrap();
    std::fs::copy(&ck, other.join("checkpoint.safetensors")).unwrap();
    assert_clean_failure(
        &fab(&["eval", "--run", other.to_str().unwrap()]),
        &[
            "checkpoint.safetensors",
            "other settings",
            "flow.RealNvp.hidden_units_per_dim: 2 ≠ 3",
        ],
    );
    // --resume with the config of another target names the settings that differ.
    let many_well = tiny_config(&run, 4, 2).replace("target: Gmm40", "target: ManyWell(dim: 2)");
    let cfg_mw = write_config(tmp.path(), "mw.ron", &many_well);
    assert_clean_failure(
        &fab(&["train", "--config", cfg_mw.to_str().unwrap(), "--resume"]),
        &["mw.ron", "checkpoint.safetensors", "target"],
    );
    // A flipped byte in the tensor data fails the checksum.
    let flipped = tmp.path().join("flipped.safetensors");
    let mut bad = bytes.clone();
    let at = bad.len() - 5;
    bad[at] ^= 0x04;
    std::fs::write(&flipped, &bad).unwrap();
    assert_clean_failure(
        &fab(&[
            "eval",
            "--run",
            run.to_str().unwrap(),
            "--checkpoint",
            flipped.to_str().unwrap(),
        ]),
        &["flipped.safetensors", "checksum", "damaged"],
    );
    // A NaN weight (in a well-formed file with a valid checksum) is refused by name.
    let mut nan = Checkpoint::read(&ck).unwrap();
    let name = "flow.layer0.hidden0.b";
    let mut values: Vec<f64> = nan.tensor1(name).unwrap().to_vec();
    values[1] = f64::NAN;
    nan.put_tensor(name, &[values.len()], values).unwrap();
    let nan_path = tmp.path().join("nan.safetensors");
    nan.write_atomic(&nan_path).unwrap();
    assert_clean_failure(
        &fab(&[
            "eval",
            "--run",
            run.to_str().unwrap(),
            "--checkpoint",
            nan_path.to_str().unwrap(),
        ]),
        &["nan.safetensors", name, "finite"],
    );
    // --resume with no checkpoint.
    let fresh = tmp.path().join("fresh");
    let cfg = write_config(tmp.path(), "f.ron", &tiny_config(&fresh, 2, 2));
    assert_clean_failure(
        &fab(&["train", "--config", cfg.to_str().unwrap(), "--resume"]),
        &["no checkpoint", "fresh"],
    );
}

#[test]
fn ctrl_c_and_sigterm_stop_training_cleanly_and_a_second_trainer_is_refused() {
    for signal in ["-INT", "-TERM"] {
        stop_with(signal);
    }
}

/// Starts a long run, checks that a second trainer on its directory is refused, sends `signal`
/// once it has logged a few rows, and checks the clean stop.
fn stop_with(signal: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let cfg = write_config(tmp.path(), "long.ron", &tiny_config(&run, 1_000_000, 2));
    let child = Command::new(env!("CARGO_BIN_EXE_fab"))
        .args(["train", "--config", cfg.to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until training has written a few metric rows, then send SIGINT.
    let metrics = run.join("metrics.csv");
    let started = std::time::Instant::now();
    while std::fs::read_to_string(&metrics)
        .map(|s| s.lines().count())
        .unwrap_or(0)
        < 5
    {
        assert!(started.elapsed().as_secs() < 120, "training did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // A second trainer on the same directory, fresh or resuming, is refused while the first
    // runs: its rows would interleave with the first one's.
    for extra in [&[][..], &["--resume"][..]] {
        let second = fab(&[&["train", "--config", cfg.to_str().unwrap()][..], extra].concat());
        assert_clean_failure(&second, &["in use by another `fab train`"]);
    }
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{signal}: {err}");
    assert!(err.contains("interrupted: checkpoint written"), "{err}");
    assert!(err.contains("--resume"), "{err}");
    let ck = Checkpoint::read(&run.join("checkpoint.safetensors")).unwrap();
    let state: serde_json::Value = ck.meta_json("trainer").unwrap();
    let it = state["iteration"].as_u64().unwrap();
    assert!((4..1_000_000).contains(&it), "stopped at iteration {it}");
    // One row per iteration, in order: nothing written by the refused second trainers.
    let rows: Vec<u64> = std::fs::read_to_string(&metrics)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(rows, (1..=rows.len() as u64).collect::<Vec<_>>());
}

#[test]
fn bench_reports_iteration_time_and_shares_that_add_up() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let cfg = write_config(tmp.path(), "b.ron", &tiny_config(&run, 10, 2));
    let args = [
        "bench",
        "--config",
        cfg.to_str().unwrap(),
        "--iterations",
        "3",
    ];
    let out = fab(&[&args[..], &["--warmup", "1"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("ms per iteration"), "{stdout}");
    let json: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let total = json["ms_per_iteration"].as_f64().unwrap();
    assert!(total > 0.0 && json["iterations"] == 3, "{json}");
    // The parts (flow, target, other) add up to the total; Metropolis AIS needs no input gradient.
    let parts: f64 = [
        "ms_flow_sample",
        "ms_flow_log_q",
        "ms_flow_log_q_grad",
        "ms_flow_train",
        "ms_target",
        "ms_other",
    ]
    .iter()
    .map(|k| json[*k].as_f64().unwrap())
    .sum();
    assert!(
        (parts - total).abs() < 1e-6 * total.max(1.0),
        "{parts} vs {total}"
    );
    assert!(json["ms_flow_train"].as_f64().unwrap() > 0.0);
    assert_eq!(json["ms_flow_log_q_grad"].as_f64().unwrap(), 0.0);
    // Benchmarking writes no run directory.
    assert!(!run.exists());
    assert_clean_failure(
        &fab(&[&args[..3], &["--iterations", "0"]].concat()),
        &["iterations"],
    );
}

#[test]
fn a_seed_gives_the_same_run_on_one_two_and_three_threads() {
    // Batches of 300 split into row chunks (per thread for log q and HMC's gradient, by batch
    // size for the parameter gradient); f32 flow, HMC and the buffer all take part.
    let tmp = tempfile::tempdir().unwrap();
    let mut tensors = Vec::new();
    for threads in [1, 2, 3] {
        let run = tmp.path().join(format!("t{threads}"));
        let text = tiny_config(&run, 4, 2)
            .replace("init_seed: 3)", "init_seed: 3, precision: F32)")
            .replace(
                "kernel: Metropolis(n_steps: 1), init_step_size: 5.0",
                "kernel: Hmc(n_leapfrog: 2, max_grad: 1000.0), init_step_size: 0.5",
            )
            .replace("batch_size: 32", "batch_size: 300")
            .replace(
                "min_length: 128, max_length: 512",
                "min_length: 600, max_length: 2400",
            )
            .replace("n_evals: 1", "n_evals: 0")
            .replace(
                "checkpoint_every: 2),",
                &format!("checkpoint_every: 2),\n    threads: Some({threads}),"),
            );
        let cfg = write_config(tmp.path(), &format!("t{threads}.ron"), &text);
        let out = fab(&["train", "--config", cfg.to_str().unwrap()]);
        assert!(out.status.success(), "{}", stderr(&out));
        let ck = Checkpoint::read(&run.join("checkpoint.safetensors")).unwrap();
        let mut all = flow_tensors(&run.join("checkpoint.safetensors"));
        all.extend(ck.tensor1("buffer.log_w").unwrap());
        tensors.push(all);
    }
    assert_eq!(tensors[0], tensors[1], "1 vs 2 threads");
    assert_eq!(tensors[0], tensors[2], "1 vs 3 threads");
}

#[test]
fn train_seed_overrides_the_training_and_flow_seeds() {
    // `fab train --seed K` (what `cargo xtask reproduce … --seeds N` runs): the saved config has
    // K for both seeds, the same K gives the same flow, another K another one.
    let tmp = tempfile::tempdir().unwrap();
    let mut flows = Vec::new();
    for (name, seed) in [("a", "5"), ("b", "5"), ("c", "6")] {
        let run = tmp.path().join(name);
        let cfg = write_config(
            tmp.path(),
            &format!("{name}.ron"),
            &tiny_config(&run, 2, 2).replace("n_evals: 1", "n_evals: 0"),
        );
        let out = fab(&["train", "--config", cfg.to_str().unwrap(), "--seed", seed]);
        assert!(out.status.success(), "{}", stderr(&out));
        let saved = std::fs::read_to_string(run.join("config.ron")).unwrap();
        // `seed: K` twice: training.seed and the flow's init_seed.
        assert_eq!(
            saved.matches(&format!("seed: {seed}")).count(),
            2,
            "{saved}"
        );
        flows.push(flow_tensors(&run.join("checkpoint.safetensors")));
    }
    assert_eq!(flows[0], flows[1]);
    assert_ne!(flows[0], flows[2]);
}

#[test]
fn sizes_beyond_memory_are_refused_with_the_setting_named() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    // A buffer of 10¹⁴ rows (2.4 PB) and an evaluation of 10¹⁴ samples.
    let huge = tiny_config(&run, 2, 2).replace("max_length: 512", "max_length: 100000000000000");
    train_refuses(tmp.path(), "huge.ron", &huge, &["buffer.max_length", "GiB"]);
    let huge = tiny_config(&run, 2, 2).replace("n_samples: 200", "n_samples: 100000000000000");
    train_refuses(tmp.path(), "eval.ron", &huge, &["eval.n_samples", "GiB"]);
    let huge = tiny_config(&run, 2, 2).replace("n_test: 200", "n_test: 100000000000000");
    train_refuses(tmp.path(), "test.ron", &huge, &["eval.n_test", "GiB"]);
    // Flows of 10¹⁸ layers, 4·10⁹-unit conditioners, 10¹² hidden layers: refused before any
    // tensor is allocated (these were capacity-overflow panics or allocation aborts).
    for (name, from, to) in [
        (
            "layers.ron",
            "n_layers: 2,",
            "n_layers: 1000000000000000000,",
        ),
        (
            "width.ron",
            "hidden_units_per_dim: 2,",
            "hidden_units_per_dim: 2000000000,",
        ),
        (
            "depth.ron",
            "hidden_layers: 2,",
            "hidden_layers: 1000000000000,",
        ),
    ] {
        let text = tiny_config(&run, 2, 2);
        assert!(text.contains(from), "{from}");
        train_refuses(
            tmp.path(),
            name,
            &text.replace(from, to),
            &[name, "flow", "GiB"],
        );
    }
    assert!(!run.join("checkpoint.safetensors").exists());
    // `fab sample -n` of 10¹⁵ on a trained run.
    let cfg = write_config(tmp.path(), "ok.ron", &tiny_config(&run, 2, 2));
    assert!(fab(&["train", "--config", cfg.to_str().unwrap()])
        .status
        .success());
    let sample = |n: &str, out: &Path| {
        let (run, out) = (run.to_str().unwrap(), out.to_str().unwrap());
        fab(&["sample", "--run", run, "-n", n, "--out", out])
    };
    let huge = sample("1000000000000000", &tmp.path().join("s.csv"));
    assert_clean_failure(&huge, &["-n", "GiB"]);
    // An output format it cannot write: refused before sampling, nothing written.
    let out = tmp.path().join("s.xyz");
    assert_clean_failure(&sample("10", &out), &["s.xyz", ".csv"]);
    assert!(!out.exists());
}

#[test]
fn sample_never_replaces_a_run_file_and_asks_before_replacing_any_file() {
    let tmp = tempfile::tempdir().unwrap();
    let run = trained_tiny_run(tmp.path());
    let log = std::fs::read(run.join("metrics.csv")).unwrap();
    let sample = |out: &Path, force: bool| {
        let mut args = vec!["sample", "--run", run.to_str().unwrap(), "-n", "5"];
        args.extend(["--out", out.to_str().unwrap()]);
        if force {
            args.push("--force");
        }
        fab(&args)
    };
    for force in [false, true] {
        let o = sample(&run.join("metrics.csv"), force);
        assert_clean_failure(&o, &["metrics.csv", "run directory"]);
    }
    assert_eq!(std::fs::read(run.join("metrics.csv")).unwrap(), log);
    let out = tmp.path().join("s.csv");
    assert!(sample(&out, false).status.success());
    assert_clean_failure(&sample(&out, false), &["s.csv", "--force"]);
    assert!(sample(&out, true).status.success());
}

#[test]
fn resume_refuses_a_metrics_log_that_is_not_the_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let two = write_config(tmp.path(), "two.ron", &tiny_config(&run, 2, 2));
    let four = write_config(tmp.path(), "four.ron", &tiny_config(&run, 4, 2));
    assert!(fab(&["train", "--config", two.to_str().unwrap()])
        .status
        .success());
    std::fs::write(run.join("metrics.csv"), "not,a,log\n1,2,3\n").unwrap();
    let o = fab(&["train", "--config", four.to_str().unwrap(), "--resume"]);
    assert_clean_failure(&o, &["metrics.csv", "header"]);
    // Nothing was appended, and the checkpoint still resumes once the log is moved away.
    assert_eq!(
        std::fs::read_to_string(run.join("metrics.csv")).unwrap(),
        "not,a,log\n1,2,3\n"
    );
    std::fs::remove_file(run.join("metrics.csv")).unwrap();
    let o = fab(&["train", "--config", four.to_str().unwrap(), "--resume"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn eval_refuses_no_samples_and_a_seed_range_past_the_last_seed() {
    let tmp = tempfile::tempdir().unwrap();
    let run = trained_tiny_run(tmp.path());
    let run = run.to_str().unwrap();
    assert_clean_failure(
        &fab(&["eval", "--run", run, "--n-samples", "0"]),
        &["--n-samples"],
    );
    assert_clean_failure(
        &fab(&["eval", "--run", run, "--seed", "18446744073709551615"]),
        &["--seed", "18446744073709551615"],
    );
    let o = fab(&[
        "eval",
        "--run",
        run,
        "--seed",
        "18446744073709551613",
        "--repeats",
        "2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn compare_counts_iterations_not_log_rows() {
    // Logged every 2 iterations for 6: three rows, six iterations.
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let text = tiny_config(&run, 6, 2).replace("log_every: 1", "log_every: 2");
    let cfg = write_config(tmp.path(), "c.ron", &text);
    assert!(fab(&["train", "--config", cfg.to_str().unwrap()])
        .status
        .success());
    let out = tmp.path().join("cmp");
    let o = fab(&[
        "compare",
        "--runs",
        run.to_str().unwrap(),
        "--at",
        "1000",
        "--window",
        "4",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("compare.json")).unwrap()).unwrap();
    let run0 = &doc["runs"][0];
    assert_eq!(run0["iterations"], 6, "{doc}");
    assert_eq!(run0["at"][0]["iterations"], 6, "{doc}");
    let md = std::fs::read_to_string(out.join("compare.md")).unwrap();
    assert!(md.contains("6 it"), "{md}");
}

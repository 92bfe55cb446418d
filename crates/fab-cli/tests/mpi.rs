//! The `fab` binary on several MPI ranks (built with `--features mpi`; needs Open MPI's
//! `mpirun`): the same run gives the same bits on 1, 2 and 3 ranks, over TCP and over shared
//! memory; a run resumes with another number of ranks; a killed rank ends the job and leaves the
//! checkpoint intact; an error every rank sees is reported once.
#![cfg(feature = "mpi")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Which transport between ranks on one host Open MPI uses.
#[derive(Clone, Copy)]
enum Transport {
    Tcp,
    SharedMemory,
}

fn tiny_gmm(dir: &Path, iterations: u64) -> String {
    // A batch of 600 rows in gradient chunks of 150: four chunks, so the ordered sum crosses
    // ranks (and on four ranks every rank holds one).
    format!(
        r#"(
    target: Gmm40,
    flow: RealNvp((n_layers: 2, hidden_units_per_dim: 4, hidden_layers: 2, init_seed: 3,
        gradient_chunk_rows: 150)),
    ais: (n_intermediate: 2, kernel: Hmc(n_leapfrog: 2, max_grad: 1000.0), init_step_size: 1.0),
    training: (seed: 7, batch_size: 600,
        buffer: (min_length: 1200, max_length: 4800, n_updates: 2, w_adjust_clip: Some(10.0)),
        optimizer: (lr: 1e-3), iterations: Fixed({iterations})),
    eval: (n_samples: 500, inner_batch: 250, n_test: 200, log_z_groups: 4),
    output: (dir: "{}", log_every: 1, n_evals: 2, checkpoint_every: 1),
    threads: Some(1),
)"#,
        dir.display()
    )
}

fn tiny_alanine(dir: &Path, iterations: u64) -> String {
    format!(
        r#"(
    target: AlanineDipeptide(()),
    flow: SplineCoupling((n_layers: 2, hidden_units: 8, hidden_layers: 1, init_seed: 0,
        spline: (bins: 4, bound: 5.0),
        circular: [5, 8, 17, 20, 23, 26, 29, 32, 44, 47, 50, 53], circular_shift: Random)),
    ais: (n_intermediate: 2, kernel: Hmc(n_leapfrog: 1, max_grad: 1000.0), init_step_size: 0.05),
    training: (seed: 3, batch_size: 520,
        buffer: (min_length: 1040, max_length: 2080, n_updates: 2, w_adjust_clip: Some(10.0)),
        optimizer: (lr: 1e-3), iterations: Fixed({iterations})),
    eval: (n_samples: 300, inner_batch: 150, n_test: 0, log_z_groups: 2),
    output: (dir: "{}", log_every: 1, n_evals: 1, checkpoint_every: 1),
    threads: Some(1),
)"#,
        dir.display()
    )
}

/// `fab ARGS` on `ranks` ranks (one rank: the plain binary, no mpirun).
fn fab_on(ranks: usize, transport: Transport, args: &[&str]) -> Output {
    let fab = env!("CARGO_BIN_EXE_fab");
    let mut cmd = if ranks == 1 {
        Command::new(fab)
    } else {
        let mut c = Command::new("mpirun");
        let btl = match transport {
            Transport::Tcp => "tcp,self",
            Transport::SharedMemory => "vader,self",
        };
        c.args(["--oversubscribe", "--mca", "btl", btl, "-np"])
            .arg(ranks.to_string())
            .arg(fab)
            // mpirun refuses root unless told (CI containers run as root).
            .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
            .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
        c
    };
    cmd.args(args)
        .output()
        .expect("run fab (is Open MPI's mpirun installed?)")
}

fn train(ranks: usize, transport: Transport, config: &Path, run: &Path, resume: bool) {
    let mut args = vec![
        "train",
        "--config",
        config.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
    ];
    if resume {
        args.push("--resume");
    }
    let out = fab_on(ranks, transport, &args);
    assert!(
        out.status.success(),
        "{ranks} ranks: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// metrics.csv without its wall-clock column (the last).
fn metrics(run: &Path) -> String {
    std::fs::read_to_string(run.join("metrics.csv"))
        .unwrap()
        .lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_string() + "\n")
        .collect()
}

/// eval.jsonl without wall times.
fn evaluations(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("eval.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("wall_seconds");
            v
        })
        .collect()
}

/// The checkpoint's tensor bytes (safetensors: an 8-byte header length, the JSON header with
/// the metadata, which holds the run directory and wall time, then the tensors).
fn tensors(run: &Path) -> Vec<u8> {
    let bytes = std::fs::read(run.join("checkpoint.safetensors")).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    bytes[8 + n..].to_vec()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Trains `config` on 1 to `max_ranks` ranks and checks that logs, evaluations and flow agree
/// bit for bit, then that `fab sample` on 3 ranks writes the file one process writes.
fn same_bits_on_1_to_n_ranks(
    transport: Transport,
    max_ranks: usize,
    config: impl Fn(&Path) -> String,
) {
    let tmp = tempfile::tempdir().unwrap();
    let runs: Vec<PathBuf> = (1..=max_ranks)
        .map(|r| tmp.path().join(format!("r{r}")))
        .collect();
    for (ranks, run) in (1..=max_ranks).zip(&runs) {
        let cfg = write(tmp.path(), &format!("c{ranks}.ron"), &config(run));
        train(ranks, transport, &cfg, run, false);
    }
    for (ranks, run) in (2..=max_ranks).zip(&runs[1..]) {
        assert_eq!(
            metrics(&runs[0]),
            metrics(run),
            "metrics.csv, {ranks} ranks"
        );
        assert_eq!(
            evaluations(&runs[0]),
            evaluations(run),
            "eval.jsonl, {ranks} ranks"
        );
        assert!(
            tensors(&runs[0]) == tensors(run),
            "checkpoint, {ranks} ranks"
        );
    }
    for (ranks, run) in [(1, &runs[0]), (3, &runs[2])] {
        let out = tmp.path().join(format!("s{ranks}.csv"));
        let o = fab_on(
            ranks,
            transport,
            &[
                "sample",
                "--run",
                run.to_str().unwrap(),
                "-n",
                "300",
                "--ais",
                "--seed",
                "5",
                "--out",
                out.to_str().unwrap(),
            ],
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let (s1, s3) = (
        std::fs::read(tmp.path().join("s1.csv")).unwrap(),
        std::fs::read(tmp.path().join("s3.csv")).unwrap(),
    );
    assert!(s1 == s3, "fab sample on 1 and 3 ranks");
}

#[test]
fn gmm_gives_the_same_bits_on_1_to_4_ranks_over_tcp() {
    same_bits_on_1_to_n_ranks(Transport::Tcp, 4, |run| tiny_gmm(run, 4));
}

#[test]
fn alanine_gives_the_same_bits_on_1_2_3_ranks_over_shared_memory() {
    same_bits_on_1_to_n_ranks(Transport::SharedMemory, 3, |run| tiny_alanine(run, 3));
}

#[test]
fn a_run_resumes_with_another_number_of_ranks() {
    // 2 iterations on 2 ranks, then resumed to 4 on 3 ranks: the run of 4 on one process.
    let tmp = tempfile::tempdir().unwrap();
    let (whole, split) = (tmp.path().join("whole"), tmp.path().join("split"));
    train(
        1,
        Transport::Tcp,
        &write(tmp.path(), "w.ron", &tiny_gmm(&whole, 4)),
        &whole,
        false,
    );
    let (first, rest) = (
        write(tmp.path(), "a.ron", &tiny_gmm(&split, 2)),
        write(tmp.path(), "b.ron", &tiny_gmm(&split, 4)),
    );
    train(2, Transport::SharedMemory, &first, &split, false);
    train(3, Transport::SharedMemory, &rest, &split, true);
    assert_eq!(metrics(&whole), metrics(&split));
    assert!(tensors(&whole) == tensors(&split));
}

#[test]
fn a_killed_rank_ends_the_job_and_the_checkpoint_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let cfg = write(tmp.path(), "long.ron", &tiny_alanine(&run, 100_000));
    let job = Command::new("mpirun")
        .args([
            "--oversubscribe",
            "-np",
            "3",
            env!("CARGO_BIN_EXE_fab"),
            "train",
            "--config",
        ])
        .arg(&cfg)
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for a few checkpointed iterations, then kill one rank's process.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while std::fs::read_to_string(run.join("metrics.csv")).map_or(0, |m| m.lines().count()) < 4 {
        assert!(std::time::Instant::now() < deadline, "no progress");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let pids = Command::new("pgrep")
        .args(["-f", &format!("fab train --config {}", cfg.display())])
        .output()
        .unwrap();
    let pids = String::from_utf8_lossy(&pids.stdout).into_owned();
    let victim = pids.lines().last().expect("rank processes");
    Command::new("kill")
        .args(["-KILL", victim])
        .status()
        .unwrap();
    let out = job.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("rank") && err.contains("signal 9"), "{err}");
    // The checkpoint is whole and the run continues on another number of ranks.
    let done = fab_core::checkpoint::Checkpoint::read(&run.join("checkpoint.safetensors")).unwrap();
    drop(done);
    let short = write(tmp.path(), "short.ron", &tiny_alanine(&run, 40));
    train(2, Transport::SharedMemory, &short, &run, true);
    assert_eq!(metrics(&run).lines().count(), 41);
}

#[test]
fn an_error_every_rank_sees_is_reported_once() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let text = tiny_gmm(&run, 2).replace("batch_size: 600", "bach_size: 600");
    let cfg = write(tmp.path(), "typo.ron", &text);
    let out = fab_on(
        3,
        Transport::SharedMemory,
        &["train", "--config", cfg.to_str().unwrap()],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(
        err.lines().filter(|l| l.contains("typo.ron")).count(),
        1,
        "{err}"
    );
    assert!(err.contains("bach_size"), "{err}");
}

#[test]
fn a_file_only_some_ranks_can_read_stops_every_rank_with_one_message() {
    // Rank 0 gets a readable config, ranks 1 and 2 a path that does not exist (as on a host
    // without the file): every rank stops, one message names the failed rank and the file.
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let good = write(tmp.path(), "good.ron", &tiny_gmm(&run, 2));
    let missing = tmp.path().join("missing.ron");
    let out = Command::new("timeout")
        .args([
            "120",
            "mpirun",
            "--oversubscribe",
            "-np",
            "1",
            env!("CARGO_BIN_EXE_fab"),
        ])
        .args(["train", "--config"])
        .arg(&good)
        .args([
            ":",
            "-np",
            "2",
            env!("CARGO_BIN_EXE_fab"),
            "train",
            "--config",
        ])
        .arg(&missing)
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert_ne!(out.status.code(), Some(124), "timed out (a hang): {err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("missing.ron")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains("rank 1"), "{err}");
    assert!(!run.join("checkpoint.safetensors").exists());
}

//! A sweep killed with SIGKILL after its first finished model resumes to exactly the result of
//! an uninterrupted run, reusing what was finished and leaving no temporary files; and the same
//! inputs give byte-identical output files run to run.

mod common;

use common::{fixture_model, scratch};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const FAMILIES: &[&str] = &["llama", "gemma2", "qwen2", "phi3"];

/// A suite valid for the fixtures' (shared) tokenizer, long enough that one model takes a
/// noticeable time, so that the sweep can be killed between two models.
fn write_suite(dir: &Path) -> PathBuf {
    let prompts = [
        "The teacher reads a",
        "The doctor writes the",
        "A river runs to the",
        "The garden has a",
    ];
    let text: String = (0..160)
        .map(|i| {
            format!(
                "{{\"id\":\"item{i}\",\"prompt\":\"{}\",\"target\":\" the\",\"distractor\":\" a\"}}\n",
                prompts[i % prompts.len()]
            )
        })
        .collect();
    let path = dir.join("suite.jsonl");
    std::fs::write(&path, text).unwrap();
    path
}

fn sweep_command(suite: &Path, out: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_strata"));
    cmd.arg("sweep").arg("--models");
    for f in FAMILIES {
        cmd.arg(fixture_model(f));
    }
    cmd.arg("--probe").arg(suite).arg("--out").arg(out);
    cmd
}

/// Runs a sweep to completion; returns its stderr.
fn sweep(suite: &Path, out: &Path) -> String {
    let o = sweep_command(suite, out).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(
        o.status.success(),
        "sweep into {} failed: {stderr}",
        out.display()
    );
    stderr
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Finished checkpoints (not temporaries) in `out/models`.
fn checkpoints(out: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(out.join("models")) else {
        return Vec::new();
    };
    let mut v: Vec<String> = rd
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".json") && !n.starts_with('.'))
        .collect();
    v.sort();
    v
}

/// Every file under `dir` whose name marks it as a temporary of an atomic write.
fn temporaries(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            found.extend(temporaries(&p));
        } else if e.file_name().to_string_lossy().contains(".tmp") {
            found.push(p);
        }
    }
    found
}

fn assert_same_outputs(a: &Path, b: &Path) {
    for f in ["models.csv", "layers.csv"] {
        assert!(
            read(&a.join(f)) == read(&b.join(f)),
            "{f} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
    let (ca, cb) = (checkpoints(a), checkpoints(b));
    assert_eq!(ca, cb);
    for c in &ca {
        assert!(
            read(&a.join("models").join(c)) == read(&b.join("models").join(c)),
            "checkpoint {c} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
}

#[test]
fn sweep_killed_after_a_finished_model_resumes_to_the_uninterrupted_result() {
    let root = scratch("kill");
    let suite = write_suite(&root);

    // Two uninterrupted runs: bit-identical output run to run.
    let (full, full2) = (root.join("full"), root.join("full2"));
    sweep(&suite, &full);
    sweep(&suite, &full2);
    assert_eq!(checkpoints(&full).len(), FAMILIES.len());
    assert_same_outputs(&full, &full2);

    // Killed with SIGKILL as soon as the first model's checkpoint appears.
    let killed = root.join("killed");
    let mut child = sweep_command(&suite, &killed)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if !checkpoints(&killed).is_empty() {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the sweep ended ({status}) before its first checkpoint appeared");
        }
        assert!(Instant::now() < deadline, "no checkpoint after 300 s");
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the sweep finished before it could be killed: give it more work (items, models)"
    );
    let pid = child.id();
    child.kill().unwrap(); // SIGKILL on Unix
    let status = child.wait().unwrap();
    assert!(
        !status.success() && status.code().is_none(),
        "not killed by a signal: {status}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "{status}");
    }
    let done_before_kill = checkpoints(&killed);
    assert!(
        !done_before_kill.is_empty() && done_before_kill.len() < FAMILIES.len(),
        "killed mid-sweep, yet finished checkpoints are {done_before_kill:?}"
    );
    assert!(
        !killed.join("models.csv").exists(),
        "tables written before the kill"
    );

    // What a kill between writing a checkpoint's temporary and renaming it leaves behind.
    let stale = killed.join("models").join(format!(".next.json.tmp-{pid}"));
    std::fs::write(&stale, b"{\"half\": ").unwrap();

    // Rerun: reuses what was finished, computes the rest, ends with the uninterrupted result.
    let stderr = sweep(&suite, &killed);
    let reused = stderr.matches("finished earlier, reusing").count();
    assert_eq!(
        reused,
        done_before_kill.len(),
        "stderr of the resumed run:\n{stderr}"
    );
    for c in &done_before_kill {
        assert!(stderr.contains(c.as_str()), "{c} not named as reused:\n{stderr}");
    }
    assert_same_outputs(&full, &killed);
    for dir in [&full, &full2, &killed] {
        let tmp = temporaries(dir);
        assert!(tmp.is_empty(), "temporary files left behind: {tmp:?}");
    }
}

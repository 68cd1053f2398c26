//! The documentation's walkthroughs, run exactly as written, so that they cannot drift from the
//! program.
//!
//! **The marker.** A fenced block whose opening line is ` ```sh tutorial ` (the info string `sh`,
//! then the word `tutorial`) is part of a walkthrough; every other block (` ```sh `, ` ```text `…)
//! is illustration and is not run. Comments inside a block (`#   record 1 committed…`) show
//! sample output and are ignored by the shell.
//!
//! **What runs.** The tutorial blocks of the files in [`WALKTHROUGH`], in that order and in the
//! order they appear in each file, in one `bash` with `set -euo pipefail`, so a variable a block
//! sets (`$PATIENT`, `$GRANT`) is there for the next block, as in a reader's shell. The shell starts
//! in a scratch folder holding copies of the repository's `config/` and `examples/` (what the
//! walkthroughs read), with the built `bmpls` first on `PATH`: the README's build step (`cargo build
//! --release` and its `export PATH`) is an unmarked block for that reason. The shell is the leader
//! of its own process group, and the whole group (the validators the walkthroughs start in the
//! background included) is killed when the run ends, whatever happened.
//!
//! **A failure** names the block (file and line of its opening fence), the command that failed with
//! its exit status, and everything the block printed.
//!
//! The walkthroughs use the local cluster's fixed loopback ports (7101–7104, 7201–7204,
//! 9101–9104), so two runs of this test on one machine at the same time collide.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The documents whose walkthroughs are run, in the order a reader follows them: each guide goes on
/// from the README's tour (its cluster, patient and carer).
const WALKTHROUGH: &[&str] = &[
    "README.md",
    "docs/formats.md",
    "docs/carers.md",
    "docs/operating.md",
];

/// Opening line of a walkthrough block.
const MARKER: &str = "```sh tutorial";

/// A hung command (a watch that never gets its alert) must fail the test, not stall CI. This
/// bounds the whole run; it is far above what the walkthroughs take, not a measurement.
const HANG_GUARD: Duration = Duration::from_secs(300);

/// Lines the generated script prints so that its output can be cut into blocks.
const BLOCK_TAG: &str = "@@tutorial block ";
const FAILED_TAG: &str = "@@tutorial failed ";
const DONE_TAG: &str = "@@tutorial done";

/// One walkthrough block: where it is and what it says.
#[derive(Debug, PartialEq, Eq)]
struct Block {
    /// `file:line` of the opening fence.
    name: String,
    text: String,
}

/// The tutorial blocks of one document, in order. An unclosed block is an error: it would
/// otherwise swallow the rest of the file silently.
fn blocks(file: &str, markdown: &str) -> Result<Vec<Block>, String> {
    let mut out = Vec::new();
    let mut open: Option<(usize, String)> = None;
    for (index, line) in markdown.lines().enumerate() {
        let trimmed = line.trim();
        match &mut open {
            None if trimmed == MARKER => open = Some((index + 1, String::new())),
            None => {}
            Some((start, text)) if trimmed == "```" => {
                out.push(Block {
                    name: format!("{file}:{start}"),
                    text: std::mem::take(text),
                });
                open = None;
            }
            Some((_, text)) => {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    match open {
        Some((start, _)) => Err(format!(
            "{file}:{start}: the tutorial block is never closed"
        )),
        None => Ok(out),
    }
}

/// The bash script that runs `blocks` in order and tags its output.
fn script(blocks: &[Block]) -> String {
    let mut s = String::from(
        "set -euo pipefail\n\
         __tutorial_block=none\n\
         trap '__tutorial_rc=$?; echo \"",
    );
    s.push_str(FAILED_TAG);
    s.push_str("in $__tutorial_block: $BASH_COMMAND (exit status $__tutorial_rc)\"' ERR\n");
    for block in blocks {
        s.push_str(&format!(
            "__tutorial_block='{0}'\necho '{BLOCK_TAG}{0}'\n{1}",
            block.name, block.text
        ));
    }
    s.push_str(&format!("echo '{DONE_TAG}'\n"));
    s
}

/// Kills a process group when dropped: the walkthrough's shell and everything it left running.
struct Group(u32);

impl Drop for Group {
    fn drop(&mut self) {
        let signal = |name: &str| {
            let _ = Command::new("kill")
                .args([name, "--", &format!("-{}", self.0)])
                .stderr(Stdio::null())
                .status();
        };
        // Validators stop gracefully on SIGTERM; a straggler is killed.
        signal("-TERM");
        std::thread::sleep(Duration::from_millis(500));
        signal("-KILL");
    }
}

/// Runs `blocks` in `dir` with `bin` first on `PATH`; on failure, the report names the block, the
/// command and the block's output.
fn run(blocks: &[Block], dir: &Path, bin: &Path) -> Result<(), String> {
    let log_path = dir.join("tutorial-output.log");
    let log = File::create(&log_path).map_err(|e| format!("creating the log: {e}"))?;
    let log2 = log.try_clone().map_err(|e| format!("the log: {e}"))?;
    let path = format!(
        "{}:{}",
        bin.parent().expect("the binary is in a folder").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(script(blocks))
        .current_dir(dir)
        .env("PATH", path)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("starting bash: {e}"))?;
    let group = Group(child.id());
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() > HANG_GUARD => break None,
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => return Err(format!("waiting for bash: {e}")),
        }
    };
    drop(group);
    let _ = child.wait();
    let output = std::fs::read_to_string(&log_path).unwrap_or_default();
    // The output of the block that ran last, from its tag on.
    let last = output
        .rfind(BLOCK_TAG)
        .map_or(&output[..], |at| &output[at..]);
    match status {
        Some(status) if status.success() && output.contains(DONE_TAG) => Ok(()),
        Some(status) => {
            let failed = output
                .lines()
                .find_map(|l| l.strip_prefix(FAILED_TAG))
                .map_or_else(|| format!("bash exited with {status}"), str::to_string);
            Err(format!(
                "the walkthrough failed {failed}\n--- output of the block ---\n{last}"
            ))
        }
        None => Err(format!(
            "the walkthrough still ran after {HANG_GUARD:?} (a command hangs)\n--- output of the block ---\n{last}"
        )),
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create folder");
    for entry in std::fs::read_dir(from).expect("read folder") {
        let entry = entry.expect("folder entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// The local cluster's ports must be free: a cluster left running (another run, a reader's
/// tour) would answer the walkthrough's commands with other certificates, a confusing failure.
fn ports_are_free() {
    for port in (7101..=7104).chain(7201..=7204) {
        if let Err(e) = std::net::UdpSocket::bind(("127.0.0.1", port)) {
            panic!("UDP port {port} is taken ({e}): stop the bmpls cluster that holds it first");
        }
    }
    for port in 9101..=9104 {
        if let Err(e) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            panic!("TCP port {port} is taken ({e}): stop the bmpls cluster that holds it first");
        }
    }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn the_walkthroughs_of_the_readme_and_docs_run_as_written() {
    let root = repo();
    let mut all = Vec::new();
    for file in WALKTHROUGH {
        let text = std::fs::read_to_string(root.join(file)).expect(file);
        let found = blocks(file, &text).unwrap_or_else(|e| panic!("{e}"));
        // A walkthrough whose marker was lost must fail here, not pass by running nothing.
        assert!(!found.is_empty(), "{file} has no {MARKER:?} block");
        all.extend(found);
    }
    // A guide with walkthrough blocks that is not in WALKTHROUGH would never run.
    for entry in std::fs::read_dir(root.join("docs")).expect("docs/") {
        let path = entry.expect("docs entry").path();
        let name = format!(
            "docs/{}",
            path.file_name().expect("a name").to_string_lossy()
        );
        if path.extension().is_some_and(|e| e == "md") && !WALKTHROUGH.contains(&name.as_str()) {
            let text = std::fs::read_to_string(&path).expect("read doc");
            assert!(
                blocks(&name, &text).expect("blocks").is_empty(),
                "{name} has tutorial blocks but is not in WALKTHROUGH"
            );
        }
    }
    ports_are_free();
    let dir = tempfile::tempdir().expect("temp dir");
    copy_dir(&root.join("config"), &dir.path().join("config"));
    copy_dir(&root.join("examples"), &dir.path().join("examples"));
    if let Err(report) = run(&all, dir.path(), Path::new(env!("CARGO_BIN_EXE_bmpls"))) {
        panic!("{report}");
    }
}

#[test]
fn tutorial_blocks_are_found_by_their_marker_only() {
    let doc = "intro\n```sh tutorial\nbmpls status\n# a comment\n```\n```sh\nnot run\n```\n\
               ```text\nnot run\n```\n  ```sh tutorial\n  echo indented\n  ```\n";
    assert_eq!(
        blocks("d.md", doc).expect("closed"),
        vec![
            Block {
                name: "d.md:2".into(),
                text: "bmpls status\n# a comment\n".into()
            },
            Block {
                name: "d.md:12".into(),
                text: "  echo indented\n".into()
            },
        ]
    );
    let error = blocks("d.md", "```sh tutorial\necho never closed\n").expect_err("unclosed");
    assert!(error.contains("d.md:1"), "{error}");
}

#[test]
fn a_failing_step_is_named_with_its_output_and_background_jobs_are_killed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let steps = vec![
        Block {
            name: "first.md:3".into(),
            text: "sleep 1000 &\necho $! > sleeper.pid\n".into(),
        },
        Block {
            name: "second.md:7".into(),
            text: "echo before the failure\nls no-such-file\necho never printed\n".into(),
        },
    ];
    let report = run(&steps, dir.path(), Path::new("/bin/true")).expect_err("a step fails");
    for part in [
        "in second.md:7",
        "ls no-such-file",
        "before the failure",
        "no-such-file",
    ] {
        assert!(report.contains(part), "{part:?} not in:\n{report}");
    }
    assert!(!report.contains("never printed"), "{report}");
    let pid = std::fs::read_to_string(dir.path().join("sleeper.pid")).expect("pid");
    // Gone, or a zombie whose parent (the shell) has exited: either way it no longer runs.
    let state = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
    let running = state
        .rsplit_once(") ")
        .is_some_and(|(_, rest)| !rest.starts_with('Z'));
    assert!(!running, "the background job {pid} still runs: {state}");
    assert!(run(&steps[..1], dir.path(), Path::new("/bin/true")).is_ok());
}

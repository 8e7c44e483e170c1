//! Where the bridge and its Python process run: on one CPU, together, unless told otherwise.
//!
//! Every hook and API call crosses from the bridge to Python and back: one process writes
//! and then waits for the other. With the two free to run anywhere, the scheduler puts the
//! woken one on another CPU, which is idle at that moment, and on a virtual machine waking an
//! idle virtual CPU is the slowest part of the call (`make bench` on our 2-CPU VM: the hop
//! through Python cost ~1.4–1.5 × a Go plugin's hook before anything ran in Python; on one
//! CPU, ~1.2 ×; docs/operations.md "Performance"). On one CPU the writer's wait hands the CPU
//! straight to the reader. What it costs: the pair never uses more than one CPU, which only
//! shows under many calls at once (`hook_64_in_flight`); `props.mmplug.cpu_placement` (or
//! [`PLACEMENT_ENV`]) `"any"` leaves both to the scheduler.
//!
//! The bridge gathers them once Python is ready, not before: Python's imports and the
//! bridge's start-up still run side by side (activation time). Python's threads started later
//! inherit the CPU from the thread that starts them.

use std::io;

use serde::Deserialize;

/// The server's environment variable that overrides `props.mmplug.cpu_placement`, for an
/// operator who cannot rebuild the bundle: `together` or `any`.
pub const PLACEMENT_ENV: &str = "MMPLUG_CPU_PLACEMENT";

/// Where the bridge and Python run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Placement {
    /// On one CPU: the one the bridge runs on when Python is ready.
    #[default]
    Together,
    /// Wherever the scheduler puts them (within the affinity the server gave the bridge).
    Any,
}

impl Placement {
    /// Reads a placement as plugin.json spells it (the serde names above), for
    /// [`PLACEMENT_ENV`].
    pub fn parse(text: &str) -> Option<Placement> {
        use serde::de::value::{Error, StrDeserializer};
        Placement::deserialize(StrDeserializer::<Error>::new(text)).ok()
    }
}

/// The bridge's affinity before its first [`gather`]: what a failed one goes back to.
static ORIGINAL: std::sync::OnceLock<libc::cpu_set_t> = std::sync::OnceLock::new();

/// Puts every thread of process `pid` and of the bridge on the CPU the calling thread runs on
/// now, and returns that CPU. Calling it again for a restarted Python puts the new one on the
/// same CPU. If the kernel refuses any of it, the threads of both go back to the affinity the
/// bridge had before its first gather (both are left to the scheduler) and the error is
/// returned.
pub fn gather(pid: u32) -> io::Result<usize> {
    let original = match ORIGINAL.get() {
        Some(set) => *set,
        None => {
            // SAFETY: a zeroed cpu_set_t is the empty set; sched_getaffinity writes at most
            // size_of::<cpu_set_t>() bytes into it.
            let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
            let size = std::mem::size_of::<libc::cpu_set_t>();
            if unsafe { libc::sched_getaffinity(0, size, &mut set) } != 0 {
                return Err(io::Error::last_os_error());
            }
            *ORIGINAL.get_or_init(|| set)
        }
    };
    // SAFETY: sched_getcpu has no preconditions.
    let cpu =
        usize::try_from(unsafe { libc::sched_getcpu() }).map_err(|_| io::Error::last_os_error())?;
    // SAFETY: a zeroed cpu_set_t is the empty set; CPU_SET checks the index against its size.
    let mut one: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    unsafe { libc::CPU_SET(cpu, &mut one) };
    let processes = [pid.to_string(), "self".to_string()];
    for process in &processes {
        if let Err(e) = place_threads(process, &one) {
            // Both, whichever failed: a bridge on one CPU without its Python gains nothing
            // (and may have been gathered with an earlier Python).
            for process in &processes {
                let _ = place_threads(process, &original);
            }
            return Err(e);
        }
    }
    Ok(cpu)
}

/// Sets the affinity of every thread of `/proc/{process}`.
fn place_threads(process: &str, set: &libc::cpu_set_t) -> io::Result<()> {
    // A thread not yet moved may start another meanwhile, which takes its old affinity: list
    // again until a listing shows no thread that was not moved. A thread started after that
    // starts from a moved one and takes the CPU from it.
    let mut moved = std::collections::HashSet::new();
    loop {
        let mut new = 0;
        for task in std::fs::read_dir(format!("/proc/{process}/task"))? {
            let Some(tid) = task?.file_name().to_str().and_then(|t| t.parse().ok()) else {
                continue;
            };
            if !moved.insert(tid) {
                continue;
            }
            new += 1;
            match set_affinity(tid, set) {
                // The thread ended since the listing.
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
                other => other?,
            }
        }
        if new == 0 {
            return Ok(());
        }
    }
}

fn set_affinity(tid: libc::pid_t, set: &libc::cpu_set_t) -> io::Result<()> {
    // SAFETY: `set` is an initialized cpu_set_t of the size passed.
    if unsafe { libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), set) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn affinity() -> Vec<usize> {
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        assert_eq!(
            unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) },
            0
        );
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
            .collect()
    }

    #[test]
    fn parses_what_the_manifest_and_the_environment_spell() {
        assert_eq!(Placement::parse("together"), Some(Placement::Together));
        assert_eq!(Placement::parse("any"), Some(Placement::Any));
        assert_eq!(Placement::parse("Together"), None);
        assert_eq!(Placement::parse(""), None);
        assert_eq!(Placement::default(), Placement::Together);
    }

    /// The `Cpus_allowed_list` of `/proc/{path}/status`.
    fn allowed_of(path: &str) -> String {
        let status = std::fs::read_to_string(format!("/proc/{path}/status")).unwrap();
        let line = status
            .lines()
            .find(|l| l.starts_with("Cpus_allowed_list:"))
            .unwrap();
        line.split_whitespace().nth(1).unwrap().to_string()
    }

    #[test]
    fn gather_puts_every_thread_of_both_processes_on_this_cpu() {
        // gather pins every thread of the calling process, so it runs in a process of its own:
        // this test binary again, with only the case below selected.
        if std::env::var_os("MMPLUG_CPU_GATHER_CHILD").is_none() {
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "cpu::tests::gather_puts_every_thread_of_both_processes_on_this_cpu",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("MMPLUG_CPU_GATHER_CHILD", "1")
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{text}");
            assert!(
                text.contains("gathered on cpu"),
                "the child ran no check: {text}"
            );
            return;
        }
        let before = affinity();
        let idle = std::thread::spawn(|| std::thread::sleep(std::time::Duration::from_secs(30)));
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let cpu = gather(child.id()).unwrap();
        assert!(before.contains(&cpu), "{cpu} not in {before:?}");
        assert_eq!(allowed_of("self"), cpu.to_string());
        for task in std::fs::read_dir("/proc/self/task").unwrap() {
            let tid = task.unwrap().file_name().into_string().unwrap();
            assert_eq!(
                allowed_of(&format!("self/task/{tid}")),
                cpu.to_string(),
                "thread {tid}"
            );
        }
        assert_eq!(allowed_of(&child.id().to_string()), cpu.to_string());
        let later = std::thread::spawn(affinity).join().unwrap();
        assert_eq!(later, vec![cpu], "a thread started later inherits the CPU");
        // Again, as for a restarted Python: the same CPU.
        assert_eq!(gather(child.id()).unwrap(), cpu);
        child.kill().unwrap();
        child.wait().unwrap();
        // A Python the kernel cannot move (here: gone) puts the bridge back where it was
        // before its first gather.
        let gone = gather(child.id()).unwrap_err();
        assert_eq!(gone.kind(), io::ErrorKind::NotFound, "{gone}");
        assert_eq!(affinity(), before, "a failed gather puts the bridge back");
        drop(idle);
        println!("gathered on cpu {cpu}");
    }
}

//! Which Python runs the plugin, and with which packages.
//!
//! Two kinds of bundle:
//! - **Offline bundles** (`mmplug bundle`) carry every dependency as wheels in
//!   `python/wheels/` with an `index.json` (`{"python_versions": [...], "requirements": [...],
//!   "wheels": {file: sha256}}`). We pick the newest interpreter on PATH the bundle has wheels
//!   for, and unpack the wheels that suit it into `<bundle>/.mmplug/envs/<key>/`, once: the key
//!   hashes the index (so the wheels' contents) and the interpreter's version and platform. The
//!   server installs nothing from the network; it needs only a bare `python3.X`.
//! - **Development bundles** use a plugin-local `venv/` (or `.venv/`), else `python3` on PATH,
//!   with the packages already installed there.
//!
//! Either way the interpreter is probed first (`wheelenv.py probe`), so a missing or too-old
//! Python is an activation error that says what to install, not an import error later. The
//! answer is kept in `<bundle>/.mmplug/probes/` (see [`probe_cached`]): a probe is a Python
//! start of its own, ~35 ms of every activation otherwise.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::process::Command;

use crate::python::{find_interpreter, on_path, scrubbed_env};

/// The oldest Python the SDK supports.
pub const MIN_PYTHON: (u32, u32) = (3, 10);

/// Where an offline bundle keeps its wheels, relative to the bundle directory.
pub const WHEELS_DIR: &str = "python/wheels";

/// The helper script run by the server's interpreter (stdlib only).
const WHEELENV_PY: &str = include_str!("wheelenv.py");

/// How long probing one interpreter may take (a cold start on a loaded server is well under 1 s).
const PROBE_TIMEOUT: Duration = Duration::from_secs(15);

/// How long unpacking the wheels may take.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(300);

/// The interpreter to run and the directory of unpacked wheels to put on `PYTHONPATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonSetup {
    pub interpreter: PathBuf,
    /// `Some` for offline bundles.
    pub site: Option<PathBuf>,
}

/// Why no Python could be set up; each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum PyEnvError {
    #[error(transparent)]
    Find(#[from] crate::python::PythonError),
    #[error(
        "{interpreter} is Python {found}; mmplug needs Python {}.{} or newer: install it (e.g. `apt install python3.11` on Debian/Ubuntu) or ship a venv in the bundle",
        MIN_PYTHON.0,
        MIN_PYTHON.1
    )]
    TooOld { interpreter: PathBuf, found: String },
    #[error("cannot run {interpreter} to check its version: {message}")]
    Probe {
        interpreter: PathBuf,
        message: String,
    },
    #[error("cannot read the bundle's wheel index {path}: {message}")]
    Index { path: PathBuf, message: String },
    #[error(
        "no Python the bundle has wheels for: it has wheels for Python {wanted}; {found}. Install one of those (e.g. `apt install python{newest}` on Debian/Ubuntu) so that `python{newest}` is on the server's PATH"
    )]
    NoMatchingPython {
        wanted: String,
        newest: String,
        found: String,
    },
    #[error("cannot set up the plugin's Python packages in {dir}: {message}")]
    Install { dir: PathBuf, message: String },
}

#[derive(Debug, Deserialize)]
struct WheelIndex {
    python_versions: Vec<String>,
    /// Wheel file name in `python/wheels/` → its SHA-256 (checked by wheelenv.py).
    #[serde(default)]
    wheels: std::collections::BTreeMap<String, String>,
}

/// Whether `name` names a file directly inside the wheels directory: the index comes with the
/// bundle, and a name with a path in it would have the helper read a file outside.
fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\\', '\0'])
}

/// What `wheelenv.py probe` reports.
#[derive(Debug, Clone, Deserialize, Serialize)]
struct Probe {
    version: Vec<u32>,
    implementation: String,
    machine: String,
    glibc: Option<Vec<u32>>,
}

impl Probe {
    fn major_minor(&self) -> (u32, u32) {
        (
            self.version.first().copied().unwrap_or(0),
            self.version.get(1).copied().unwrap_or(0),
        )
    }

    fn display(&self) -> String {
        self.version
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(".")
    }
}

/// Finds and, for offline bundles, prepares the plugin's Python. `path_var` is the server's PATH.
pub async fn prepare(dir: &Path, path_var: Option<&OsStr>) -> Result<PythonSetup, PyEnvError> {
    prepare_with(dir, path_var, Reach::Full)
        .await?
        .ok_or_else(|| PyEnvError::Probe {
            interpreter: dir.to_path_buf(),
            message: "the Python setup was left undecided".into(),
        })
}

/// What [`prepare`] would answer, when an earlier activation already did all its work (the
/// interpreter's probe is kept and an offline bundle's wheels are unpacked): no process is
/// started and nothing is written, so the bridge may call it before its handshake and start
/// Python at once. None whenever `prepare` would have more to do, or would fail.
pub async fn prepare_known(dir: &Path, path_var: Option<&OsStr>) -> Option<PythonSetup> {
    prepare_with(dir, path_var, Reach::Known)
        .await
        .ok()
        .flatten()
}

/// How far [`prepare_with`] may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// Only what earlier activations left: an answer (`Some`) or none, never a process.
    Known,
    /// Probe and unpack as needed: always an answer or an error.
    Full,
}

async fn prepare_with(
    dir: &Path,
    path_var: Option<&OsStr>,
    reach: Reach,
) -> Result<Option<PythonSetup>, PyEnvError> {
    let index_path = dir.join(WHEELS_DIR).join("index.json");
    if index_path.is_file() {
        return prepare_offline(dir, &index_path, path_var, reach).await;
    }
    let interpreter = find_interpreter(dir, path_var)?;
    let Some(probe) = probe_cached(dir, &interpreter, reach).await? else {
        return Ok(None);
    };
    if probe.major_minor() < MIN_PYTHON {
        return Err(PyEnvError::TooOld {
            interpreter,
            found: probe.display(),
        });
    }
    Ok(Some(PythonSetup {
        interpreter,
        site: None,
    }))
}

async fn prepare_offline(
    dir: &Path,
    index_path: &Path,
    path_var: Option<&OsStr>,
    reach: Reach,
) -> Result<Option<PythonSetup>, PyEnvError> {
    let index_err = |message: String| PyEnvError::Index {
        path: index_path.to_path_buf(),
        message,
    };
    let index_bytes = std::fs::read(index_path).map_err(|e| index_err(e.to_string()))?;
    let index: WheelIndex =
        serde_json::from_slice(&index_bytes).map_err(|e| index_err(e.to_string()))?;
    let mut wanted: Vec<(u32, u32)> = index
        .python_versions
        .iter()
        .map(|v| parse_version(v).ok_or_else(|| index_err(format!("bad Python version {v:?}"))))
        .collect::<Result<_, _>>()?;
    wanted.sort_unstable_by(|a, b| b.cmp(a));
    wanted.dedup();
    if wanted.is_empty() {
        return Err(index_err("python_versions is empty".into()));
    }
    if let Some(bad) = index.wheels.keys().find(|n| !is_plain_file_name(n)) {
        return Err(index_err(format!(
            "the wheel name {bad:?} is not a file name inside {WHEELS_DIR}"
        )));
    }

    // Newest first: python3.13, python3.12, ..., then plain python3.
    let mut names: Vec<String> = wanted
        .iter()
        .map(|(a, b)| format!("python{a}.{b}"))
        .collect();
    names.push("python3".into());
    let mut seen = Vec::new();
    let mut found = Vec::new();
    for name in &names {
        let Some(path) = on_path(name, path_var) else {
            continue;
        };
        let canonical = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if seen.contains(&canonical) {
            continue;
        }
        seen.push(canonical);
        match probe_cached(dir, &path, reach).await {
            // Not probed before: only a full prepare may find out.
            Ok(None) => return Ok(None),
            Ok(Some(p)) if p.implementation == "cpython" && wanted.contains(&p.major_minor()) => {
                let site = install(dir, index_path, &index_bytes, &path, &p, reach).await?;
                return Ok(site.map(|site| PythonSetup {
                    interpreter: path,
                    site: Some(site),
                }));
            }
            Ok(Some(p)) => found.push(format!(
                "{} is {} {}",
                path.display(),
                p.implementation,
                p.display()
            )),
            // A shim that is not really installed (pyenv) answers with an error: not a Python.
            Err(e) if reach == Reach::Full => {
                found.push(format!("{} does not run ({e})", path.display()));
            }
            Err(_) => return Ok(None),
        }
    }
    let versions: Vec<String> = wanted.iter().map(|(a, b)| format!("{a}.{b}")).collect();
    let found = if found.is_empty() {
        format!("PATH has none of {}", names.join(", "))
    } else {
        format!("found: {}", found.join("; "))
    };
    Err(PyEnvError::NoMatchingPython {
        newest: versions[0].clone(),
        wanted: versions.join(", "),
        found,
    })
}

/// Unpacks the wheels for `interpreter` unless an earlier activation already did (with
/// [`Reach::Known`], None instead of unpacking).
async fn install(
    dir: &Path,
    index_path: &Path,
    index_bytes: &[u8],
    interpreter: &Path,
    probe: &Probe,
    reach: Reach,
) -> Result<Option<PathBuf>, PyEnvError> {
    let mut hasher = Sha256::new();
    hasher.update(index_bytes);
    hasher.update(
        format!(
            "\0{}\0{}\0{}\0{:?}",
            probe.implementation,
            probe.display(),
            probe.machine,
            probe.glibc
        )
        .as_bytes(),
    );
    let key = hex::encode(&hasher.finalize()[..8]);
    let envs = dir.join(".mmplug").join("envs");
    let site = envs.join(&key);
    if site.join("mmplug-env.json").is_file() {
        return Ok(Some(site));
    }
    if reach == Reach::Known {
        return Ok(None);
    }
    let install_err = |message: String| PyEnvError::Install {
        dir: envs.clone(),
        message,
    };
    // The environment is written inside the bundle only: a `.mmplug` or `envs` that is a
    // symbolic link (which the server's unpacking would not create, but another installer
    // might) would send the unpacked wheels elsewhere.
    for d in [dir.join(".mmplug"), envs.clone()] {
        if std::fs::symlink_metadata(&d).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(install_err(format!(
                "{} is a symbolic link; the unpacked wheels must stay inside the bundle",
                d.display()
            )));
        }
    }
    std::fs::create_dir_all(&envs).map_err(|e| install_err(e.to_string()))?;
    // Unpack next to the final place, then rename: a crash mid-way leaves only a temp dir, and
    // two bridges racing (a restart while the old one winds down) both end with a whole env.
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{key}-"))
        .tempdir_in(&envs)
        .map_err(|e| install_err(e.to_string()))?;
    let out = run_wheelenv(
        interpreter,
        &[
            OsStr::new("install"),
            dir.join(WHEELS_DIR).as_os_str(),
            index_path.as_os_str(),
            tmp.path().as_os_str(),
        ],
        INSTALL_TIMEOUT,
    )
    .await
    .map_err(install_err)?;
    crate::log::log(
        crate::log::Level::Info,
        "set up the plugin's Python packages from the bundle's wheels",
        &[
            ("dir", site.display().to_string()),
            ("result", out.trim().to_string()),
        ],
    );
    let tmp = tmp.keep();
    if let Err(e) = std::fs::rename(&tmp, &site) {
        let _ = std::fs::remove_dir_all(&tmp);
        if !site.join("mmplug-env.json").is_file() {
            return Err(install_err(e.to_string()));
        }
    }
    Ok(Some(site))
}

/// [`probe`], answered from `<bundle>/.mmplug/probes/<key>.json` when an earlier launch
/// probed the same interpreter. The key hashes what would change the answer: the
/// interpreter's real path and its file's identity (device, inode, size, change time), and the
/// dynamic linker's cache (`/etc/ld.so.cache`, rewritten whenever shared libraries such as
/// glibc are installed or upgraded). Only successful answers are kept; a cache that cannot be
/// read or written is passed over (the bundle directory may be read-only).
async fn probe_cached(
    dir: &Path,
    interpreter: &Path,
    reach: Reach,
) -> Result<Option<Probe>, PyEnvError> {
    let cache = probe_key(interpreter).and_then(|key| {
        let mmplug = dir.join(".mmplug");
        let probes = mmplug.join("probes");
        // Never through a symbolic link: what is written stays inside the bundle.
        let linked = [&mmplug, &probes]
            .iter()
            .any(|d| std::fs::symlink_metadata(d).is_ok_and(|m| m.file_type().is_symlink()));
        (!linked).then(|| (probes.clone(), probes.join(format!("{key}.json"))))
    });
    if let Some((_, file)) = &cache
        && let Ok(text) = std::fs::read(file)
        && let Ok(known) = serde_json::from_slice::<Probe>(&text)
    {
        return Ok(Some(known));
    }
    if reach == Reach::Known {
        return Ok(None);
    }
    let probed = probe(interpreter).await?;
    if let Some((probes, file)) = cache
        && let Ok(text) = serde_json::to_vec(&probed)
    {
        // Written aside, then renamed: a concurrent reader sees the whole answer or none.
        let _ = std::fs::create_dir_all(&probes).and_then(|()| {
            let mut tmp = tempfile::NamedTempFile::new_in(&probes)?;
            std::io::Write::write_all(&mut tmp, &text)?;
            tmp.persist(&file).map(drop).map_err(|e| e.error)
        });
    }
    Ok(Some(probed))
}

/// The cache key of [`probe_cached`], or None when the interpreter cannot be looked at.
fn probe_key(interpreter: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let real = std::fs::canonicalize(interpreter).ok()?;
    let meta = std::fs::metadata(&real).ok()?;
    let mut hasher = Sha256::new();
    hasher.update(real.as_os_str().as_encoded_bytes());
    let identity = |m: &std::fs::Metadata| {
        format!(
            "\0{}\0{}\0{}\0{}.{}",
            m.dev(),
            m.ino(),
            m.size(),
            m.ctime(),
            m.ctime_nsec()
        )
    };
    hasher.update(identity(&meta).as_bytes());
    if let Ok(linker) = std::fs::metadata("/etc/ld.so.cache") {
        hasher.update(identity(&linker).as_bytes());
    }
    Some(hex::encode(&hasher.finalize()[..8]))
}

async fn probe(interpreter: &Path) -> Result<Probe, PyEnvError> {
    let err = |message: String| PyEnvError::Probe {
        interpreter: interpreter.to_path_buf(),
        message,
    };
    let out = run_wheelenv(interpreter, &[OsStr::new("probe")], PROBE_TIMEOUT)
        .await
        .map_err(err)?;
    serde_json::from_str(out.trim()).map_err(|e| err(format!("unexpected answer {out:?}: {e}")))
}

/// Runs `interpreter -I -c WHEELENV_PY args...` in the scrubbed environment; stdout on success,
/// stderr's message otherwise.
async fn run_wheelenv(
    interpreter: &Path,
    args: &[&OsStr],
    timeout: Duration,
) -> Result<String, String> {
    // The plugin's own opt-ins (props.mmplug.env) are for the plugin, not for this helper.
    let env = scrubbed_env(std::env::vars_os(), &[]);
    let child = Command::new(interpreter)
        .arg("-I")
        .arg("-c")
        .arg(WHEELENV_PY)
        .args(args)
        .env_clear()
        .envs(env)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = match tokio::time::timeout(timeout, child).await {
        Err(_) => return Err(format!("no answer within {timeout:?}")),
        Ok(Err(e)) => return Err(e.to_string()),
        Ok(Ok(out)) => out,
    };
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let message = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim_start_matches("error: ")
        .to_string();
    Err(if message.is_empty() {
        format!("exited with {}", out.status)
    } else {
        message
    })
}

fn parse_version(v: &str) -> Option<(u32, u32)> {
    let (a, b) = v.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;
    use std::os::unix::fs::PermissionsExt;

    /// Writes a wheel (a zip) with the given members, using the machine's Python's zipfile.
    fn write_wheel(dir: &Path, filename: &str, members: &[(&str, &str)]) -> String {
        let path = dir.join(filename);
        let script = "import sys, zipfile, json\n\
            with zipfile.ZipFile(sys.argv[1], 'w') as z:\n\
            \x20   for name, text in json.loads(sys.argv[2]):\n\
            \x20       z.writestr(name, text)\n";
        let members = serde_json::to_string(members).unwrap();
        let status = std::process::Command::new("python3")
            .args(["-c", script])
            .arg(&path)
            .arg(members)
            .status()
            .unwrap();
        assert!(status.success());
        hex::encode(Sha256::digest(std::fs::read(&path).unwrap()))
    }

    /// A wheel in a test bundle: file name, the requirement it satisfies, its members.
    type TestWheel<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);

    fn bundle(files: &[TestWheel<'_>], versions: &[&str]) -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        let wheels = tmp.path().join(WHEELS_DIR);
        std::fs::create_dir_all(&wheels).unwrap();
        let mut hashes = serde_json::Map::new();
        let mut requirements = Vec::new();
        for (filename, requirement, members) in files {
            let sha = write_wheel(&wheels, filename, members);
            hashes.insert(filename.to_string(), sha.into());
            requirements.push(requirement.to_string());
        }
        let index = serde_json::json!({
            "format": 1,
            "python_versions": versions,
            "requirements": requirements,
            "wheels": hashes,
        });
        std::fs::write(wheels.join("index.json"), index.to_string()).unwrap();
        tmp
    }

    fn this_python() -> String {
        let out = std::process::Command::new("python3")
            .args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    fn path_var() -> OsString {
        std::env::var_os("PATH").unwrap()
    }

    #[tokio::test]
    async fn offline_bundle_unpacks_the_wheels_once_and_puts_them_first() {
        let v = this_python();
        let tmp = bundle(
            &[
                (
                    "demo_pkg-1.0-py3-none-any.whl",
                    "demo-pkg==1.0",
                    &[
                        ("demo_pkg/__init__.py", "VALUE = 42\n"),
                        ("demo_pkg-1.0.data/purelib/demo_extra.py", "X = 1\n"),
                        ("demo_pkg-1.0.data/scripts/tool", "#!/bin/sh\n"),
                    ],
                ),
                // Not for this machine: never unpacked.
                (
                    "other-2.0-cp27-cp27m-win32.whl",
                    "other==2.0; sys_platform == 'win32'",
                    &[("other.py", "")],
                ),
            ],
            &[&v],
        );
        let setup = prepare(tmp.path(), Some(&path_var())).await.unwrap();
        let site = setup
            .site
            .clone()
            .expect("an offline bundle gets a site dir");
        assert!(site.starts_with(tmp.path().join(".mmplug/envs")));
        assert_eq!(
            std::fs::read_to_string(site.join("demo_pkg/__init__.py")).unwrap(),
            "VALUE = 42\n"
        );
        assert!(
            site.join("demo_extra.py").is_file(),
            "purelib merges into the root"
        );
        assert!(!site.join("tool").exists() && !site.join("other.py").exists());
        // The second activation reuses it; nothing else is left in envs/.
        let marker = site.join("mmplug-env.json");
        let before = std::fs::metadata(&marker).unwrap().modified().unwrap();
        let again = prepare(tmp.path(), Some(&path_var())).await.unwrap();
        assert_eq!(again, setup);
        assert_eq!(
            std::fs::metadata(&marker).unwrap().modified().unwrap(),
            before
        );
        let entries: Vec<_> = std::fs::read_dir(tmp.path().join(".mmplug/envs"))
            .unwrap()
            .collect();
        assert_eq!(entries.len(), 1, "no temp dirs left behind");
    }

    /// A development bundle whose `venv/bin/python3` runs the real one and counts its runs.
    fn counting_venv() -> (tempfile::TempDir, PathBuf) {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let bin = tmp.path().join("venv/bin");
        std::fs::create_dir_all(&bin).unwrap();
        let runs = tmp.path().join("runs");
        let real = on_path("python3", Some(&path_var())).unwrap();
        let script = bin.join("python3");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho run >> '{}'\nexec '{}' \"$@\"\n",
                runs.display(),
                real.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        (tmp, runs)
    }

    fn run_count(runs: &Path) -> usize {
        std::fs::read_to_string(runs).map_or(0, |t| t.lines().count())
    }

    #[tokio::test]
    async fn the_probe_is_kept_until_the_interpreter_changes() {
        use std::os::unix::fs::PermissionsExt;
        let (tmp, runs) = counting_venv();
        let first = prepare(tmp.path(), Some(&path_var())).await.unwrap();
        assert_eq!(run_count(&runs), 1);
        let again = prepare(tmp.path(), Some(&path_var())).await.unwrap();
        assert_eq!(again, first);
        assert_eq!(run_count(&runs), 1, "the second activation probed again");
        let kept: Vec<_> = std::fs::read_dir(tmp.path().join(".mmplug/probes"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(kept.len(), 1, "{kept:?}");
        // A changed interpreter file (here its mode; a reinstall alike) is probed anew.
        let script = tmp.path().join("venv/bin/python3");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
        prepare(tmp.path(), Some(&path_var())).await.unwrap();
        assert_eq!(run_count(&runs), 2);
        // A kept answer that does not parse is probed over.
        for entry in std::fs::read_dir(tmp.path().join(".mmplug/probes")).unwrap() {
            std::fs::write(entry.unwrap().path(), "{not json").unwrap();
        }
        prepare(tmp.path(), Some(&path_var())).await.unwrap();
        assert_eq!(run_count(&runs), 3);
    }

    #[tokio::test]
    async fn prepare_known_answers_only_what_an_earlier_prepare_settled() {
        // A development bundle: known once its interpreter's probe is kept.
        let (tmp, runs) = counting_venv();
        assert_eq!(prepare_known(tmp.path(), Some(&path_var())).await, None);
        assert_eq!(run_count(&runs), 0, "prepare_known started a process");
        let setup = prepare(tmp.path(), Some(&path_var())).await.unwrap();
        let known = prepare_known(tmp.path(), Some(&path_var())).await;
        assert_eq!(known, Some(setup));
        assert_eq!(run_count(&runs), 1);
        // An offline bundle: known once its wheels are unpacked for the interpreter.
        let v = this_python();
        let offline = bundle(
            &[(
                "demo_pkg-1.0-py3-none-any.whl",
                "demo-pkg==1.0",
                &[("demo_pkg/__init__.py", "")],
            )],
            &[&v],
        );
        assert_eq!(prepare_known(offline.path(), Some(&path_var())).await, None);
        assert!(!offline.path().join(".mmplug/envs").exists());
        let setup = prepare(offline.path(), Some(&path_var())).await.unwrap();
        let known = prepare_known(offline.path(), Some(&path_var())).await;
        assert_eq!(known, Some(setup));
        // Unpacked wheels gone (a cleaned plugin directory): a full prepare is needed again.
        std::fs::remove_dir_all(offline.path().join(".mmplug/envs")).unwrap();
        assert_eq!(prepare_known(offline.path(), Some(&path_var())).await, None);
    }

    #[tokio::test]
    async fn the_probe_is_not_kept_through_a_symbolic_link() {
        let (tmp, runs) = counting_venv();
        let elsewhere = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), tmp.path().join(".mmplug")).unwrap();
        prepare(tmp.path(), Some(&path_var())).await.unwrap();
        prepare(tmp.path(), Some(&path_var())).await.unwrap();
        assert_eq!(run_count(&runs), 2);
        assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn offline_bundle_errors_say_what_is_wrong() {
        let v = this_python();
        // A wheel whose bytes do not match the index.
        let tmp = bundle(
            &[("a-1.0-py3-none-any.whl", "a==1.0", &[("a.py", "")])],
            &[&v],
        );
        std::fs::write(
            tmp.path().join(WHEELS_DIR).join("a-1.0-py3-none-any.whl"),
            b"x",
        )
        .unwrap();
        let e = prepare(tmp.path(), Some(&path_var()))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not match its SHA-256"), "{e}");
        assert!(
            !tmp.path()
                .join(".mmplug/envs")
                .read_dir()
                .unwrap()
                .any(|_| true)
        );

        // A requirement with no wheel for this interpreter.
        let tmp = bundle(
            &[("b-1.0-cp27-cp27m-win32.whl", "b==1.0", &[("b.py", "")])],
            &[&v],
        );
        let e = prepare(tmp.path(), Some(&path_var()))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no wheel of b==1.0") && e.contains("mmplug bundle --python"),
            "{e}"
        );

        // A wheel that would write outside the env.
        let tmp = bundle(
            &[("c-1.0-py3-none-any.whl", "c", &[("../evil.py", "")])],
            &[&v],
        );
        let e = prepare(tmp.path(), Some(&path_var()))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("unsafe path"), "{e}");
        assert!(!tmp.path().join(".mmplug/evil.py").exists());

        // No interpreter of the versions the bundle was built for.
        let tmp = bundle(
            &[("d-1.0-py3-none-any.whl", "d", &[("d.py", "")])],
            &["3.99"],
        );
        let e = prepare(tmp.path(), Some(&path_var()))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("wheels for Python 3.99")
                && e.contains("python3.99")
                && e.contains("found:"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn nothing_is_read_or_written_outside_the_bundle() {
        let v = this_python();
        // Wheel members with an absolute path or `..` anywhere in it.
        for member in ["/abs.py", "pkg/../../escape.py", "../escape.py"] {
            let tmp = bundle(&[("e-1.0-py3-none-any.whl", "e", &[(member, "")])], &[&v]);
            let e = prepare(tmp.path(), Some(&path_var()))
                .await
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(&format!("contains the unsafe path {member:?}").replace('"', "'")),
                "{member}: {e}"
            );
            assert!(!tmp.path().join(".mmplug/escape.py").exists());
            assert!(!tmp.path().join("escape.py").exists());
            assert!(!Path::new("/abs.py").exists());
        }

        // An index naming a wheel outside the wheels directory.
        let tmp = bundle(&[("f-1.0-py3-none-any.whl", "f", &[("f.py", "")])], &[&v]);
        let index_path = tmp.path().join(WHEELS_DIR).join("index.json");
        let mut index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
        index["wheels"]["../../f-1.0-py3-none-any.whl"] = "0".repeat(64).into();
        std::fs::write(&index_path, index.to_string()).unwrap();
        let e = prepare(tmp.path(), Some(&path_var()))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("the wheel name \"../../f-1.0-py3-none-any.whl\" is not a file name"),
            "{e}"
        );
        for name in ["a.whl", "f-1.0-py3-none-any.whl"] {
            assert!(is_plain_file_name(name), "{name}");
        }
        for name in [
            "",
            ".",
            "..",
            "../a.whl",
            "a/b.whl",
            "a\\b.whl",
            ".hidden.whl",
            "a\0.whl",
        ] {
            assert!(!is_plain_file_name(name), "{name:?}");
        }

        // `.mmplug` as a symbolic link out of the bundle.
        let tmp = bundle(&[("g-1.0-py3-none-any.whl", "g", &[("g.py", "")])], &[&v]);
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), tmp.path().join(".mmplug")).unwrap();
        let e = prepare(tmp.path(), Some(&path_var()))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains(".mmplug is a symbolic link"), "{e}");
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn a_too_old_or_broken_interpreter_is_an_error_naming_what_to_install() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("venv/bin")).unwrap();
        let fake = tmp.path().join("venv/bin/python3");
        let answer = r#"{"version": [3, 9, 2], "implementation": "cpython", "machine": "x86_64", "glibc": [2, 31]}"#;
        std::fs::write(&fake, format!("#!/bin/sh\necho '{answer}'\n")).unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = prepare(tmp.path(), None).await.unwrap_err().to_string();
        assert!(
            e.contains("is Python 3.9.2")
                && e.contains("3.10 or newer")
                && e.contains("apt install"),
            "{e}"
        );
        std::fs::write(&fake, "#!/bin/sh\necho 'not found' >&2\nexit 127\n").unwrap();
        let e = prepare(tmp.path(), None).await.unwrap_err().to_string();
        assert!(e.contains("cannot run") && e.contains("not found"), "{e}");
    }

    #[tokio::test]
    async fn a_development_bundle_uses_its_venv_as_is() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("venv/bin")).unwrap();
        let python = std::process::Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .unwrap();
        let python = String::from_utf8(python.stdout).unwrap();
        std::os::unix::fs::symlink(python.trim(), tmp.path().join("venv/bin/python3")).unwrap();
        let setup = prepare(tmp.path(), None).await.unwrap();
        assert_eq!(setup.interpreter, tmp.path().join("venv/bin/python3"));
        assert_eq!(setup.site, None);
    }
}

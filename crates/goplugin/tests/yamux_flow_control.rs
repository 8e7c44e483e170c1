//! yamux flow control against a real hashicorp/yamux writer (conformance/yamuxwriter, built
//! and run by the test): a stream the application reads slowly holds at most its receive
//! window, and the Go writer waits for our window updates instead of making us buffer all it
//! has to send.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use goplugin::yamux::{Config, Session};
use tokio::io::AsyncReadExt;

/// yamux's receive window per stream, the only one a Mattermost server uses.
const WINDOW: usize = 256 * 1024;
/// What the Go side writes: ten windows.
const TOTAL: usize = 10 * WINDOW;
/// How much the slow reader takes at a time.
const BITE: usize = 4096;
/// How long any single step may take before the test gives up on it.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// Byte `i` of what the Go writer sends.
fn pattern_byte(i: usize) -> u8 {
    ((i * 7 + 3) % 251) as u8
}

/// What the Go writer has reported on its stdout ("wrote TOTAL", "done").
#[derive(Default)]
struct Progress {
    written: AtomicUsize,
    done: AtomicBool,
}

/// The Go writer process, killed if the test ends before it does.
struct GoWriter {
    child: Child,
    progress: Arc<Progress>,
}

impl GoWriter {
    /// Builds conformance/yamuxwriter into `dir` and starts it against `socket`.
    fn start(dir: &Path, socket: &Path) -> GoWriter {
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let exe = dir.join("yamuxwriter");
        let built = Command::new("go")
            .args(["build", "-o"])
            .arg(&exe)
            .arg("./conformance/yamuxwriter")
            .current_dir(&repo)
            .status()
            .expect("running `go` (Go must be on PATH: it is the judge here)");
        assert!(built.success(), "go build ./conformance/yamuxwriter failed");
        let mut child = Command::new(&exe)
            .arg("-socket")
            .arg(socket)
            .args(["-bytes", &TOTAL.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the Go writer");
        let progress = Arc::new(Progress::default());
        let stdout = child.stdout.take().expect("piped stdout");
        let report = progress.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(n) = line.strip_prefix("wrote ") {
                    report
                        .written
                        .store(n.parse().expect("byte count"), Ordering::SeqCst);
                } else if line == "done" {
                    report.done.store(true, Ordering::SeqCst);
                }
            }
        });
        GoWriter { child, progress }
    }

    fn written(&self) -> usize {
        self.progress.written.load(Ordering::SeqCst)
    }

    fn done(&self) -> bool {
        self.progress.done.load(Ordering::SeqCst)
    }

    /// Waits for the writer to exit and requires success.
    async fn finish(mut self) {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the Go writer") {
                assert!(status.success(), "the Go writer failed: {status}");
                return;
            }
            assert!(Instant::now() < deadline, "the Go writer did not exit");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for GoWriter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `ready` until it holds, failing with `what` after [`STEP_TIMEOUT`].
async fn wait_until(what: impl Fn() -> String, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + STEP_TIMEOUT;
    while !ready() {
        assert!(Instant::now() < deadline, "{}", what());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Awaits `f`, failing with `what` after [`STEP_TIMEOUT`].
async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(STEP_TIMEOUT, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: not within {STEP_TIMEOUT:?}"))
}

#[tokio::test]
async fn slow_reader_holds_a_go_writer_to_the_receive_window() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("yamux.sock");
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    let go = GoWriter::start(dir.path(), &socket);
    let (conn, _) = within("the Go writer connecting", listener.accept())
        .await
        .unwrap();
    let session = Session::server(conn, Config::default());
    let mut stream = within("the Go writer's stream", session.accept())
        .await
        .expect("a stream");

    // Read nothing: a whole window arrives, then the writer must stop.
    wait_until(
        || format!("only {} bytes arrived", stream.unread_bytes()),
        || stream.unread_bytes() >= WINDOW,
    )
    .await;
    // Time for a writer that is not held back to show it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        stream.unread_bytes(),
        WINDOW,
        "buffered more than the receive window while the application read nothing"
    );
    assert!(
        go.written() <= WINDOW && !go.done(),
        "the Go writer got {} bytes out (done: {}) while we read nothing: it was not held to \
         our {WINDOW}-byte window",
        go.written(),
        go.done()
    );

    // Now read slowly: the writer goes on as we free window, and never gets further ahead.
    let mut got = Vec::with_capacity(TOTAL);
    let mut bite = vec![0u8; BITE];
    loop {
        let unread = stream.unread_bytes();
        assert!(
            unread <= WINDOW,
            "{unread} bytes buffered after the application read {} of {TOTAL}: over the \
             {WINDOW}-byte receive window, so window updates ran ahead of reading",
            got.len()
        );
        let n = within("the next bite", stream.read(&mut bite))
            .await
            .unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&bite[..n]);
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(got.len(), TOTAL, "bytes received");
    if let Some(i) = (0..TOTAL).find(|&i| got[i] != pattern_byte(i)) {
        panic!("byte {i} is {:#04x}, sent {:#04x}", got[i], pattern_byte(i));
    }
    // Go prints "done" once its Close returns, which may be just after our end of stream.
    wait_until(
        || "the stream ended, but the Go writer never said done".to_owned(),
        || go.done(),
    )
    .await;
    drop(stream);
    session.close();
    go.finish().await;
}

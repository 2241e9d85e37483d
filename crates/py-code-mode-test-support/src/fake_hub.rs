//! A stand-in for the Hugging Face Hub on a free loopback port, for the
//! download tests (this machine has no route to the real one).
//!
//! It serves the files of one directory as `/{ORG}/{NAME}/resolve/main/{file}`
//! and speaks just the HTTP the hub clients use: a `Range: bytes=0-0` request
//! whose `ETag`, `X-Repo-Commit` and `Content-Range` headers describe the file,
//! then ranged downloads. Anything else is a 404.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The commit every file is served at.
pub const FAKE_COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// A running fake hub; stops when dropped.
pub struct FakeHub {
    port: u16,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl FakeHub {
    /// Serves the files under `dir` as the model repository `repo` (`ORG/NAME`).
    pub fn serve(repo: &str, dir: &Path) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("cannot bind a loopback port: {e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("no local address: {e}"))
            .port();
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let prefix = format!("/{repo}/resolve/main/");
        let dir = dir.to_path_buf();
        let (count, stopped) = (Arc::clone(&requests), Arc::clone(&stop));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    count.fetch_add(1, Ordering::SeqCst);
                    // A broken client connection is the client's problem.
                    let _ = answer(stream, &prefix, &dir);
                }
            }
        });
        Self {
            port,
            requests,
            stop,
        }
    }

    /// The endpoint to give a hub client (`HF_ENDPOINT`).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Requests answered so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for FakeHub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn answer(mut stream: TcpStream, prefix: &str, dir: &Path) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("range")
        {
            range = value.trim().strip_prefix("bytes=").map(str::to_owned);
        }
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or_default();
    let Some(bytes) = path
        .strip_prefix(prefix)
        .and_then(|file| safe_join(dir, file))
        .and_then(|file| std::fs::read(file).ok())
    else {
        return stream.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    };
    let size = bytes.len();
    let (start, end) = match range.as_deref().and_then(|r| r.split_once('-')) {
        Some((start, end)) => (
            start.parse().unwrap_or(0).min(size),
            end.parse::<usize>()
                .map_or(size, |e| (e + 1).min(size))
                .max(start.parse().unwrap_or(0).min(size)),
        ),
        None => (0, size),
    };
    let etag = format!("{size:x}-{:x}", checksum(&bytes));
    let head = format!(
        "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {start}-{}/{size}\r\n\
         ETag: \"{etag}\"\r\nX-Repo-Commit: {FAKE_COMMIT}\r\nConnection: close\r\n\r\n",
        end - start,
        end.saturating_sub(1),
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(&bytes[start..end])?;
    stream.flush()
}

/// `dir/file` when `file` is a plain relative path (no `..`, not absolute).
fn safe_join(dir: &Path, file: &str) -> Option<PathBuf> {
    let relative = Path::new(file);
    relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then(|| dir.join(relative))
}

fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

//! Helpers of the fault tests: the real server with a controllable file
//! size limit (stopped by SIGTERM or SIGKILL), API and page clients, the binary's other commands with a
//! deadline, a tmpfs or bind mount that is undone on drop, and the
//! consistency check of a stopped server's data directory (a raw look at
//! the database file).

use std::collections::BTreeSet;
use std::ffi::CString;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

pub use facegate_testkit::agent::{status_json, Agent, PASSWORD};
pub use facegate_testkit::{photo, workspace};

/// A `facegate` command with the environment of the tests: run from the
/// workspace (models, runtime), no key or data dir from the caller's
/// environment, liveness and rate limits off.
pub fn facegate() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_facegate"));
    cmd.current_dir(workspace())
        .env("FACEGATE_LIVENESS", "off")
        .env("FACEGATE_RATE_LIMIT_PER_ADDRESS", "0")
        .env("FACEGATE_RATE_LIMIT_PER_ACCOUNT", "0")
        .env_remove("FACEGATE_MASTER_KEY")
        .env_remove("FACEGATE_NEW_MASTER_KEY")
        .env_remove("FACEGATE_DATA_DIR");
    cmd
}

/// Runs a command to its end (killed after a minute: a command that should
/// fail at once must not hang the test).
pub fn run(mut cmd: Command) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("running facegate");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{cmd:?} still running after a minute; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// `facegate serve` on a free port. SIGXFSZ is ignored in the child, so a
/// file size limit makes writes fail with EFBIG instead of killing it.
pub struct Server {
    child: Child,
    pub base: String,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    /// Starts the server in `verify` face-login mode (username + face), so
    /// that a failed face login charges a known account.
    pub fn start(dir: &Path) -> Server {
        Self::start_with(dir, &[("FACEGATE_FACE_LOGIN", "verify")])
    }

    /// Starts the server with these extra environment variables.
    pub fn start_with(dir: &Path, env: &[(&str, &str)]) -> Server {
        let mut cmd = facegate();
        cmd.envs(env.iter().copied())
            .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: signal() is async-signal-safe; nothing else runs here.
        unsafe {
            cmd.pre_exec(|| {
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                Ok(())
            });
        }
        let child = cmd.spawn().expect("starting facegate serve");
        // From here on, a panic drops the server, which kills the child.
        let mut server = Server {
            child,
            base: String::new(),
            stderr: Arc::default(),
        };
        let mut err = server.child.stderr.take().unwrap();
        let sink = server.stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut lines = BufReader::new(server.child.stdout.take().unwrap()).lines();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            assert!(Instant::now() < deadline, "the server did not start");
            let Some(Ok(line)) = lines.next() else {
                panic!("server exited early: {}", server.log());
            };
            if let Some(url) = line.strip_prefix("facegate listening on ") {
                server.base = url.trim().to_string();
                // Keep draining stdout so the child never blocks on it.
                std::thread::spawn(move || for _ in lines.by_ref() {});
                return server;
            }
        }
    }

    /// Sets the server's RLIMIT_FSIZE (soft limit; `None` = unlimited): no
    /// file of the process may grow past `bytes`.
    pub fn limit_file_size(&self, bytes: Option<u64>) {
        let limit = libc::rlimit {
            rlim_cur: bytes.unwrap_or(libc::RLIM_INFINITY),
            rlim_max: libc::RLIM_INFINITY,
        };
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: plain system call on valid pointers.
        let rc = unsafe { libc::prlimit(pid, libc::RLIMIT_FSIZE, &limit, std::ptr::null_mut()) };
        assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
    }

    /// A field of the process's `/proc/PID/status` in KiB (`VmRSS`: resident
    /// now, `VmHWM`: the peak since start or [`Self::reset_peak_memory`]).
    pub fn memory_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc status"))
    }

    /// Resets the process's peak resident size (`VmHWM`) to its current one.
    pub fn reset_peak_memory(&self) {
        std::fs::write(format!("/proc/{}/clear_refs", self.child.id()), "5").unwrap();
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends SIGTERM (see [`Self::wait_for_clean_exit`]).
    pub fn terminate(&self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
    }

    /// SIGKILL: the process ends at once, whatever it was doing.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn stop(self) {
        self.terminate();
        self.wait_for_clean_exit();
    }

    /// Waits (20 s at most) for the process to exit, with status 0.
    pub fn wait_for_clean_exit(mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "exit status {status}: {}", self.log());
                return;
            }
            assert!(Instant::now() < deadline, "did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A client that follows redirects, as a browser does.
pub async fn visitor(base: &str) -> Agent {
    Agent::try_following(base).await.expect("GET /api/csrf")
}

/// What the fault tests ask of a client, each answer as its status and
/// JSON body (`null` when it was cut off).
pub trait Visit {
    /// `POST /api/register` (which also logs in; the new session's token
    /// is kept).
    async fn register_json(&mut self, username: &str) -> (StatusCode, Value);
    /// `POST /api/login` with the tests' password; must succeed.
    async fn log_in(&mut self, username: &str);
    /// `POST /api/me/faces`.
    async fn enrol(&self, image: &[u8]) -> (StatusCode, Value);
    /// [`Visit::enrol`] where the server may go away.
    async fn try_enrol(&self, image: &[u8]) -> reqwest::Result<(StatusCode, Value)>;
    /// `POST /api/face-login` in verify mode, where the server may go away.
    async fn try_verify(
        &self,
        username: &str,
        image: &[u8],
    ) -> reqwest::Result<(StatusCode, Value)>;
    /// The profile page's upload form; final status and page text.
    async fn profile_upload(&self, image: &[u8]) -> (StatusCode, String);
    /// Ids of the user's faces; each photo must be served as a JPEG.
    async fn faces_with_photos(&self) -> Vec<i64>;
}

impl Visit for Agent {
    async fn register_json(&mut self, username: &str) -> (StatusCode, Value) {
        let answer = status_json(self.register(username).await).await;
        if answer.0 == StatusCode::CREATED {
            self.refresh_csrf().await;
        }
        answer
    }

    async fn log_in(&mut self, username: &str) {
        let r = self.login(username, PASSWORD).await;
        assert_eq!(r.status(), StatusCode::OK, "login of {username}");
        self.refresh_csrf().await;
    }

    async fn enrol(&self, image: &[u8]) -> (StatusCode, Value) {
        self.try_enrol(image).await.unwrap()
    }

    async fn try_enrol(&self, image: &[u8]) -> reqwest::Result<(StatusCode, Value)> {
        Ok(status_json(self.try_upload_face(image).await?).await)
    }

    async fn try_verify(
        &self,
        username: &str,
        image: &[u8],
    ) -> reqwest::Result<(StatusCode, Value)> {
        Ok(status_json(self.try_face_login(image, Some(username)).await?).await)
    }

    async fn profile_upload(&self, image: &[u8]) -> (StatusCode, String) {
        let r = self.upload_on_profile(image).await;
        (r.status(), r.text().await.unwrap())
    }

    async fn faces_with_photos(&self) -> Vec<i64> {
        let v: Value = self.get("/api/me/faces").await.json().await.unwrap();
        let ids: Vec<i64> = v["faces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["id"].as_i64().unwrap())
            .collect();
        for id in &ids {
            let r = self.get(&format!("/media/faces/{id}")).await;
            assert_eq!(r.status(), StatusCode::OK, "face {id} has no photo");
            assert_eq!(&r.bytes().await.unwrap()[..2], &[0xFF, 0xD8]);
        }
        ids
    }
}

/// Asserts a typed storage error: the status, the code and a plain message.
pub fn assert_storage_error(status: StatusCode, body: &Value, codes: &[&str]) {
    let code = body["error"].as_str().unwrap_or_default();
    assert!(codes.contains(&code), "{status} {body}");
    let expected = match code {
        "storage_full" => StatusCode::INSUFFICIENT_STORAGE,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    assert_eq!(status, expected, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("nothing was saved"), "{body}");
}

/// The templates that have a stored photo, read underneath the running
/// (or stopped) server.
pub async fn photo_rows(dir: &Path) -> BTreeSet<i64> {
    let pool = raw_pool(dir).await;
    let ids: Vec<i64> = sqlx::query_scalar("SELECT template_id FROM face_photos")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    ids.into_iter().collect()
}

async fn raw_pool(dir: &Path) -> sqlx::SqlitePool {
    let url = format!("sqlite://{}", dir.join("facegate.sqlite3").display());
    sqlx::SqlitePool::connect(&url).await.unwrap()
}

/// The files a data directory may hold: the database with its journal
/// files, the key and the start lock.
const DATA_FILES: [&str; 5] = [
    "facegate.sqlite3",
    "facegate.sqlite3-wal",
    "facegate.sqlite3-shm",
    "facegate.sqlite3.start-lock",
    "master.key",
];

/// The data directory of a stopped server is consistent: every template
/// has its photo and every photo its template, nothing else is in the
/// directory (no half-written file), and SQLite's integrity and
/// foreign-key checks pass. Returns the number of templates.
pub async fn assert_consistent(dir: &Path) -> usize {
    let pool = raw_pool(dir).await;
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(check, "ok");
    let fk: Vec<(String,)> = sqlx::query_as("PRAGMA foreign_key_check")
        .fetch_all(&pool)
        .await
        .unwrap_or_default();
    assert!(fk.is_empty(), "foreign keys: {fk:?}");
    let templates: BTreeSet<i64> = sqlx::query_scalar("SELECT id FROM face_templates")
        .fetch_all(&pool)
        .await
        .unwrap()
        .into_iter()
        .collect();
    pool.close().await;
    assert_eq!(
        templates,
        photo_rows(dir).await,
        "templates and photos differ"
    );
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        assert!(
            DATA_FILES.contains(&name.as_str()),
            "unexpected {name} in the data directory"
        );
    }
    templates.len()
}

/// A user's consecutive failed face logins, read through the store the
/// way the server does (the key is in the data directory).
pub async fn face_failures(dir: &Path, username: &str) -> u32 {
    let config = facegate_app::Config {
        data_dir: dir.to_path_buf(),
        ..Default::default()
    };
    let store = facegate_app::store::open(&config).await.unwrap();
    let user = store.user_by_username(username).await.unwrap().unwrap();
    user.face_failures
}

fn c_path(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

/// Says why a test is skipped, on the real stderr: the test harness
/// captures `eprintln!` of passing tests, this is always shown.
pub fn skip(test: &str, reason: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {reason}");
}

/// A mount made by a test, detached on drop.
pub struct Mount(PathBuf);

impl Mount {
    fn mount(
        source: &str,
        target: &Path,
        fstype: &str,
        flags: libc::c_ulong,
        data: &str,
    ) -> std::io::Result<()> {
        let (src, fs, data) = (
            CString::new(source).unwrap(),
            CString::new(fstype).unwrap(),
            CString::new(data).unwrap(),
        );
        let target = c_path(target);
        // SAFETY: valid NUL-terminated strings for the duration of the call.
        let rc = unsafe {
            libc::mount(
                src.as_ptr(),
                target.as_ptr(),
                fs.as_ptr(),
                flags,
                data.as_ptr().cast(),
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }

    /// A tmpfs of `size` (e.g. "16m") on the new directory `target`.
    pub fn tmpfs(target: &Path, size: &str) -> std::io::Result<Mount> {
        std::fs::create_dir_all(target)?;
        Self::mount(
            "facegate-test",
            target,
            "tmpfs",
            0,
            &format!("size={size},mode=0755"),
        )?;
        Ok(Mount(target.to_path_buf()))
    }

    /// A read-only view of `source` on the new directory `target`.
    pub fn read_only_bind(source: &Path, target: &Path) -> std::io::Result<Mount> {
        std::fs::create_dir_all(target)?;
        let src = source.to_str().unwrap();
        Self::mount(src, target, "", libc::MS_BIND, "")?;
        let mount = Mount(target.to_path_buf());
        let flags = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY;
        Self::mount("", target, "", flags, "")?;
        Ok(mount)
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let target = c_path(&self.0);
        // SAFETY: valid path; a lazy unmount cannot hurt anything else.
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    }
}

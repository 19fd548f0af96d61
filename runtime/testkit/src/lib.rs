//! Real services on loopback for the tests: Apache Kafka (KRaft, one node) and SecantusDB (a MongoDB-wire
//! server), each a child process started from `tools/kafka-server.sh` or `tools/mongo-server.sh` on free ports
//! with its own data directory, and stopped by PID.
//!
//! A test that needs a service of its own (to stop or kill it mid-stream) starts one with [`Service::kafka`] or
//! [`Service::mongo`]; tests that only use one share [`shared_kafka`] and [`shared_mongo`]. Every service is
//! started from one long-lived thread with the parent-death signal set, so none outlives the test process,
//! even one that is killed. The installs come from `tools/services.sh install` (the test command runs it).

use std::fs::File;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a service may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// Which service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Apache Kafka.
    Kafka,
    /// SecantusDB.
    Mongo,
}

/// A running (or stopped) service with its data directory and ports, which stay the same across restarts.
pub struct Service {
    kind: Kind,
    dir: PathBuf,
    port: u16,
    controller_port: u16,
    child: Option<Child>,
    starts: u32,
    _temp: Option<TempDir>,
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The repository root (the workspace), where `tools/` is.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("runtime/testkit is two levels below the root")
        .to_path_buf()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

/// Spawns `command` from a thread that lives as long as the process, with the parent-death signal set: the
/// kernel kills the child when that thread (so the test process) ends.
fn spawn_tied(command: Command) -> std::io::Result<Child> {
    static LAUNCHER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let launcher = LAUNCHER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("testkit-launcher".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
                    unsafe {
                        command.pre_exec(|| {
                            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                                return Err(std::io::Error::last_os_error());
                            }
                            Ok(())
                        });
                    }
                    let _ = reply.send(command.spawn());
                }
                // The sender lives in a static, so this thread never ends before the process does.
                loop {
                    std::thread::park();
                }
            })
            .expect("launcher thread");
        Mutex::new(tx)
    });
    let (reply, answer) = mpsc::channel();
    launcher
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((command, reply))
        .expect("launcher alive");
    answer.recv().expect("launcher answers")
}

impl Service {
    /// Starts a Kafka broker of its own, in a fresh directory.
    pub fn kafka() -> Service {
        Service::start_new(Kind::Kafka)
    }

    /// Starts a SecantusDB server of its own, in a fresh directory.
    pub fn mongo() -> Service {
        Service::start_new(Kind::Mongo)
    }

    fn start_new(kind: Kind) -> Service {
        remove_stale_dirs();
        let base = std::env::temp_dir().join(format!(
            "forgecast-{}-{}-{}",
            match kind {
                Kind::Kafka => "kafka",
                Kind::Mongo => "mongo",
            },
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&base).expect("service directory");
        let mut service = Service {
            kind,
            dir: base.clone(),
            port: free_port(),
            controller_port: free_port(),
            child: None,
            starts: 0,
            _temp: Some(TempDir(base)),
        };
        service.start();
        service
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join(format!("service-{}.log", self.starts))
    }

    /// Starts the service (again) on the same directory and ports, and waits until it serves.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        self.starts += 1;
        let log = self.log_path();
        let out = File::create(&log).expect("service log");
        let err = out.try_clone().expect("service log");
        let tools = repo_root().join("tools");
        let mut command = match self.kind {
            Kind::Kafka => {
                let mut c = Command::new(tools.join("kafka-server.sh"));
                c.arg(self.dir.join("kafka"))
                    .arg(self.port.to_string())
                    .arg(self.controller_port.to_string());
                c
            }
            Kind::Mongo => {
                let mut c = Command::new(tools.join("mongo-server.sh"));
                c.arg(self.dir.join("mongo")).arg(self.port.to_string());
                c
            }
        };
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        let child = spawn_tied(command).unwrap_or_else(|e| {
            panic!(
                "cannot start {:?}: {e}; run tools/services.sh install",
                self.kind
            )
        });
        self.child = Some(child);
        self.wait_ready(&log);
    }

    fn wait_ready(&mut self, log: &Path) {
        let started = Instant::now();
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "{:?} exited with {status} while starting; its log:\n{}",
                    self.kind,
                    read(log)
                );
            }
            let ready = match self.kind {
                // The broker logs this once it serves clients.
                Kind::Kafka => read(log).contains("Kafka Server started"),
                Kind::Mongo => TcpStream::connect(("127.0.0.1", self.port)).is_ok(),
            };
            if ready {
                return;
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "{:?} did not start within {START_TIMEOUT:?}; its log:\n{}",
                self.kind,
                read(log)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills the service with SIGKILL, as a crash would, and waits for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the service with SIGSTOP: its connections stay open and nothing is answered, as a server that
    /// hangs. [`Service::resume`] thaws it.
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// Thaws a service frozen by [`Service::pause`].
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, signal: libc::c_int) {
        if let Some(child) = &self.child {
            // SAFETY: sending a signal to our own child, whose PID we hold and have not reaped.
            unsafe {
                libc::kill(child.id() as libc::pid_t, signal);
            }
        }
    }

    /// Stops the service with SIGTERM, as an orderly shutdown, and waits for it to be gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: sending a signal to our own child, whose PID we hold and have not reaped.
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The client port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kafka's bootstrap servers.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A MongoDB connection string naming the server's single-node replica set, so that transactions work.
    pub fn mongo_uri(&self) -> String {
        format!(
            "mongodb://127.0.0.1:{}/?replicaSet=secantus&serverSelectionTimeoutMS=5000",
            self.port
        )
    }

    /// The running service's process id (the scripts exec the broker or the server, so it is theirs).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// What the service has logged since its last start.
    pub fn log(&self) -> String {
        read(&self.log_path())
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Removes the directories of services whose test process is gone (a shared service's directory outlives it).
fn remove_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name
            .strip_prefix("forgecast-kafka-")
            .or_else(|| name.strip_prefix("forgecast-mongo-"))
        else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        // SAFETY: signal 0 only asks whether the process exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        if !alive {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn read(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut f) = File::open(path) {
        let _ = f.read_to_string(&mut text);
    }
    text
}

/// One Kafka broker shared by the tests of this process (stopped when the process ends).
pub fn shared_kafka() -> &'static Service {
    static KAFKA: OnceLock<Service> = OnceLock::new();
    KAFKA.get_or_init(Service::kafka)
}

/// One SecantusDB server shared by the tests of this process (stopped when the process ends).
pub fn shared_mongo() -> &'static Service {
    static MONGO: OnceLock<Service> = OnceLock::new();
    MONGO.get_or_init(Service::mongo)
}

/// A database name no other test uses.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

/// What a child process used, from the kernel's own accounting of it.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// User and system CPU time.
    pub cpu: Duration,
    /// Peak resident memory, bytes.
    pub peak: u64,
}

/// Waits for `child` to end and reaps it with `wait4`, which gives its exit status and its own resource usage
/// (processes that other tests or builds run at the same time do not count).
pub fn wait_with_usage(child: &Child) -> (std::process::ExitStatus, Usage) {
    // SAFETY: wait4 writes only the status and the struct it is given; the child is ours and not reaped yet.
    let (status, usage) = unsafe {
        let mut status = 0;
        let mut usage = std::mem::zeroed::<libc::rusage>();
        let pid = libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage);
        assert_eq!(pid, child.id() as libc::pid_t, "wait4 on the child");
        (status, usage)
    };
    let seconds = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (
        std::os::unix::process::ExitStatusExt::from_raw(status),
        Usage {
            cpu: seconds(usage.ru_utime) + seconds(usage.ru_stime),
            peak: usage.ru_maxrss as u64 * 1024,
        },
    )
}

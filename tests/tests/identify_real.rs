//! What answers on a port, named against the real servers Debian packages (`./dev setup`
//! installs them; nothing starts them as services): OpenSSH's sshd, redis-server and
//! PostgreSQL, each run by the test on loopback with a throwaway configuration, then one
//! `scan --identify` names all three. A server whose binary is absent is skipped, saying why.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use whyrefused_tests::agent_binary;

/// A server process the test started, killed when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits until `port` accepts on loopback; fails the test after `limit`.
fn wait_accepting(what: &str, server: &mut Server, limit: Duration) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", server.port)).is_err() {
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!("{what} exited before listening: {status}");
        }
        assert!(start.elapsed() < limit, "{what} did not listen within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The binary, or `None` after printing why the server is skipped.
fn binary(what: &str, path: &str) -> Option<PathBuf> {
    let found = Path::new(path).exists().then(|| PathBuf::from(path));
    if found.is_none() {
        println!("skipping {what}: {path} is absent (./dev setup installs it)");
    }
    found
}

fn sshd(directory: &Path) -> Option<Server> {
    let sshd = binary("OpenSSH", "/usr/sbin/sshd")?;
    let key = directory.join("host_key");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen runs");
    assert!(made.success());
    // sshd refuses to start without its privilege separation directory.
    std::fs::create_dir_all("/run/sshd").expect("/run/sshd can be made (root)");
    let port = free_port();
    let child = Command::new(sshd)
        .args(["-D", "-e", "-f", "/dev/null", "-o"])
        .arg(format!("ListenAddress=127.0.0.1:{port}"))
        .arg("-o")
        .arg(format!("HostKey={}", key.display()))
        .args(["-o", "PidFile=none"])
        .stderr(Stdio::null())
        .spawn()
        .expect("sshd starts");
    let mut server = Server { child, port };
    wait_accepting("sshd", &mut server, Duration::from_secs(10));
    Some(server)
}

fn redis() -> Option<Server> {
    let redis = binary("Redis", "/usr/bin/redis-server")?;
    let port = free_port();
    let child = Command::new(redis)
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server starts");
    let mut server = Server { child, port };
    wait_accepting("redis-server", &mut server, Duration::from_secs(10));
    Some(server)
}

/// PostgreSQL in a fresh data directory, run as the `postgres` user (it refuses root).
fn postgres(directory: &Path) -> Option<Server> {
    let bin = std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .and_then(|versions| versions.flatten().map(|v| v.path().join("bin")).max());
    let Some(bin) = bin.filter(|bin| bin.join("postgres").exists()) else {
        println!("skipping PostgreSQL: /usr/lib/postgresql/*/bin/postgres is absent");
        return None;
    };
    let data = directory.join("pgdata");
    std::fs::create_dir_all(&data).unwrap();
    let owned = Command::new("chown").args(["-R", "postgres:postgres"]).arg(directory).status();
    assert!(owned.expect("chown runs").success());
    let as_postgres = |program: PathBuf| {
        let mut command = Command::new("setpriv");
        command.args(["--reuid=postgres", "--regid=postgres", "--init-groups", "--"]);
        command.arg(program);
        command
    };
    let initialised = as_postgres(bin.join("initdb"))
        .args(["-A", "trust", "-U", "postgres", "-D"])
        .arg(&data)
        .stdout(Stdio::null())
        .status()
        .expect("initdb runs");
    assert!(initialised.success(), "initdb failed");
    let port = free_port();
    let child = as_postgres(bin.join("postgres"))
        .arg("-D")
        .arg(&data)
        .arg("-k")
        .arg(directory)
        .args(["-c", "listen_addresses=127.0.0.1", "-p", &port.to_string()])
        .stderr(Stdio::null())
        .spawn()
        .expect("postgres starts");
    let mut server = Server { child, port };
    wait_accepting("postgres", &mut server, Duration::from_secs(20));
    Some(server)
}

#[test]
fn sshd_redis_and_postgresql_are_each_named_on_loopback() {
    let directory = tempfile::tempdir().unwrap();
    // Readable by the postgres user, which runs the database in it.
    std::fs::set_permissions(directory.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .unwrap();
    let servers: Vec<(&str, Server)> = [
        ("ssh", sshd(directory.path())),
        ("redis", redis()),
        ("postgresql", postgres(directory.path())),
    ]
    .into_iter()
    .filter_map(|(protocol, server)| server.map(|s| (protocol, s)))
    .collect();
    if servers.is_empty() {
        println!("skipping: none of sshd, redis-server, postgres is installed");
        return;
    }
    let ports: Vec<String> = servers.iter().map(|(_, s)| s.port.to_string()).collect();
    let output = Command::new(agent_binary())
        .args(["scan", "127.0.0.1", "--ports", &ports.join(","), "--identify", "--json"])
        .output()
        .expect("whyrefused runs");
    let report: Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
    for (protocol, server) in &servers {
        let address = format!("127.0.0.1:{}", server.port);
        let service = report["services"]
            .as_array()
            .and_then(|all| all.iter().find(|s| s["address"] == address))
            .unwrap_or_else(|| panic!("no service named on {address}: {report:#}"));
        assert_eq!(service["protocol"], *protocol, "{service}");
        let detail = service["detail"].as_str().unwrap_or_default();
        match *protocol {
            "ssh" => assert!(detail.starts_with("SSH-2.0-OpenSSH_"), "{detail}"),
            "redis" => assert_eq!(detail, "+PONG", "{service}"),
            _ => {}
        }
    }
}

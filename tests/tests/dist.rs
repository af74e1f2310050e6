//! The artifacts of `./dev dist` as the hosts that receive them see them: each binary is static
//! and stripped and carries the page; the aarch64 one runs under qemu-user, the x86_64 one in a
//! chroot holding nothing but itself (and /proc), each giving the right verdict of a loopback
//! port; the .deb files hold the binary, the unit, the config, the token file, the manual and
//! the completions; the Dockerfile's COPY finds its binary.
//!
//! They need dist/, which takes `./dev dist` several minutes to build: each test is ignored in
//! `./dev test` (cargo lists it as ignored, with the reason) and `./dev dist` runs them all
//! (`--include-ignored`) once dist/ is built. Run without dist/, each fails saying so.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use whyrefused_tests::{closed_port, workspace_root};

/// The targets `./dev dist` builds, and the Debian architecture of each.
const TARGETS: [(&str, &str); 2] =
    [("x86_64-unknown-linux-musl", "amd64"), ("aarch64-unknown-linux-musl", "arm64")];

/// The size each binary should stay under: 8 MiB (8 MB as `ls -h` counts).
const SIZE_GOAL: u64 = 8 * 1024 * 1024;

fn dist() -> PathBuf {
    let dist = workspace_root().join("dist");
    assert!(
        dist.is_dir(),
        "{} does not exist: these tests check what ./dev dist builds; run ./dev dist",
        dist.display()
    );
    dist
}

/// The static binary `./dev dist` built for `target`.
fn binary(target: &str) -> PathBuf {
    let path = dist().join(format!("whyrefused-{}-{target}", env!("CARGO_PKG_VERSION")));
    assert!(path.is_file(), "{} is missing: run ./dev dist", path.display());
    path
}

fn run(program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Output {
    let program = program.as_ref();
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{} runs (./dev dist installs it): {e}", program.display()))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
#[ignore = "needs dist/ from ./dev dist, which runs these tests"]
fn each_binary_is_static_stripped_checksummed_and_carries_the_page() {
    for (target, _) in TARGETS {
        let binary = binary(target);
        let described = text(&run("file", &[binary.to_str().unwrap()]).stdout);
        assert!(
            described.contains("statically linked") || described.contains("static-pie linked"),
            "{described}"
        );
        assert!(described.contains(", stripped"), "{described}");
        let machine = if target.starts_with("x86_64") { "x86-64" } else { "ARM aarch64" };
        assert!(described.contains(machine), "{described}");
        let sums = binary
            .with_file_name(format!("{}.sha256", binary.file_name().unwrap().to_str().unwrap()));
        let checked =
            Command::new("sha256sum").arg("-c").arg(&sums).current_dir(dist()).output().unwrap();
        assert!(checked.status.success(), "{}", text(&checked.stdout));
        let bytes = std::fs::read(&binary).unwrap();
        let page = std::fs::read(workspace_root().join("index.html")).unwrap();
        assert!(carries_gzipped(&bytes, &page), "{target}: the page is embedded");
        // The size is a goal, not a test: ./dev dist prints it.
        println!("{target}: {} bytes (goal: under {SIZE_GOAL})", bytes.len());
    }
}

/// Whether `binary` holds a gzip stream of `file` (the agent carries its page's files gzip
/// compressed): some gzip header in it inflates to exactly `file`.
fn carries_gzipped(binary: &[u8], file: &[u8]) -> bool {
    use std::io::Read as _;
    const GZIP_DEFLATE_HEADER: [u8; 3] = [0x1f, 0x8b, 0x08];
    (0..binary.len().saturating_sub(GZIP_DEFLATE_HEADER.len()))
        .filter(|&start| binary[start..].starts_with(&GZIP_DEFLATE_HEADER))
        .any(|start| {
            // Read one byte past the file: a longer stream is another file.
            let mut inflated = Vec::new();
            let decoder = flate2::read::GzDecoder::new(&binary[start..]);
            decoder.take(file.len() as u64 + 1).read_to_end(&mut inflated).is_ok()
                && inflated == file
        })
}

/// What the binary says of a closed loopback port and of one a listener of this test holds,
/// run by `runner` (qemu-user, chroot …) with `binary` as the path it knows.
fn verdicts(runner: &mut dyn FnMut(&[&str]) -> Output) -> (String, String) {
    let closed = closed_port();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let open = listener.local_addr().unwrap().port();
    let cause = |port: u16, runner: &mut dyn FnMut(&[&str]) -> Output| {
        let target = format!("127.0.0.1:{port}");
        let output = runner(&["check", &target, "--json", "--no-trace", "--timeout-ms", "2000"]);
        let report: Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("{e}: {} {}", text(&output.stdout), text(&output.stderr)));
        report["verdict"]["cause"].as_str().unwrap_or("(none)").to_string()
    };
    (cause(closed, runner), cause(open, runner))
}

fn assert_version(output: &Output, target: &str) {
    let said = text(&output.stdout);
    let expected = format!("whyrefused {} (commit ", env!("CARGO_PKG_VERSION"));
    assert!(
        said.starts_with(&expected) && said.trim_end().ends_with(&format!(", {target})")),
        "{said}"
    );
    assert!(!said.contains("development build"), "./dev dist names the commit: {said}");
}

#[test]
#[ignore = "needs dist/ from ./dev dist, which runs these tests"]
fn the_aarch64_binary_runs_under_qemu_user_and_names_the_verdicts() {
    let target = "aarch64-unknown-linux-musl";
    let binary = binary(target);
    let state = tempfile::tempdir().unwrap();
    let mut qemu = |args: &[&str]| {
        Command::new("qemu-aarch64-static")
            .arg(&binary)
            .args(args)
            .env("XDG_STATE_HOME", state.path())
            .output()
            .expect("qemu-aarch64-static runs (./dev dist installs qemu-user-static)")
    };
    assert_version(&qemu(&["--version"]), target);
    let (closed, open) = verdicts(&mut qemu);
    assert_eq!(closed, "port_closed");
    assert_eq!(open, "reachable");
}

/// A directory holding nothing but `binary` at `/whyrefused`, a state directory and /proc
/// (mounted while it lives).
struct Chroot {
    root: tempfile::TempDir,
}

impl Chroot {
    fn new(binary: &Path) -> Chroot {
        let root = tempfile::tempdir().unwrap();
        std::fs::copy(binary, root.path().join("whyrefused")).unwrap();
        std::fs::create_dir(root.path().join("proc")).unwrap();
        std::fs::create_dir(root.path().join("state")).unwrap();
        let proc = root.path().join("proc");
        let mounted = run("mount", &["-t", "proc", "proc", proc.to_str().unwrap()]);
        assert!(
            mounted.status.success(),
            "mount /proc (the tests run as root): {}",
            text(&mounted.stderr)
        );
        Chroot { root }
    }

    fn run(&self, args: &[&str]) -> Output {
        // By its path: the environment is cleared, PATH included.
        Command::new("/usr/sbin/chroot")
            .arg(self.root.path())
            .arg("/whyrefused")
            .args(args)
            .env_clear()
            .env("XDG_STATE_HOME", "/state")
            .output()
            .expect("chroot runs")
    }
}

impl Drop for Chroot {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.root.path().join("proc")).status();
    }
}

#[test]
#[ignore = "needs dist/ from ./dev dist, which runs these tests"]
fn the_x86_64_binary_runs_in_a_chroot_holding_only_itself() {
    let target = "x86_64-unknown-linux-musl";
    let chroot = Chroot::new(&binary(target));
    let entries: Vec<_> =
        std::fs::read_dir(chroot.root.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(entries.len(), 3, "the binary, /proc and /state alone: {entries:?}");
    assert_version(&chroot.run(&["--version"]), target);
    let (closed, open) = verdicts(&mut |args| chroot.run(args));
    assert_eq!(closed, "port_closed");
    assert_eq!(open, "reachable");
}

/// `dpkg-deb`'s answer about `deb`.
fn dpkg_deb(args: &[&str], deb: &Path) -> String {
    let output = Command::new("dpkg-deb").args(args).arg(deb).output().expect("dpkg-deb runs");
    assert!(output.status.success(), "dpkg-deb {args:?}: {}", text(&output.stderr));
    text(&output.stdout)
}

#[test]
#[ignore = "needs dist/ from ./dev dist, which runs these tests"]
fn each_deb_holds_the_binary_the_unit_the_config_the_manual_and_the_completions() {
    let version = env!("CARGO_PKG_VERSION");
    for (target, arch) in TARGETS {
        let deb = dist().join(format!("whyrefused_{version}_{arch}.deb"));
        assert!(deb.is_file(), "{} is missing: run ./dev dist", deb.display());
        let info = dpkg_deb(&["--info"], &deb);
        for field in [
            "Package: whyrefused\n",
            &format!("Architecture: {arch}\n"),
            &format!("Version: {version}"),
        ] {
            assert!(info.contains(field), "{arch}: no {field:?} in {info}");
        }
        let conffiles = dpkg_deb(&["--info"], &deb).contains("conffiles");
        assert!(conffiles, "{info}");
        let contents = dpkg_deb(&["--contents"], &deb);
        for (mode, path) in [
            ("-rwxr-xr-x", "./usr/bin/whyrefused"),
            ("-rw-r--r--", "/systemd/system/whyrefused.service"),
            ("-rw-r--r--", "./etc/whyrefused/whyrefused.toml"),
            ("-rw-------", "./etc/whyrefused/tokens"),
            ("-rw-r--r--", "./usr/share/man/man1/whyrefused.1.gz"),
            ("-rw-r--r--", "./usr/share/man/man1/whyrefused-serve.1.gz"),
            ("-rw-r--r--", "./usr/share/bash-completion/completions/whyrefused"),
            ("-rw-r--r--", "./usr/share/zsh/vendor-completions/_whyrefused"),
            ("-rw-r--r--", "./usr/share/fish/vendor_completions.d/whyrefused.fish"),
        ] {
            let line = contents.lines().find(|line| line.ends_with(path));
            let line = line.unwrap_or_else(|| panic!("{arch}: {path} is not packed: {contents}"));
            assert!(line.starts_with(&format!("{mode} 0/0 ")), "{arch}: root's, {mode}: {line}");
        }
        let unpacked = tempfile::tempdir().unwrap();
        let root = unpacked.path();
        let extracted = Command::new("dpkg-deb").arg("-x").arg(&deb).arg(root).status().unwrap();
        assert!(extracted.success());
        let control = unpacked.path().join("DEBIAN");
        let control_extracted =
            Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&control).status().unwrap();
        assert!(control_extracted.success());
        assert_eq!(
            std::fs::read(root.join("usr/bin/whyrefused")).unwrap(),
            std::fs::read(binary(target)).unwrap()
        );
        let unit = ["lib", "usr/lib"]
            .iter()
            .map(|lib| root.join(lib).join("systemd/system/whyrefused.service"))
            .find(|p| p.is_file())
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(unit).unwrap(),
            std::fs::read_to_string(workspace_root().join("deploy/package/whyrefused.service"))
                .unwrap()
        );
        let conffiles = std::fs::read_to_string(control.join("conffiles")).unwrap();
        assert!(
            conffiles.contains("/etc/whyrefused/whyrefused.toml\n")
                && conffiles.contains("/etc/whyrefused/tokens\n"),
            "{conffiles}"
        );
        let postinst = std::fs::read_to_string(control.join("postinst")).unwrap();
        assert!(
            postinst.contains("deb-systemd-helper enable 'whyrefused.service'")
                || postinst.contains("deb-systemd-helper enable whyrefused.service"),
            "{postinst}"
        );
        let page = root.join("usr/share/man/man1/whyrefused-check.1.gz");
        let rendered = Command::new("man")
            .args(["-l", "-P", "cat"])
            .arg(&page)
            .env("MANWIDTH", "100")
            .output()
            .unwrap();
        assert!(
            rendered.status.success() && text(&rendered.stdout).contains("--timeout-ms"),
            "{}",
            text(&rendered.stderr)
        );
        for (shell, check, script) in [
            ("bash", "-n", "usr/share/bash-completion/completions/whyrefused"),
            ("zsh", "-n", "usr/share/zsh/vendor-completions/_whyrefused"),
            ("fish", "--no-execute", "usr/share/fish/vendor_completions.d/whyrefused.fish"),
        ] {
            let loaded = Command::new(shell).arg(check).arg(root.join(script)).output().unwrap();
            assert!(loaded.status.success(), "{shell}: {}", text(&loaded.stderr));
        }
    }
}

#[test]
#[ignore = "needs dist/ from ./dev dist, which runs these tests"]
fn the_dockerfile_copies_one_binary_of_dist_for_each_architecture() {
    let dockerfile = std::fs::read_to_string(workspace_root().join("Dockerfile")).unwrap();
    let sources: Vec<&str> = dockerfile
        .lines()
        .filter_map(|line| line.strip_prefix("COPY "))
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert_eq!(sources.len(), 2, "{dockerfile}");
    for (source, (target, _)) in sources.iter().zip(TARGETS) {
        let (prefix, suffix) = source.strip_prefix("dist/").unwrap().split_once('*').unwrap();
        let matching: Vec<_> = std::fs::read_dir(dist())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.starts_with(prefix) && name.ends_with(suffix))
            .collect();
        assert_eq!(matching.len(), 1, "{source} matches {matching:?}");
        assert_eq!(dist().join(&matching[0]), binary(target));
    }
}

//! Where this process runs, network-wise: its network namespace (the inode of
//! `/proc/self/ns/net`) against PID 1's (where readable) and the named ones in `/run/netns`
//! (`ip netns add`), the signs of a container (`/.dockerenv`, `/run/.containerenv`, a container
//! runtime in `/proc/self/cgroup`, an overlay root filesystem), this namespace's default
//! gateway, and `host.docker.internal` in `/etc/hosts`. Only files are read; nothing is sent,
//! and nothing is concluded here (one sign alone misleads: build machines have `/.dockerenv`).

use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use super::recent::Recent;

/// What the files say about where this process runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    /// The inode of this process's network namespace.
    pub netns: Option<u64>,
    /// The inode of PID 1's network namespace, when readable (`None` without the privilege,
    /// or in a sandbox that hides it).
    pub init_netns: Option<u64>,
    /// The `/run/netns` entry that is this process's namespace, when one is.
    pub netns_name: Option<String>,
    /// Each sign of a container found (`/.dockerenv`, `cgroup docker`).
    pub container_signs: Vec<String>,
    /// This namespace's default IPv4 gateway (a container's bridge address on the host).
    pub gateway: Option<Ipv4Addr>,
    /// The address `/etc/hosts` gives `host.docker.internal`, when it does.
    pub host_alias: Option<IpAddr>,
}

/// The container runtimes whose names show in a cgroup path.
const RUNTIMES: [&str; 6] = ["docker", "kubepods", "containerd", "libpod", "lxc", "crio"];

/// How long a placement read is kept: a process's namespace does not change under it, and a
/// container's files change only when it is rebuilt; a new `ip netns` name shows within this.
const KEPT_FOR: Duration = Duration::from_secs(2);

/// The newest placement read, shared by the checks that need it.
static NEWEST: Recent<Placement> = Recent::new(KEPT_FOR);

/// The placement of this process read within the last [`KEPT_FOR`], if one was.
pub fn recent() -> Option<Placement> {
    NEWEST.fresh()
}

/// Reads the placement of this process now (a few files, `/proc/self/mountinfo` the largest),
/// and keeps it for [`recent`].
pub fn read_and_keep() -> Placement {
    NEWEST.get_or_read(read)
}

/// Reads the placement of this process.
pub fn read() -> Placement {
    let netns = namespace_inode(Path::new("/proc/self/ns/net"));
    Placement {
        netns,
        init_netns: namespace_inode(Path::new("/proc/1/ns/net")),
        netns_name: netns.and_then(|inode| named_namespace(Path::new("/run/netns"), inode)),
        container_signs: container_signs(),
        gateway: std::fs::read_to_string("/proc/net/route").ok().and_then(|t| gateway(&t)),
        host_alias: std::fs::read_to_string("/etc/hosts")
            .ok()
            .and_then(|t| hosts_address(&t, "host.docker.internal")),
    }
}

fn namespace_inode(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.ino())
}

/// The entry of `directory` (`/run/netns`) whose namespace has `inode`.
fn named_namespace(directory: &Path, inode: u64) -> Option<String> {
    let entries = std::fs::read_dir(directory).ok()?;
    // Bounded: a host has a handful of named namespaces, a busy test machine hundreds.
    entries.take(4096).flatten().find_map(|entry| {
        let same = namespace_inode(&entry.path()) == Some(inode);
        same.then(|| entry.file_name().to_string_lossy().into_owned())
    })
}

fn container_signs() -> Vec<String> {
    let mut signs = Vec::new();
    for file in ["/.dockerenv", "/run/.containerenv"] {
        if Path::new(file).exists() {
            signs.push(file.to_string());
        }
    }
    if let Some(runtime) =
        std::fs::read_to_string("/proc/self/cgroup").ok().and_then(|t| cgroup_runtime(&t))
    {
        signs.push(format!("cgroup {runtime}"));
    }
    if std::fs::read_to_string("/proc/self/mountinfo").is_ok_and(|t| overlay_root(&t)) {
        signs.push("overlay root filesystem".into());
    }
    signs
}

/// The container runtime a cgroup path names (`0::/docker/3f2a…`, `…/kubepods/burstable/…`).
fn cgroup_runtime(cgroup: &str) -> Option<&'static str> {
    cgroup.lines().find_map(|line| {
        let path = line.splitn(3, ':').nth(2)?;
        RUNTIMES.iter().copied().find(|runtime| path.contains(runtime))
    })
}

/// Whether the root mount (`/proc/self/mountinfo`'s `/` mount point) is an overlay.
fn overlay_root(mountinfo: &str) -> bool {
    mountinfo.lines().any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let after = fields.iter().position(|f| *f == "-").and_then(|i| fields.get(i + 1));
        fields.get(4) == Some(&"/") && after == Some(&"overlay")
    })
}

/// The default IPv4 gateway of `/proc/net/route` (little-endian hex addresses).
fn gateway(route: &str) -> Option<Ipv4Addr> {
    route.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (destination, gateway) = (fields.get(1)?, fields.get(2)?);
        if *destination != "00000000" {
            return None;
        }
        let raw = u32::from_str_radix(gateway, 16).ok()?;
        (raw != 0).then(|| Ipv4Addr::from(raw.swap_bytes()))
    })
}

/// The first address `/etc/hosts` gives `name`.
fn hosts_address(hosts: &str, name: &str) -> Option<IpAddr> {
    hosts.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or_default();
        let mut words = line.split_whitespace();
        let address: IpAddr = words.next()?.parse().ok()?;
        words.any(|w| w.eq_ignore_ascii_case(name)).then_some(address)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_docker_or_kubernetes_cgroup_is_a_sign_and_a_plain_one_is_not() {
        assert_eq!(cgroup_runtime("0::/docker/3f2a9c\n"), Some("docker"));
        assert_eq!(
            cgroup_runtime("11:memory:/kubepods/burstable/pod1/abc\n0::/\n"),
            Some("kubepods")
        );
        assert_eq!(cgroup_runtime("0::/user.slice/user-1000.slice/session-2.scope\n"), None);
        assert_eq!(cgroup_runtime("4:memory:/process_api/9fc6\n0::/\n"), None);
    }

    #[test]
    fn the_default_gateway_and_an_overlay_root_are_read() {
        let route = "Iface\tDestination\tGateway \tFlags\n\
                     eth0\t000011AC\t00000000\t0001\n\
                     eth0\t00000000\t010011AC\t0003\n";
        assert_eq!(gateway(route), Some(Ipv4Addr::new(172, 17, 0, 1)));
        assert_eq!(gateway("Iface\tDestination\tGateway\n"), None);
        let overlay = "500 400 0:52 / / rw,relatime master:1 - overlay overlay rw,lowerdir=/x\n";
        assert!(overlay_root(overlay));
        assert!(!overlay_root("27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"));
    }

    #[test]
    fn host_docker_internal_is_read_from_etc_hosts() {
        let hosts = "127.0.0.1 localhost\n192.168.65.254 host.docker.internal # Docker\n";
        assert_eq!(hosts_address(hosts, "host.docker.internal"), "192.168.65.254".parse().ok());
        assert_eq!(hosts_address("127.0.0.1 localhost\n", "host.docker.internal"), None);
    }

    #[test]
    fn this_process_has_a_network_namespace() {
        let here = read();
        assert!(here.netns.is_some());
    }
}

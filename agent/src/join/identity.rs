//! This agent's id: random, made the first time it joins a hub and kept in its state directory
//! (`agent-id`). A hub lets a newcomer replace the live link of a name only when the ids match,
//! so the same agent reconnecting takes its name back at once, while another agent given the
//! same name (a cloned VM with the same host name, say) is refused instead of pushing the first
//! one off. Two agents on one host that share a state directory share the id too, so each holds
//! a lock on its name there while it runs: a second one under the same name is refused at start.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use ring::rand::{SecureRandom, SystemRandom};

/// The file in the state directory that holds the id.
pub const AGENT_ID_FILE: &str = "agent-id";

/// Why the id could not be read or kept.
#[derive(Debug, thiserror::Error)]
pub enum AgentIdError {
    #[error(
        "cannot keep this agent's id in {path}: {source}; give --state-dir a directory this \
         user may write"
    )]
    Write { path: PathBuf, source: std::io::Error },
    #[error("cannot read this agent's id from {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} does not hold an agent id (32 hex digits): delete it to make a new one")]
    Invalid { path: PathBuf },
    #[error("the system's random number generator failed")]
    Random,
    #[error(
        "another agent on this host runs under the name '{name}' with the state directory {dir} \
         (it holds {lock}): both would share one agent id and push each other off the hub. Stop \
         it, or give this one another name (its own agent token)"
    )]
    NameInUse { name: String, dir: PathBuf, lock: PathBuf },
    #[error("cannot lock {path}: {source}")]
    Lock { path: PathBuf, source: std::io::Error },
}

/// This agent's hold on its name in its state directory, kept while it runs (released when
/// dropped, or when the process ends however it ends).
#[derive(Debug)]
pub struct NameLock {
    _file: Flock<File>,
}

/// Takes the lock on `name` in `state_dir`, refused while another process holds it.
pub fn hold_name(state_dir: &Path, name: &str) -> Result<NameLock, AgentIdError> {
    let path = state_dir.join(format!("{AGENT_ID_FILE}.{name}.lock"));
    let lock_error = |source| AgentIdError::Lock { path: path.clone(), source };
    std::fs::create_dir_all(state_dir).map_err(lock_error)?;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .mode(0o600)
        .open(&path)
        .map_err(lock_error)?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(file) => Ok(NameLock { _file: file }),
        Err((_, Errno::EWOULDBLOCK)) => Err(AgentIdError::NameInUse {
            name: name.to_string(),
            dir: state_dir.to_path_buf(),
            lock: path,
        }),
        Err((_, errno)) => Err(lock_error(std::io::Error::from(errno))),
    }
}

/// The agent id kept in `state_dir`, made (and kept) if there is none yet.
pub fn load_or_create(state_dir: &Path) -> Result<String, AgentIdError> {
    let path = state_dir.join(AGENT_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => checked(text.trim(), &path),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => create(state_dir, &path),
        Err(source) => Err(AgentIdError::Read { path, source }),
    }
}

/// Makes a new id and puts it at `path`, unless another process of this agent (started at the
/// same moment) put one there first: then that one is the id. The id is written whole to a file
/// of this process's own, then linked into place, so no one ever reads half of it.
fn create(state_dir: &Path, path: &Path) -> Result<String, AgentIdError> {
    let write_error = |source| AgentIdError::Write { path: path.to_path_buf(), source };
    std::fs::create_dir_all(state_dir).map_err(write_error)?;
    let id = new_id()?;
    // Named after the new id too: unique to this attempt, even among threads of one process.
    let own = state_dir.join(format!(".{AGENT_ID_FILE}.{}.{id}", std::process::id()));
    let written =
        write_private(&own, &format!("{id}\n")).and_then(|()| std::fs::hard_link(&own, path));
    let _ = std::fs::remove_file(&own);
    match written {
        Ok(()) => Ok(id),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            load_or_create(state_dir)
        }
        Err(error) => Err(write_error(error)),
    }
}

/// Writes a new file only its owner may read (never through a planted link).
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}

/// 128 random bits in hex.
fn new_id() -> Result<String, AgentIdError> {
    let mut bytes = [0u8; 16];
    SystemRandom::new().fill(&mut bytes).map_err(|_| AgentIdError::Random)?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

fn checked(id: &str, path: &Path) -> Result<String, AgentIdError> {
    match id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()) {
        true => Ok(id.to_string()),
        false => Err(AgentIdError::Invalid { path: path.to_path_buf() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_is_made_once_and_then_kept() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let first = load_or_create(&state).unwrap();
        assert_eq!(first.len(), 32);
        assert_eq!(load_or_create(&state).unwrap(), first, "kept across restarts");
        let other = tempfile::tempdir().unwrap();
        assert_ne!(load_or_create(other.path()).unwrap(), first, "another agent, another id");
    }

    #[test]
    fn agents_started_at_once_in_one_state_directory_agree_on_one_id() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().to_path_buf();
        let ids: Vec<String> = std::thread::scope(|scope| {
            let makers: Vec<_> =
                (0..8).map(|_| scope.spawn(|| load_or_create(&state).unwrap())).collect();
            makers.into_iter().map(|maker| maker.join().unwrap()).collect()
        });
        assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    }

    #[test]
    fn a_name_is_held_by_one_agent_of_a_state_directory_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let held = hold_name(dir.path(), "app1").unwrap();
        let error = hold_name(dir.path(), "app1").unwrap_err().to_string();
        assert!(error.contains("another agent on this host runs under the name 'app1'"), "{error}");
        hold_name(dir.path(), "app2").expect("another name is free");
        drop(held);
        hold_name(dir.path(), "app1").expect("free once its holder is gone");
    }

    #[test]
    fn a_damaged_id_file_says_how_to_fix_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(AGENT_ID_FILE), "not an id").unwrap();
        let error = load_or_create(dir.path()).unwrap_err().to_string();
        assert!(error.contains("delete it to make a new one"), "{error}");
    }
}

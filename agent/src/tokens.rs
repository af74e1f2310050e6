//! Who may use an agent: the tokens of its token file, checked in constant time, with failed
//! attempts counted per peer address and refused for a while once they pile up.
//!
//! A token file holds one token a line: `name:secret` is a client's (it runs requests; a bare
//! `secret` is named `default`), `name:secret:agent` a joining agent's (it may only register, as
//! a vantage point named `name`). Secrets hold no `:`. Blank lines and `#` comments are skipped.
//! The names, never the secrets, appear in logs. The file must be its owner's alone (like ssh's
//! keys): one readable by others is refused.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use ring::digest::{SHA256, digest};
use subtle::ConstantTimeEq;

/// The shortest secret accepted: shorter ones are guessable.
pub const MIN_SECRET_LEN: usize = 16;

/// The name of a token written without one.
pub const DEFAULT_TOKEN_NAME: &str = "default";

/// How many failed attempts a peer address may make per [`FAILURE_WINDOW`].
pub const MAX_FAILURES: u32 = 5;

/// The window over which failed attempts are counted.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// The tokens that open an agent. They can be replaced while the agent runs (the token file
/// reloaded on SIGHUP): sessions already open keep what they were granted.
pub struct Tokens {
    tokens: std::sync::RwLock<Vec<Token>>,
}

impl Clone for Tokens {
    fn clone(&self) -> Self {
        Tokens { tokens: std::sync::RwLock::new(self.current().clone()) }
    }
}

#[derive(Clone)]
struct Token {
    name: String,
    /// What the token may do.
    role: TokenRole,
    /// The secret's SHA-256: compared in constant time whatever the presented length.
    digest: [u8; 32],
}

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRole {
    /// Run requests (`name:secret`): a person, the page, a script, a hub dialling a joined agent.
    Client,
    /// Register as the vantage point of the token's name, and nothing else
    /// (`name:secret:agent`).
    Agent,
}

/// The token a presented secret belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The token's name: the audit log's, and an agent token's vantage point name.
    pub name: String,
    /// What it may do.
    pub role: TokenRole,
}

/// A token file's first token: what this agent presents to a hub (`--join`, `--via`).
#[derive(Debug, Clone)]
pub struct FirstToken {
    /// Its name (a joining agent's default `--name`).
    pub name: String,
    /// Its role.
    pub role: TokenRole,
    /// Its secret.
    pub secret: Secret,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens").field("names", &self.names()).finish()
    }
}

/// Why a token file cannot be used. Each message names the file, the line and the fix.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error("cannot read the token file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("the token file {path} holds no token: write one a line, as name:secret")]
    Empty { path: String },
    #[error("line {line} of {path}: the name before ':' is empty: write name:secret")]
    EmptyName { path: String, line: usize },
    #[error(
        "line {line} of {path}: the secret of '{name}' has {length} characters; use at least \
         {MIN_SECRET_LEN} (for example: openssl rand -hex 24)"
    )]
    ShortSecret { path: String, line: usize, name: String, length: usize },
    #[error("line {line} of {path}: the name '{name}' is used twice: give each token its own name")]
    DuplicateName { path: String, line: usize, name: String },
    #[error(
        "line {line} of {path}: a token is name:secret (a client's) or name:secret:agent (a \
         joining agent's), and a secret may not contain ':'"
    )]
    BadShape { path: String, line: usize },
    #[error(
        "line {line} of {path}: '{name}=…' looks like a name and a secret joined by '=': write \
         {name}:SECRET (a ':' between them; a bare secret may not hold '=' but as base64's \
         padding at its end)"
    )]
    TypoSeparator { path: String, line: usize, name: String },
    #[error(
        "the token file {path} may be read by others (mode {mode:03o}): its secrets must be its \
         owner's alone. Run: chmod 600 {path}"
    )]
    ReadableByOthers { path: String, mode: u32 },
}

impl Tokens {
    /// Reads and checks a token file.
    pub fn load(path: &Path) -> Result<Tokens, TokenFileError> {
        Tokens::parse(&read_private(path)?, &path.display().to_string())
    }

    /// Parses a token file's text (`path` names it in errors).
    pub fn parse(text: &str, path: &str) -> Result<Tokens, TokenFileError> {
        let tokens = entries(text, path)?
            .into_iter()
            .map(|entry| Token {
                name: entry.name,
                role: entry.role,
                digest: sha256(&entry.secret.0),
            })
            .collect();
        Ok(Tokens { tokens: std::sync::RwLock::new(tokens) })
    }

    /// Takes `fresh`'s tokens in place of these (a reloaded token file); returns how many.
    pub fn replace_with(&self, fresh: Tokens) -> usize {
        let fresh = fresh.tokens.into_inner().unwrap_or_else(|e| e.into_inner());
        let count = fresh.len();
        *self.tokens.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        count
    }

    fn current(&self) -> std::sync::RwLockReadGuard<'_, Vec<Token>> {
        self.tokens.read().unwrap_or_else(|e| e.into_inner())
    }

    /// A token file's first token: what this agent presents when it joins a hub or talks to one
    /// (`--join`, `--via`). The file is checked as [`Tokens::load`] checks it.
    pub fn first(path: &Path) -> Result<FirstToken, TokenFileError> {
        let text = read_private(path)?;
        let first = entries(&text, &path.display().to_string())?.swap_remove(0);
        Ok(FirstToken { name: first.name, role: first.role, secret: first.secret })
    }

    /// The token whose secret is `presented`, if any. Every token is compared, in constant
    /// time, so the answer's timing tells nothing about the secrets.
    pub fn verify(&self, presented: &str) -> Option<Holder> {
        let presented = sha256(presented.trim());
        let mut found = None;
        for token in self.current().iter() {
            if bool::from(token.digest.ct_eq(&presented)) {
                found = Some(Holder { name: token.name.clone(), role: token.role });
            }
        }
        found
    }

    /// The tokens' names, for the startup log.
    pub fn names(&self) -> Vec<String> {
        self.current().iter().map(|token| token.name.clone()).collect()
    }
}

/// One checked line of a token file.
struct Entry {
    name: String,
    role: TokenRole,
    secret: Secret,
}

/// Reads a token file that only its owner may read: one readable (or writable) by its group or
/// the world is refused, as ssh refuses such a key, since anyone who can read it holds every
/// token.
fn read_private(path: &Path) -> Result<String, TokenFileError> {
    use std::os::unix::fs::PermissionsExt;
    let shown = path.display().to_string();
    let read_error = |source| TokenFileError::Read { path: shown.clone(), source };
    let mode = std::fs::metadata(path).map_err(read_error)?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(TokenFileError::ReadableByOthers { path: shown, mode: mode & 0o777 });
    }
    std::fs::read_to_string(path).map_err(read_error)
}

/// The entries of a token file's text, checked (`path` names it in errors).
fn entries(text: &str, path: &str) -> Result<Vec<Entry>, TokenFileError> {
    let mut tokens: Vec<Entry> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let entry = raw.trim();
        if entry.is_empty() || entry.starts_with('#') {
            continue;
        }
        let path = path.to_string();
        let fields: Vec<&str> = entry.split(':').map(str::trim).collect();
        if let [secret] = fields[..]
            && let Some(name) = typo_separator(secret)
        {
            return Err(TokenFileError::TypoSeparator { path, line, name: name.to_string() });
        }
        let (name, secret, role) = match fields[..] {
            [secret] => (DEFAULT_TOKEN_NAME, secret, TokenRole::Client),
            [name, secret] => (name, secret, TokenRole::Client),
            [name, secret, "agent"] => (name, secret, TokenRole::Agent),
            _ => return Err(TokenFileError::BadShape { path, line }),
        };
        if name.is_empty() {
            return Err(TokenFileError::EmptyName { path, line });
        }
        if secret.chars().count() < MIN_SECRET_LEN {
            let (name, length) = (name.to_string(), secret.chars().count());
            return Err(TokenFileError::ShortSecret { path, line, name, length });
        }
        if tokens.iter().any(|known| known.name == name) {
            return Err(TokenFileError::DuplicateName { path, line, name: name.to_string() });
        }
        tokens.push(Entry { name: name.to_string(), role, secret: Secret(secret.to_string()) });
    }
    if tokens.is_empty() {
        return Err(TokenFileError::Empty { path: path.to_string() });
    }
    Ok(tokens)
}

/// The name in a bare-secret line that looks like `name=secret` (a typo'd `:`): a name
/// (letters, digits, `.`, `_`, `-`) before the first `=`, and more than base64's padding after it.
fn typo_separator(secret: &str) -> Option<&str> {
    let (name, rest) = secret.split_once('=')?;
    let looks_like_a_name = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    let padding_only = rest.chars().all(|c| c == '=');
    (looks_like_a_name && !padding_only).then_some(name)
}

/// A token's secret, to present to another agent. Its `Debug` hides it, so it never reaches a
/// log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// A secret given directly (the `WHYREFUSED_TOKEN` variable).
    pub fn new(secret: impl Into<String>) -> Secret {
        Secret(secret.into().trim().to_string())
    }

    /// The secret itself, to put in a hello.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

fn sha256(secret: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, secret.as_bytes()).as_ref());
    out
}

/// Failed attempts per peer (an IPv4 address, an IPv6 /64) within the current window.
#[derive(Debug, Default)]
pub struct FailureCounter {
    peers: HashMap<IpAddr, (Instant, u32)>,
}

impl FailureCounter {
    /// Counts a failed attempt from `peer`.
    pub fn record(&mut self, peer: IpAddr, now: Instant) {
        self.forget_old(now);
        let peer = crate::peer::group(peer);
        let entry = self.peers.entry(peer).or_insert((now, 0));
        if now.duration_since(entry.0) >= FAILURE_WINDOW {
            *entry = (now, 0);
        }
        entry.1 += 1;
    }

    /// How long `peer` must wait before trying again, if it failed too often lately.
    pub fn blocked_for(&self, peer: IpAddr, now: Instant) -> Option<Duration> {
        let (since, count) = self.peers.get(&crate::peer::group(peer))?;
        let elapsed = now.duration_since(*since);
        (*count >= MAX_FAILURES && elapsed < FAILURE_WINDOW).then(|| FAILURE_WINDOW - elapsed)
    }

    /// Keeps the map small: drops peers whose window has passed, once it grows.
    fn forget_old(&mut self, now: Instant) {
        if self.peers.len() > 4096 {
            self.peers.retain(|_, (since, _)| now.duration_since(*since) < FAILURE_WINDOW);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# the team\nalice:0123456789abcdef0123\n\n  ci : fedcba9876543210fedc  \n";

    #[test]
    fn a_token_file_names_its_tokens_and_verifies_secrets() {
        let tokens = Tokens::parse(FILE, "tokens").unwrap();
        assert_eq!(tokens.names(), ["alice", "ci"]);
        let name = |secret| tokens.verify(secret).map(|holder| holder.name);
        assert_eq!(name("0123456789abcdef0123").as_deref(), Some("alice"));
        assert_eq!(name(" fedcba9876543210fedc\n").as_deref(), Some("ci"));
        assert_eq!(name("0123456789abcdef012"), None);
        assert_eq!(name(""), None);
        let bare = Tokens::parse("0123456789abcdef0123", "t").unwrap();
        let holder = bare.verify("0123456789abcdef0123").unwrap();
        assert_eq!((holder.name.as_str(), holder.role), (DEFAULT_TOKEN_NAME, TokenRole::Client));
        assert!(!format!("{tokens:?}").contains("0123"), "secrets never reach logs");
    }

    #[test]
    fn bad_token_files_say_which_line_and_what_to_do() {
        let error = |text| Tokens::parse(text, "tokens").unwrap_err().to_string();
        assert!(error("# nothing\n").contains("holds no token"));
        assert!(error(":0123456789abcdef0123").contains("line 1 of tokens: the name before ':'"));
        let short = error("bob:secret");
        assert!(short.contains("line 1") && short.contains("at least 16"), "{short}");
        let twice = error("a:0123456789abcdef0123\na:fedcba9876543210fedc");
        assert!(twice.contains("line 2") && twice.contains("'a' is used twice"), "{twice}");
        let missing = Tokens::load(Path::new("/nonexistent/tokens")).unwrap_err().to_string();
        assert!(missing.contains("cannot read the token file /nonexistent/tokens"), "{missing}");
    }

    #[test]
    fn a_third_field_agent_makes_an_agent_token_and_secrets_hold_no_colon() {
        let tokens =
            Tokens::parse("alice:0123456789abcdef0123\napp1:fedcba9876543210fedc:agent\n", "t")
                .unwrap();
        let app1 = tokens.verify("fedcba9876543210fedc").unwrap();
        assert_eq!((app1.name.as_str(), app1.role), ("app1", TokenRole::Agent));
        assert_eq!(tokens.verify("0123456789abcdef0123").unwrap().role, TokenRole::Client);
        for bad in ["a:0123456789abcdef0123:admin", "a:0123456789:abcdef0123", "x:y:z:w"] {
            let error = Tokens::parse(&format!("# c\n{bad}"), "t").unwrap_err().to_string();
            assert!(
                error.starts_with("line 2 of t:") && error.contains("may not contain ':'"),
                "{error}"
            );
        }
    }

    #[test]
    fn a_line_with_an_equals_sign_for_its_colon_is_refused_naming_the_line() {
        let error = Tokens::parse("# c\nalice=0123456789abcdef0123\n", "t").unwrap_err();
        let error = error.to_string();
        assert!(error.starts_with("line 2 of t: 'alice=…'"), "{error}");
        assert!(error.contains("alice:SECRET") && !error.contains("0123"), "{error}");
        let base64 = Tokens::parse("c2VjcmV0c2VjcmV0c2VjcmV0cw==", "t").unwrap();
        assert_eq!(base64.names(), ["default"], "base64's padding is no separator");
    }

    #[test]
    fn replaced_tokens_verify_at_once_and_the_old_ones_no_longer_do() {
        let tokens = Tokens::parse(FILE, "t").unwrap();
        let fresh = Tokens::parse("bob:bbbbbbbbbbbbbbbbbbbb\n", "t").unwrap();
        assert_eq!(tokens.replace_with(fresh), 1);
        assert_eq!(tokens.verify("bbbbbbbbbbbbbbbbbbbb").unwrap().name, "bob");
        assert_eq!(tokens.verify("0123456789abcdef0123"), None);
    }

    /// A token file written only its owner may read.
    fn private_file(directory: &Path, text: &str) -> std::path::PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = directory.join("tokens");
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    }

    #[test]
    fn the_first_secret_is_the_one_presented_and_never_printed() {
        let directory = tempfile::tempdir().unwrap();
        let path = private_file(directory.path(), FILE);
        let first = Tokens::first(&path).unwrap();
        assert_eq!((first.name.as_str(), first.secret.expose()), ("alice", "0123456789abcdef0123"));
        assert_eq!(format!("{:?}", first.secret), "Secret(…)");
        let path = private_file(directory.path(), "bob:short");
        assert!(Tokens::first(&path).is_err(), "the file is checked as for serving");
    }

    #[test]
    fn a_token_file_others_may_read_is_refused_naming_it_and_the_fix() {
        use std::os::unix::fs::PermissionsExt;
        let directory = tempfile::tempdir().unwrap();
        let path = private_file(directory.path(), FILE);
        assert!(Tokens::load(&path).is_ok());
        for mode in [0o640, 0o604, 0o620] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let error = Tokens::load(&path).unwrap_err().to_string();
            let shown = path.display();
            assert!(error.contains(&format!("chmod 600 {shown}")), "{error}");
            assert!(Tokens::first(&path).is_err(), "for joining too");
        }
    }

    #[test]
    fn failures_block_a_peer_for_the_rest_of_the_window() {
        let mut counter = FailureCounter::default();
        let peer: IpAddr = "192.0.2.9".parse().unwrap();
        let other: IpAddr = "192.0.2.10".parse().unwrap();
        let start = Instant::now();
        for _ in 0..MAX_FAILURES - 1 {
            counter.record(peer, start);
        }
        assert_eq!(counter.blocked_for(peer, start), None);
        counter.record(peer, start);
        assert_eq!(counter.blocked_for(peer, start), Some(FAILURE_WINDOW));
        assert_eq!(counter.blocked_for(other, start), None, "only that peer");
        assert_eq!(counter.blocked_for(peer, start + FAILURE_WINDOW), None, "the window passes");
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            counter.record(v6, start);
        }
        let neighbour: IpAddr = "2001:db8::2:3".parse().unwrap();
        assert!(counter.blocked_for(neighbour, start).is_some(), "IPv6 counts per /64");
    }
}

/// The token file parser against any text: a file is local, but the agent reads it at every
/// start, so no text may panic it or leave an error that does not name the file.
#[cfg(test)]
mod proptests {
    use super::*;

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(300))]

        #[test]
        fn any_token_file_parses_or_names_the_file_in_its_error(
            lines in proptest::collection::vec(
                proptest::prop_oneof![
                    "\\PC{0,40}",
                    "[a-z]{0,6}:[a-zA-Z0-9:]{0,30}",
                    "[a-zA-Z0-9]{10,30}",
                    "#\\PC{0,10}",
                    "[ \t\r]{0,3}",
                ],
                0..12,
            ),
        ) {
            let text = lines.join("\n");
            if let Err(error) = Tokens::parse(&text, "tokens.txt") {
                let message = error.to_string();
                proptest::prop_assert!(message.contains("tokens.txt"), "{}", message);
            }
        }
    }
}

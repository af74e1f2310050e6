//! Who may use an agent: the tokens of its token file, checked in constant time, with failed
//! attempts counted per peer address and refused for a while once they pile up.
//!
//! A token file holds one token a line, `name:secret` (a bare `secret` is named `default`); blank
//! lines and `#` comments are skipped. The names, never the secrets, appear in logs.

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

/// The tokens that open an agent.
#[derive(Clone)]
pub struct Tokens {
    tokens: Vec<Token>,
}

#[derive(Clone)]
struct Token {
    name: String,
    /// The secret's SHA-256: compared in constant time whatever the presented length.
    digest: [u8; 32],
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.tokens.iter().map(|t| t.name.as_str()).collect();
        f.debug_struct("Tokens").field("names", &names).finish()
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
}

impl Tokens {
    /// Reads and checks a token file.
    pub fn load(path: &Path) -> Result<Tokens, TokenFileError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|source| TokenFileError::Read { path: shown.clone(), source })?;
        Tokens::parse(&text, &shown)
    }

    /// Parses a token file's text (`path` names it in errors).
    pub fn parse(text: &str, path: &str) -> Result<Tokens, TokenFileError> {
        let tokens = entries(text, path)?
            .into_iter()
            .map(|(name, secret)| Token { name, digest: sha256(&secret.0) })
            .collect();
        Ok(Tokens { tokens })
    }

    /// The secret of a token file's first token: what this agent presents when it joins a hub
    /// or talks to one (`--join`, `--via`). The file is checked as [`Tokens::load`] checks it.
    pub fn first_secret(path: &Path) -> Result<Secret, TokenFileError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|source| TokenFileError::Read { path: shown.clone(), source })?;
        let mut entries = entries(&text, &shown)?;
        Ok(entries.swap_remove(0).1)
    }

    /// The name of the token whose secret is `presented`, if any. Every token is compared, in
    /// constant time, so the answer's timing tells nothing about the secrets.
    pub fn verify(&self, presented: &str) -> Option<&str> {
        let presented = sha256(presented.trim());
        let mut found = None;
        for token in &self.tokens {
            if bool::from(token.digest.ct_eq(&presented)) {
                found = Some(token.name.as_str());
            }
        }
        found
    }

    /// The tokens' names, for the startup log.
    pub fn names(&self) -> Vec<&str> {
        self.tokens.iter().map(|token| token.name.as_str()).collect()
    }
}

/// The `(name, secret)` entries of a token file's text, checked (`path` names it in errors).
fn entries(text: &str, path: &str) -> Result<Vec<(String, Secret)>, TokenFileError> {
    let mut tokens: Vec<(String, Secret)> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let entry = raw.trim();
        if entry.is_empty() || entry.starts_with('#') {
            continue;
        }
        let (name, secret) = entry.split_once(':').unwrap_or((DEFAULT_TOKEN_NAME, entry));
        let (name, secret) = (name.trim(), secret.trim());
        let path = path.to_string();
        if name.is_empty() {
            return Err(TokenFileError::EmptyName { path, line });
        }
        if secret.chars().count() < MIN_SECRET_LEN {
            let (name, length) = (name.to_string(), secret.chars().count());
            return Err(TokenFileError::ShortSecret { path, line, name, length });
        }
        if tokens.iter().any(|(known, _)| known == name) {
            return Err(TokenFileError::DuplicateName { path, line, name: name.to_string() });
        }
        tokens.push((name.to_string(), Secret(secret.to_string())));
    }
    if tokens.is_empty() {
        return Err(TokenFileError::Empty { path: path.to_string() });
    }
    Ok(tokens)
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
        assert_eq!(tokens.verify("0123456789abcdef0123"), Some("alice"));
        assert_eq!(tokens.verify(" fedcba9876543210fedc\n"), Some("ci"));
        assert_eq!(tokens.verify("0123456789abcdef012"), None);
        assert_eq!(tokens.verify(""), None);
        let bare = Tokens::parse("0123456789abcdef0123", "t").unwrap();
        assert_eq!(bare.verify("0123456789abcdef0123"), Some(DEFAULT_TOKEN_NAME));
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
    fn the_first_secret_is_the_one_presented_and_never_printed() {
        let directory = std::env::temp_dir().join(format!("wr-auth-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let path = directory.join("tokens");
        std::fs::write(&path, FILE).unwrap();
        let secret = Tokens::first_secret(&path).unwrap();
        assert_eq!(secret.expose(), "0123456789abcdef0123");
        assert_eq!(format!("{secret:?}"), "Secret(…)");
        std::fs::write(&path, "bob:short").unwrap();
        assert!(Tokens::first_secret(&path).is_err(), "the file is checked as for serving");
        std::fs::remove_dir_all(&directory).unwrap();
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

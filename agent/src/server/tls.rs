//! TLS for a reachable agent: its certificate (from files, or self-signed once and kept in the
//! state directory), the SHA-256 fingerprint clients pin, the pinned client configuration they
//! connect with, and a listener that hands axum connections whose handshake is done.
//!
//! Handshakes run on their own tasks, with a deadline, so a slow or silent client never holds up
//! the others.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tracing::{debug, warn};

/// The longest a client may take over its TLS handshake.
pub const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(10);

/// The files a self-signed agent keeps in its state directory.
pub const SELF_SIGNED_CERT: &str = "tls-cert.pem";
pub const SELF_SIGNED_KEY: &str = "tls-key.pem";

/// Where an agent's certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateSource {
    /// PEM files given by the operator (`--tls-cert`, `--tls-key`).
    Files { cert: PathBuf, key: PathBuf },
    /// Made on first start and kept in the state directory (`--tls-self-signed`).
    SelfSigned { state_dir: PathBuf, names: Vec<String> },
}

/// Why TLS could not be set up. Each message names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{path} holds no PEM certificate: give the certificate chain, leaf first")]
    NoCertificate { path: String },
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: std::io::Error },
    #[error(
        "the TLS key {path} may be read by others (mode {mode:03o}): a private key must be its \
         owner's alone. Run: chmod 600 {path}"
    )]
    KeyReadableByOthers { path: String, mode: u32 },
    #[error("cannot make a self-signed certificate: {0}")]
    Generate(String),
    #[error("the certificate and key do not work together: {0}")]
    Config(String),
    #[error(
        "'{0}' is not a SHA-256 fingerprint: give 64 hexadecimal digits, with or without ':' \
         between pairs (as the agent prints at start)"
    )]
    BadFingerprint(String),
}

/// A certificate ready to serve, and its fingerprint for clients to pin.
pub struct ServerTls {
    /// The acceptor for incoming connections.
    pub acceptor: TlsAcceptor,
    /// The SHA-256 of the leaf certificate, as `AB:CD:…`.
    pub fingerprint: String,
}

/// Loads (or, for a self-signed agent, makes once) the certificate and key.
pub fn server_tls(source: &CertificateSource) -> Result<ServerTls, TlsError> {
    let (chain, key) = match source {
        CertificateSource::Files { cert, key } => (read_chain(cert)?, read_key(key)?),
        CertificateSource::SelfSigned { state_dir, names } => self_signed(state_dir, names)?,
    };
    let fingerprint = fingerprint(&chain[0]);
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    // WebSockets upgrade over HTTP/1.1.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(ServerTls { acceptor: TlsAcceptor::from(Arc::new(config)), fingerprint })
}

/// The cryptography every TLS configuration of the agent uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let shown = path.display().to_string();
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Read { path: shown.clone(), reason: e.to_string() })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate { path: shown });
    }
    Ok(chain)
}

/// Reads a private key that only its owner may read (as ssh refuses a key others may read).
fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    use std::os::unix::fs::PermissionsExt;
    let shown = path.display().to_string();
    let metadata = std::fs::metadata(path)
        .map_err(|e| TlsError::Read { path: shown.clone(), reason: e.to_string() })?;
    let mode = metadata.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(TlsError::KeyReadableByOthers { path: shown, mode: mode & 0o777 });
    }
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::Read {
        path: path.display().to_string(),
        reason: format!("{e} (give the private key in PEM: PKCS#8, PKCS#1 or SEC1)"),
    })
}

/// The self-signed certificate kept in `state_dir`, made for `names` when absent.
fn self_signed(
    state_dir: &Path,
    names: &[String],
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let (cert_path, key_path) = (state_dir.join(SELF_SIGNED_CERT), state_dir.join(SELF_SIGNED_KEY));
    if cert_path.exists() && key_path.exists() {
        return Ok((read_chain(&cert_path)?, read_key(&key_path)?));
    }
    let made = rcgen::generate_simple_self_signed(names.to_vec())
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    let write_error = |path: &Path| {
        let path = path.display().to_string();
        move |source| TlsError::Write { path, source }
    };
    std::fs::create_dir_all(state_dir).map_err(write_error(state_dir))?;
    create_new(&key_path, made.signing_key.serialize_pem().as_bytes(), 0o600)
        .map_err(write_error(&key_path))?;
    create_new(&cert_path, made.cert.pem().as_bytes(), 0o644).map_err(write_error(&cert_path))?;
    Ok((read_chain(&cert_path)?, read_key(&key_path)?))
}

/// Writes a new file with `mode`. It must not exist yet, not even as a symbolic link (`O_EXCL`,
/// `O_NOFOLLOW`): whoever could plant a link or a file in the state directory could otherwise
/// make the agent write its key where they can read it, or serve a key they chose.
fn create_new(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .mode(mode)
        .open(path)?;
    file.write_all(bytes)
}

/// The SHA-256 of a certificate, as uppercase hex pairs joined by ':'.
pub fn fingerprint(certificate: &CertificateDer<'_>) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, certificate.as_ref());
    let pairs: Vec<String> = digest.as_ref().iter().map(|byte| format!("{byte:02X}")).collect();
    pairs.join(":")
}

/// Reads a fingerprint as printed by an agent (case and ':' separators do not matter).
pub fn parse_fingerprint(text: &str) -> Result<[u8; 32], TlsError> {
    let hex: String = text
        .trim()
        .trim_start_matches("sha256:")
        .chars()
        .filter(|c| *c != ':' && !c.is_whitespace())
        .collect();
    let bad = || TlsError::BadFingerprint(text.to_string());
    // Only ASCII hexadecimal digits, counted as bytes: a multibyte character is refused here,
    // never cut in half below.
    if hex.len() != 64 || !hex.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let mut digest = [0u8; 32];
    for (byte, pair) in digest.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
        let pair = std::str::from_utf8(pair).map_err(|_| bad())?;
        *byte = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
    }
    Ok(digest)
}

/// A client configuration that trusts exactly the server certificate with this SHA-256 (a
/// self-signed agent's), whatever its name or issuer.
pub fn pinned_client_config(pin: [u8; 32]) -> Arc<rustls::ClientConfig> {
    let verifier =
        PinnedCertificate { pin, algorithms: provider().signature_verification_algorithms };
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Arc::new(config)
}

/// Accepts the one certificate whose SHA-256 is pinned; the handshake's signatures are still
/// checked, so only the holder of that certificate's key gets through.
#[derive(Debug)]
struct PinnedCertificate {
    pin: [u8; 32],
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let digest = ring::digest::digest(&ring::digest::SHA256, end_entity.as_ref());
        match digest.as_ref() == self.pin {
            true => Ok(ServerCertVerified::assertion()),
            false => Err(rustls::Error::General(format!(
                "the agent's certificate has fingerprint {}, not the pinned one",
                fingerprint(end_entity)
            ))),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A listener that yields connections whose TLS handshake has completed.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Accepts on `listener` and runs each handshake on its own task.
    pub fn new(listener: TcpListener, acceptor: TlsAcceptor) -> std::io::Result<TlsListener> {
        let local = listener.local_addr()?;
        let (sender, ready) = mpsc::channel(64);
        tokio::spawn(accept_loop(listener, acceptor, sender));
        Ok(TlsListener { ready, local })
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of descriptors and the like: wait a moment rather than spin.
                warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if ready.is_closed() {
            return;
        }
        let _ = stream.set_nodelay(true);
        let (acceptor, ready) = (acceptor.clone(), ready.clone());
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_DEADLINE, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = ready.send((tls, peer)).await;
                }
                Ok(Err(error)) => debug!(%peer, %error, "TLS handshake failed"),
                Err(_) => debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accept loop only ends when this listener is gone.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// Where an agent keeps what it makes for itself: `$STATE_DIRECTORY` (systemd), else
/// `$XDG_STATE_HOME/whyrefused`, else `~/.local/state/whyrefused`.
pub fn default_state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("STATE_DIRECTORY").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("whyrefused");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/var/lib"), PathBuf::from);
    home.join(".local/state/whyrefused")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_signed_certificate_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let source = CertificateSource::SelfSigned {
            state_dir: dir.path().join("state"),
            names: vec!["localhost".into(), "127.0.0.1".into()],
        };
        let first = server_tls(&source).unwrap().fingerprint;
        let again = server_tls(&source).unwrap().fingerprint;
        assert_eq!(first, again, "the same certificate on the next start");
        assert_eq!(first.len(), 32 * 3 - 1);
        let key = dir.path().join("state").join(SELF_SIGNED_KEY);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(key).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn a_self_signed_key_is_never_written_through_a_planted_link_or_over_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir_all(&state).unwrap();
        let elsewhere = dir.path().join("readable-by-all");
        std::os::unix::fs::symlink(&elsewhere, state.join(SELF_SIGNED_KEY)).unwrap();
        let source = CertificateSource::SelfSigned {
            state_dir: state.clone(),
            names: vec!["localhost".into()],
        };
        let error = server_tls(&source).err().expect("refused").to_string();
        assert!(error.contains(SELF_SIGNED_KEY), "{error}");
        assert!(!elsewhere.exists(), "nothing was written through the link");
    }

    #[test]
    fn a_key_others_may_read_is_refused_naming_it_and_the_fix() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let source = CertificateSource::SelfSigned {
            state_dir: state.clone(),
            names: vec!["localhost".into()],
        };
        server_tls(&source).unwrap();
        let key = state.join(SELF_SIGNED_KEY);
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = server_tls(&source).err().expect("refused").to_string();
        assert!(error.contains(&format!("chmod 600 {}", key.display())), "{error}");
        let files = CertificateSource::Files { cert: state.join(SELF_SIGNED_CERT), key };
        assert!(server_tls(&files).is_err(), "a key given with --tls-key too");
    }

    #[test]
    fn fingerprints_read_back_in_any_common_form() {
        let printed = "AB:".repeat(31) + "CD";
        let digest = parse_fingerprint(&printed).unwrap();
        assert_eq!((digest[0], digest[31]), (0xAB, 0xCD));
        assert_eq!(parse_fingerprint(&printed.replace(':', "").to_lowercase()).unwrap(), digest);
        assert_eq!(parse_fingerprint(&format!("sha256:{printed}")).unwrap(), digest);
        let error = parse_fingerprint("AB:CD").unwrap_err().to_string();
        assert!(error.contains("64 hexadecimal digits"), "{error}");
        assert!(parse_fingerprint(&"ZZ".repeat(32)).is_err());
    }

    #[test]
    fn a_fingerprint_with_a_multibyte_character_is_an_error_not_a_panic() {
        // 62 hex digits and one two-byte character: 64 bytes, a character boundary at 63.
        let text = format!("{}é", "a".repeat(62));
        let error = parse_fingerprint(&text).unwrap_err().to_string();
        assert!(error.contains("64 hexadecimal digits"), "{error}");
        assert!(parse_fingerprint(&format!("{}€", "a".repeat(61))).is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(300))]

        #[test]
        fn any_fingerprint_text_parses_or_says_what_is_valid(
            text in proptest::prop_oneof!["\\PC{0,80}", "[0-9a-fA-F: é€]{56,70}"],
        ) {
            if let Err(error) = parse_fingerprint(&text) {
                proptest::prop_assert!(error.to_string().contains("64 hexadecimal digits"));
            }
        }

        #[test]
        fn every_digest_reads_back_from_its_printed_form(digest in proptest::array::uniform32(0u8..)) {
            let printed: Vec<String> = digest.iter().map(|byte| format!("{byte:02X}")).collect();
            proptest::prop_assert_eq!(parse_fingerprint(&printed.join(":")).unwrap(), digest);
        }
    }

    #[test]
    fn bad_files_are_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let source = CertificateSource::Files { cert: empty.clone(), key: empty.clone() };
        let error = server_tls(&source).err().unwrap().to_string();
        assert!(error.contains("empty.pem") && error.contains("no PEM certificate"), "{error}");
        let missing = CertificateSource::Files { cert: dir.path().join("nope.pem"), key: empty };
        assert!(server_tls(&missing).err().unwrap().to_string().contains("nope.pem"));
    }
}

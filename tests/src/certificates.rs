//! TLS certificates for the tests, made the way an operator would: with openssl.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A certificate and its key, as PEM files, and the certificate's SHA-256 fingerprint as
/// openssl prints it (`AB:CD:…`).
pub struct Certificate {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub fingerprint: String,
}

/// Makes a self-signed P-256 certificate for `subject_alt_names` (openssl's form:
/// `IP:127.0.0.1,DNS:hub`) in `directory`, named `{name}-cert.pem` and `{name}-key.pem`.
pub fn with_openssl(directory: &Path, name: &str, subject_alt_names: &str) -> Certificate {
    let (cert, key) =
        (directory.join(format!("{name}-cert.pem")), directory.join(format!("{name}-key.pem")));
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"])
        .args(["-days", "1", "-subj", &format!("/CN={name}")])
        .args(["-addext", &format!("subjectAltName={subject_alt_names}")])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs (./dev setup installs it)");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    // The agent refuses a key that others may read.
    crate::tokens::make_private(&key);
    let printed = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(&cert)
        .output()
        .expect("openssl runs");
    let printed = String::from_utf8_lossy(&printed.stdout);
    let fingerprint = printed.trim().rsplit('=').next().unwrap_or_default().to_string();
    Certificate { cert, key, fingerprint }
}

//! Any `--tls-fingerprint` / `--join-tls-fingerprint` value.
#![no_main]

libfuzzer_sys::fuzz_target!(|text: &str| {
    if let Err(error) = whyrefused::server::tls::parse_fingerprint(text) {
        assert!(!error.to_string().is_empty());
    }
});

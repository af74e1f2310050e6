//! Any `--join` / `--via` URL, with and without a pinned fingerprint.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: (&str, Option<&str>)| {
    let (url, fingerprint) = input;
    if let Err(error) = whyrefused::join::dial::HubUrl::parse(url, fingerprint) {
        assert!(!error.to_string().is_empty());
    }
});

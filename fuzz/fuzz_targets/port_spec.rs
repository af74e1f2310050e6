//! Any port spec a scan request may carry.
#![no_main]

libfuzzer_sys::fuzz_target!(|text: &str| {
    if let Err(error) = whyrefused::scan::ports::PortSpec::parse(text) {
        assert!(!error.to_string().is_empty());
    }
});

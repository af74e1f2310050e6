//! Any text frame a client may send: decoding never panics, and a rejection always says why.
#![no_main]

libfuzzer_sys::fuzz_target!(|text: &str| {
    if let Err(rejection) = whyrefused::wire::decode(text) {
        assert!(!rejection.message.is_empty());
    }
});

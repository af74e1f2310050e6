//! Any token file an operator may write.
#![no_main]

libfuzzer_sys::fuzz_target!(|text: &str| {
    if let Err(error) = whyrefused::tokens::Tokens::parse(text, "tokens") {
        assert!(!error.to_string().is_empty());
    }
});

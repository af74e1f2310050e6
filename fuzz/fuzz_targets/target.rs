//! Any target a client or the command line may give, with and without a port option.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: (&str, Option<u16>)| {
    let (text, port) = input;
    if let Err(error) = whyrefused::target::Target::parse(text, port) {
        assert!(!error.to_string().is_empty());
    }
});

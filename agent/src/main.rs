//! The `whyrefused` binary: all the work is in the library; see [`whyrefused::cli`].

fn main() -> std::process::ExitCode {
    whyrefused::cli::main()
}

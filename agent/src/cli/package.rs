//! What an installed package carries beside the binary, generated from the command line's own
//! definition so it can never disagree with it: shell completions (`whyrefused completions
//! bash`) and the manual pages (`whyrefused manual`, or one page per command with `--out-dir`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory};

use super::{Cli, exit, fail};

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManualArgs {
    /// Write `whyrefused.1` and one page per command (`whyrefused-check.1`...) into this
    /// folder instead of printing the main page.
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
}

/// Prints the completion script of `args.shell`.
pub fn completions(args: CompletionsArgs) -> ExitCode {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "whyrefused", &mut script);
    print(&script)
}

/// Prints the manual page (roff), or writes every page into `--out-dir`.
pub fn manual(args: ManualArgs) -> ExitCode {
    let written = match &args.out_dir {
        Some(dir) => std::fs::create_dir_all(dir)
            .and_then(|()| clap_mangen::generate_to(Cli::command(), dir)),
        None => {
            let mut page = Vec::new();
            match clap_mangen::Man::new(Cli::command()).render(&mut page) {
                Ok(()) => return print(&page),
                Err(error) => Err(error),
            }
        }
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(exit::INTERNAL, &format!("cannot write the manual: {error}")),
    }
}

fn print(bytes: &[u8]) -> ExitCode {
    match std::io::stdout().lock().write_all(bytes) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(exit::INTERNAL, &format!("cannot write to standard output: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_gets_a_script_naming_the_commands() {
        for shell in
            [clap_complete::Shell::Bash, clap_complete::Shell::Zsh, clap_complete::Shell::Fish]
        {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "whyrefused", &mut script);
            let script = String::from_utf8(script).unwrap();
            for word in ["check", "scan", "explain", "timeout-ms"] {
                assert!(script.contains(word), "{shell}: {word} missing");
            }
        }
    }

    #[test]
    fn the_manual_has_a_page_per_command() {
        let dir = tempfile::tempdir().unwrap();
        manual(ManualArgs { out_dir: Some(dir.path().to_path_buf()) });
        let page = std::fs::read_to_string(dir.path().join("whyrefused-check.1")).unwrap();
        assert!(page.starts_with(".ie") || page.contains(".TH whyrefused-check"), "{page}");
        assert!(page.contains("timeout"), "the check's options are documented");
        assert!(dir.path().join("whyrefused.1").exists());
    }
}

//! The agent's config file (`serve --config FILE`, else `/etc/whyrefused/whyrefused.toml` when
//! it exists): TOML whose keys are `serve`'s long options, so a unit file need not carry a long
//! command line and every option has one name whichever way it is given.
//!
//! ```toml
//! listen = "0.0.0.0:7070"
//! token-file = "/etc/whyrefused/tokens"
//! allow = ["10.0.0.0/8", "192.168.0.0/16"]   # a list repeats the option
//! show-processes = true                       # a switch: true gives it, false leaves it out
//! ```
//!
//! The file's options are read before the command line's, and the command line wins: an option
//! given on both takes the command line's value. A key that is not a `serve` option is an error
//! that names it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::CommandFactory;

use super::Cli;

/// Where the config file is read from when `--config` is not given (and only if it exists).
pub const DEFAULT_CONFIG: &str = "/etc/whyrefused/whyrefused.toml";

/// The largest config file read: a few hundred options fit in far less.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Why the config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {message}")]
    Unreadable { path: String, message: String },
    #[error("the config file {path} is not valid TOML: {message}")]
    Invalid { path: String, message: String },
    #[error(
        "unknown key `{key}` in the config file {path}: not an option of `whyrefused serve` (see `whyrefused serve --help`)"
    )]
    UnknownKey { path: String, key: String },
    #[error("key `{key}` in the config file {path}: {problem}")]
    BadValue { path: String, key: String, problem: &'static str },
}

/// The command line with the config file's options put in front of `serve`'s own, when the
/// command is `serve` (or none, which means `serve`); other commands' arguments are returned
/// as they are.
pub fn with_config_file(arguments: Vec<OsString>) -> Result<Vec<OsString>, ConfigError> {
    let serving = match arguments.get(1).and_then(|word| word.to_str()) {
        None => true,
        Some(word) => word == "serve",
    };
    if !serving {
        return Ok(arguments);
    }
    let mut rest: Vec<OsString> = arguments.iter().skip(2).cloned().collect();
    let path = match config_option(&rest) {
        Some(path) => path,
        None if Path::new(DEFAULT_CONFIG).is_file() => {
            rest.extend(["--config".into(), DEFAULT_CONFIG.into()]);
            PathBuf::from(DEFAULT_CONFIG)
        }
        None => return Ok(arguments),
    };
    let mut combined = vec![arguments[0].clone(), "serve".into()];
    combined.extend(options_of(&path)?);
    combined.extend(rest);
    Ok(combined)
}

/// The FILE of `--config FILE` (or `--config=FILE`) among `serve`'s arguments.
fn config_option(arguments: &[OsString]) -> Option<PathBuf> {
    let at = arguments.iter().position(|word| {
        word == "--config" || word.to_str().is_some_and(|w| w.starts_with("--config="))
    })?;
    match arguments[at].to_str().and_then(|w| w.strip_prefix("--config=")) {
        Some(path) => Some(PathBuf::from(path)),
        // `--config` last, with no file: clap says what is missing.
        None => arguments.get(at + 1).map(PathBuf::from),
    }
}

/// The file's options as command-line words.
fn options_of(path: &Path) -> Result<Vec<OsString>, ConfigError> {
    let shown = path.display().to_string().escape_debug().to_string();
    let unreadable = |message: String| ConfigError::Unreadable { path: shown.clone(), message };
    let size = std::fs::metadata(path).map_err(|e| unreadable(e.to_string()))?.len();
    if size > MAX_CONFIG_BYTES {
        return Err(unreadable(format!("larger than {MAX_CONFIG_BYTES} bytes")));
    }
    let text = std::fs::read_to_string(path).map_err(|e| unreadable(e.to_string()))?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| ConfigError::Invalid {
        path: shown.clone(),
        message: e.message().to_string(),
    })?;
    let known = serve_options();
    let mut words = Vec::new();
    for (key, value) in &table {
        let Some(option) = known.iter().find(|option| option.name == *key) else {
            let key = key.escape_debug().to_string();
            return Err(ConfigError::UnknownKey { path: shown, key });
        };
        let bad =
            |problem| ConfigError::BadValue { path: shown.clone(), key: key.clone(), problem };
        words.extend(option_words(option, value).map_err(bad)?);
    }
    Ok(words)
}

/// One long option of `serve`, as its definition says.
struct ServeOption {
    name: String,
    /// A switch (no value): given or not.
    switch: bool,
}

fn serve_options() -> Vec<ServeOption> {
    let command = Cli::command();
    let Some(serve) = command.find_subcommand("serve") else { return Vec::new() };
    serve
        .get_arguments()
        .filter_map(|argument| {
            let name = argument.get_long()?;
            (name != "config" && name != "help").then(|| ServeOption {
                name: name.to_string(),
                switch: !argument.get_action().takes_values(),
            })
        })
        .collect()
}

/// The words one key of the file stands for: `--key value`, repeated for a list; `--key` for
/// a switch set to true.
fn option_words(option: &ServeOption, value: &toml::Value) -> Result<Vec<OsString>, &'static str> {
    let flag = OsString::from(format!("--{}", option.name));
    if option.switch {
        return match value {
            toml::Value::Boolean(true) => Ok(vec![flag]),
            toml::Value::Boolean(false) => Ok(Vec::new()),
            _ => Err("a switch takes true or false"),
        };
    }
    let values = match value {
        toml::Value::Array(items) => items.iter().map(scalar).collect::<Result<Vec<_>, _>>()?,
        other => vec![scalar(other)?],
    };
    Ok(values.into_iter().flat_map(|value| [flag.clone(), value.into()]).collect())
}

/// A string, number or boolean as the command line would write it.
fn scalar(value: &toml::Value) -> Result<String, &'static str> {
    match value {
        toml::Value::String(text) => Ok(text.clone()),
        toml::Value::Integer(number) => Ok(number.to_string()),
        toml::Value::Float(number) => Ok(number.to_string()),
        toml::Value::Boolean(flag) => Ok(flag.to_string()),
        _ => Err("takes a string, a number or a list of them, not a table or a date"),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn words(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    fn config(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    }

    #[test]
    fn the_files_options_come_before_the_command_lines() {
        let file = config(
            "listen = \"0.0.0.0:7070\"\nallow = [\"10.0.0.0/8\", \"192.168.0.0/16\"]\n\
             show-processes = true\nallow-loopback = false\nmax-sessions = 50\n",
        );
        let path = file.path().to_str().unwrap();
        let line = words(&["whyrefused", "serve", "--config", path, "--listen", "127.0.0.1:9"]);
        let combined = with_config_file(line).unwrap();
        assert_eq!(
            combined,
            words(&[
                "whyrefused",
                "serve",
                "--allow",
                "10.0.0.0/8",
                "--allow",
                "192.168.0.0/16",
                "--listen",
                "0.0.0.0:7070",
                "--max-sessions",
                "50",
                "--show-processes",
                "--config",
                path,
                "--listen",
                "127.0.0.1:9",
            ])
        );
        let Some(super::super::Command::Serve(serve)) = Cli::parse_from(combined).command else {
            panic!("serve parses as serve");
        };
        assert_eq!(serve.listen, Some("127.0.0.1:9".parse().unwrap()), "the command line wins");
        assert_eq!(serve.allow.len(), 2, "{:?}", serve.allow);
        assert!(serve.show_processes);
    }

    #[test]
    fn an_unknown_key_or_a_wrong_value_is_named() {
        let file = config("listen = \"0.0.0.0:7070\"\nlisten-adress = \"x\"\n");
        let path = file.path().to_str().unwrap();
        let error =
            with_config_file(words(&["whyrefused", "serve", "--config", path])).unwrap_err();
        assert!(
            error.to_string().starts_with("unknown key `listen-adress` in the config file"),
            "{error}"
        );
        let file = config("show-processes = \"yes\"\n");
        let path = format!("--config={}", file.path().to_str().unwrap());
        let error = with_config_file(words(&["whyrefused", "serve", &path])).unwrap_err();
        assert!(
            error.to_string().contains("`show-processes`")
                && error.to_string().contains("true or false"),
            "{error}"
        );
        let file = config("listen = [\n");
        let path = file.path().to_str().unwrap();
        let error =
            with_config_file(words(&["whyrefused", "serve", "--config", path])).unwrap_err();
        assert!(matches!(error, ConfigError::Invalid { .. }), "{error}");
        let error =
            with_config_file(words(&["whyrefused", "serve", "--config", "/nonexistent/w.toml"]))
                .unwrap_err();
        assert!(matches!(error, ConfigError::Unreadable { .. }), "{error}");
    }

    #[test]
    fn other_commands_are_left_alone() {
        let line = words(&["whyrefused", "check", "db:5432", "--config", "x"]);
        assert_eq!(with_config_file(line.clone()).unwrap(), line);
    }
}

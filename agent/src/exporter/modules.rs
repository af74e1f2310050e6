//! The probe modules of `--probe-config FILE`: blackbox_exporter's module file, read for the
//! prober kinds whyrefused has (tcp, tls, http).
//!
//! A module whose options all mean the same here is loaded; one of another prober kind (icmp,
//! dns, grpc), or using a blackbox_exporter option whyrefused does not implement (a TCP
//! `query_response`, an HTTP `method: POST`, a client certificate), is skipped with one warning
//! naming why, so blackbox_exporter's own file loads as it is. An option neither knows (a typo)
//! is an error naming the module and the option: a probe must never quietly mean something else.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_norway::{Mapping, Value};

/// The module a `/probe` without `module=` runs.
pub const DEFAULT_MODULE: &str = "tcp_connect";

/// What a module does after the TCP connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeKind {
    /// Connect only (blackbox_exporter's `tcp`).
    Tcp,
    /// Connect, then a TLS handshake (`tcp` with `tls: true`, or whyrefused's `tls`).
    Tls,
    /// Connect, TLS for `https://`, then one HTTP request (`http`).
    Http,
}

/// The address family whose address a probe reports as *the* address (`probe_ip_protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpProtocol {
    /// `ip4`.
    V4,
    /// `ip6` (blackbox_exporter's default).
    V6,
}

/// One loaded module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    /// What it does.
    pub kind: ProbeKind,
    /// The longest the whole probe may take; `None`: the scrape's own timeout decides.
    pub timeout: Option<Duration>,
    /// Rounds after the first (whyrefused's `retries`), to tell intermittent from persistent.
    pub retries: u32,
    /// The family whose address is reported first.
    pub preferred_ip: IpProtocol,
    /// Whether a target without an address of that family may be reported by the other's.
    pub ip_fallback: bool,
    /// HTTP: the statuses that count as success; empty means 2xx.
    pub valid_status_codes: Vec<u16>,
    /// HTTP: follow redirects (blackbox_exporter's default: yes).
    pub follow_redirects: bool,
}

impl Module {
    /// A module of `kind` with blackbox_exporter's defaults.
    pub fn of(kind: ProbeKind) -> Module {
        Module {
            kind,
            timeout: None,
            retries: 0,
            preferred_ip: IpProtocol::V6,
            ip_fallback: true,
            valid_status_codes: Vec::new(),
            follow_redirects: true,
        }
    }
}

/// The modules a probe may name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Modules {
    modules: BTreeMap<String, Module>,
}

impl Default for Modules {
    /// Without a file: `tcp_connect`, `tls` and `http_2xx`, as blackbox_exporter names them.
    fn default() -> Self {
        let modules = [
            (DEFAULT_MODULE, Module::of(ProbeKind::Tcp)),
            ("tls", Module::of(ProbeKind::Tls)),
            ("http_2xx", Module::of(ProbeKind::Http)),
        ];
        Modules { modules: modules.into_iter().map(|(name, m)| (name.to_string(), m)).collect() }
    }
}

/// A module left out of a file, and why: logged once as a warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The module's name.
    pub module: String,
    /// Why it was left out.
    pub reason: String,
}

/// A file's modules and the ones it skipped.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// What probes may name.
    pub modules: Modules,
    /// What was left out.
    pub skipped: Vec<Skipped>,
}

/// Why a module file cannot be used. Each message names the file and what to change.
#[derive(Debug, thiserror::Error)]
pub enum ModuleFileError {
    #[error("cannot read the probe config {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("the probe config {path} is not valid YAML: {message}")]
    Yaml { path: String, message: String },
    #[error(
        "the probe config {path} has no `modules:` mapping (write modules: then one module a key)"
    )]
    NoModules { path: String },
    #[error(
        "the probe config {path} has an unknown key `{key}` at its top: only `modules` is read"
    )]
    UnknownTopKey { path: String, key: String },
    #[error(
        "module {module} in {path}: unknown option `{option}` (neither whyrefused nor blackbox_exporter has it: a typo?)"
    )]
    UnknownOption { path: String, module: String, option: String },
    #[error("module {module} in {path}: `{option}` {problem}")]
    BadValue { path: String, module: String, option: String, problem: String },
    #[error("module {module} in {path}: it has no `prober:` (tcp, tls or http)")]
    NoProber { path: String, module: String },
}

impl Modules {
    /// The module named `name`.
    pub fn get(&self, name: &str) -> Option<&Module> {
        self.modules.get(name)
    }

    /// The names of every module, for an error that lists them.
    pub fn names(&self) -> Vec<&str> {
        self.modules.keys().map(String::as_str).collect()
    }

    /// Reads a module file.
    pub fn load(path: &Path) -> Result<Loaded, ModuleFileError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|source| ModuleFileError::Read { path: shown.clone(), source })?;
        Modules::parse(&text, &shown)
    }

    /// Parses a module file's text (`path` names it in errors).
    pub fn parse(text: &str, path: &str) -> Result<Loaded, ModuleFileError> {
        let yaml: Value = serde_norway::from_str(text).map_err(|error| ModuleFileError::Yaml {
            path: path.into(),
            message: error.to_string(),
        })?;
        let entries = top_modules(&yaml, path)?;
        let mut loaded =
            Loaded { modules: Modules { modules: BTreeMap::new() }, skipped: Vec::new() };
        for (name, body) in entries {
            let name = name.as_str().unwrap_or_default().to_string();
            let reader = Reader { path, module: &name };
            match reader.module(body)? {
                Read::Loaded(module) => {
                    loaded.modules.modules.insert(name, module);
                }
                Read::Skipped(reason) => loaded.skipped.push(Skipped { module: name, reason }),
            }
        }
        Ok(loaded)
    }
}

/// The `modules:` mapping of a file, after checking nothing else sits beside it.
fn top_modules<'a>(yaml: &'a Value, path: &str) -> Result<&'a Mapping, ModuleFileError> {
    let top = yaml.as_mapping().ok_or(ModuleFileError::NoModules { path: path.into() })?;
    if let Some(key) = top.keys().find(|key| key.as_str() != Some("modules")) {
        let key = key.as_str().unwrap_or("(not text)").to_string();
        return Err(ModuleFileError::UnknownTopKey { path: path.into(), key });
    }
    top.get("modules")
        .and_then(Value::as_mapping)
        .ok_or(ModuleFileError::NoModules { path: path.into() })
}

/// How one module was read.
enum Read {
    Loaded(Module),
    Skipped(String),
}

/// What the options of one section may be.
struct Options {
    /// The section, for messages (`tcp`, `http`, `tls_config`).
    section: &'static str,
    /// Options whyrefused reads.
    read: &'static [&'static str],
    /// blackbox_exporter's options that whyrefused does not implement: a module using one is
    /// skipped (unless it holds the option's default, which means the same here).
    skipped: &'static [(&'static str, Option<&'static str>)],
}

const MODULE_OPTIONS: Options = Options {
    section: "module",
    read: &["prober", "timeout", "retries", "tcp", "http", "icmp", "dns", "grpc"],
    skipped: &[],
};

const TCP_OPTIONS: Options = Options {
    section: "tcp",
    read: &["preferred_ip_protocol", "ip_protocol_fallback", "tls", "tls_config"],
    skipped: &[("query_response", None), ("source_ip_address", None)],
};

const HTTP_OPTIONS: Options = Options {
    section: "http",
    read: &[
        "preferred_ip_protocol",
        "ip_protocol_fallback",
        "valid_status_codes",
        "follow_redirects",
        "no_follow_redirects",
        "method",
        "tls_config",
    ],
    skipped: &[
        ("valid_http_versions", None),
        ("headers", None),
        ("body", None),
        ("body_size_limit", Some("0")),
        ("compression", Some("")),
        ("fail_if_ssl", Some("false")),
        ("fail_if_not_ssl", Some("false")),
        ("fail_if_body_matches_regexp", None),
        ("fail_if_body_not_matches_regexp", None),
        ("fail_if_header_matches", None),
        ("fail_if_header_not_matches", None),
        ("basic_auth", None),
        ("bearer_token", None),
        ("bearer_token_file", None),
        ("authorization", None),
        ("oauth2", None),
        ("proxy_url", None),
        ("no_proxy", None),
        ("proxy_from_environment", Some("false")),
        ("proxy_connect_header", None),
        ("skip_resolve_phase_with_proxy", Some("false")),
        ("enable_http2", None),
        ("enable_http2", None),
        ("source_ip_address", None),
        ("http_client_config", None),
    ],
};

const TLS_CONFIG_OPTIONS: Options = Options {
    section: "tls_config",
    read: &[],
    skipped: &[
        ("insecure_skip_verify", Some("false")),
        ("ca_file", None),
        ("cert_file", None),
        ("key_file", None),
        ("server_name", None),
        ("min_version", None),
        ("max_version", None),
    ],
};

/// Reads one module, naming the file and module in every error.
struct Reader<'a> {
    path: &'a str,
    module: &'a str,
}

impl Reader<'_> {
    fn module(&self, body: &Value) -> Result<Read, ModuleFileError> {
        let body = self.mapping(body, "module")?;
        if let Some(reason) = self.check_options(body, &MODULE_OPTIONS)? {
            return Ok(Read::Skipped(reason));
        }
        let prober = body.get("prober").and_then(Value::as_str);
        let kind = match prober {
            Some("tcp") => ProbeKind::Tcp,
            Some("tls") => ProbeKind::Tls,
            Some("http") => ProbeKind::Http,
            Some(other @ ("icmp" | "dns" | "grpc")) => {
                return Ok(Read::Skipped(format!(
                    "prober {other}: whyrefused probes TCP (tcp, tls, http)"
                )));
            }
            Some(other) => {
                return Err(self.bad("prober", format!("is {other:?}: use tcp, tls or http")));
            }
            None => {
                return Err(ModuleFileError::NoProber {
                    path: self.path.into(),
                    module: self.module.into(),
                });
            }
        };
        let mut module = Module::of(kind);
        module.timeout = self.duration(body.get("timeout"))?;
        module.retries = self.retries(body.get("retries"))?;
        let section = match kind {
            ProbeKind::Http => body.get("http").map(|v| (v, &HTTP_OPTIONS)),
            ProbeKind::Tcp | ProbeKind::Tls => body.get("tcp").map(|v| (v, &TCP_OPTIONS)),
        };
        if let Some((section, options)) = section {
            let section = self.mapping(section, options.section)?;
            if let Some(reason) = self.check_options(section, options)? {
                return Ok(Read::Skipped(reason));
            }
            if let Some(reason) = self.apply(section, &mut module)? {
                return Ok(Read::Skipped(reason));
            }
        }
        Ok(Read::Loaded(module))
    }

    /// Reads a section's options into `module`; says why the module is skipped, if it is.
    fn apply(
        &self,
        section: &Mapping,
        module: &mut Module,
    ) -> Result<Option<String>, ModuleFileError> {
        if let Some(tls_config) = section.get("tls_config") {
            let tls_config = self.mapping(tls_config, "tls_config")?;
            if let Some(reason) = self.check_options(tls_config, &TLS_CONFIG_OPTIONS)? {
                return Ok(Some(reason));
            }
        }
        if let Some(protocol) = section.get("preferred_ip_protocol") {
            module.preferred_ip = match protocol.as_str() {
                Some("ip4") => IpProtocol::V4,
                Some("ip6") => IpProtocol::V6,
                _ => return Err(self.bad("preferred_ip_protocol", "must be ip4 or ip6".into())),
            };
        }
        module.ip_fallback = self.flag(section, "ip_protocol_fallback")?.unwrap_or(true);
        if self.flag(section, "tls")? == Some(true) {
            module.kind = ProbeKind::Tls;
        }
        if let Some(follow) = self.flag(section, "follow_redirects")? {
            module.follow_redirects = follow;
        }
        if self.flag(section, "no_follow_redirects")? == Some(true) {
            module.follow_redirects = false;
        }
        if let Some(method) = section.get("method")
            && !method.as_str().is_some_and(|m| m.eq_ignore_ascii_case("GET"))
        {
            return Ok(Some(format!("http.method {}: whyrefused sends GET only", show(method))));
        }
        module.valid_status_codes = self.statuses(section.get("valid_status_codes"))?;
        Ok(None)
    }

    /// Errors on an option neither program knows; says why the module is skipped when it uses
    /// one of blackbox_exporter's that whyrefused lacks (other than with its default value).
    fn check_options(
        &self,
        section: &Mapping,
        options: &Options,
    ) -> Result<Option<String>, ModuleFileError> {
        for (key, value) in section {
            let key = key.as_str().unwrap_or("(not text)");
            if options.read.contains(&key) {
                continue;
            }
            let Some((_, default)) = options.skipped.iter().find(|(name, _)| *name == key) else {
                return Err(ModuleFileError::UnknownOption {
                    path: self.path.into(),
                    module: self.module.into(),
                    option: format!("{}.{key}", options.section)
                        .trim_start_matches("module.")
                        .to_string(),
                });
            };
            if default.is_some_and(|default| show(value) == default) {
                continue;
            }
            return Ok(Some(format!(
                "{}.{key} is a blackbox_exporter option whyrefused does not implement",
                options.section
            )));
        }
        Ok(None)
    }

    fn mapping<'v>(&self, value: &'v Value, option: &str) -> Result<&'v Mapping, ModuleFileError> {
        match value {
            Value::Mapping(mapping) => Ok(mapping),
            _ => Err(self.bad(option, "must be a mapping of options".into())),
        }
    }

    fn flag(&self, section: &Mapping, option: &str) -> Result<Option<bool>, ModuleFileError> {
        match section.get(option) {
            None => Ok(None),
            Some(Value::Bool(flag)) => Ok(Some(*flag)),
            Some(_) => Err(self.bad(option, "must be true or false".into())),
        }
    }

    fn duration(&self, value: Option<&Value>) -> Result<Option<Duration>, ModuleFileError> {
        let Some(value) = value else { return Ok(None) };
        let text = show(value);
        match humantime::parse_duration(&text) {
            Ok(duration) if !duration.is_zero() => Ok(Some(duration)),
            _ => {
                Err(self
                    .bad("timeout", format!("is {text:?}: write a duration such as 5s or 500ms")))
            }
        }
    }

    fn retries(&self, value: Option<&Value>) -> Result<u32, ModuleFileError> {
        let Some(value) = value else { return Ok(0) };
        value
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n <= whyrefused_shared::MAX_RETRIES)
            .ok_or_else(|| {
                self.bad("retries", format!("must be from 0 to {}", whyrefused_shared::MAX_RETRIES))
            })
    }

    fn statuses(&self, value: Option<&Value>) -> Result<Vec<u16>, ModuleFileError> {
        let Some(value) = value else { return Ok(Vec::new()) };
        let problem = || {
            self.bad("valid_status_codes", "must be a list of HTTP statuses (100 to 599)".into())
        };
        let list = value.as_sequence().ok_or_else(problem)?;
        list.iter()
            .map(|status| {
                status
                    .as_u64()
                    .and_then(|s| u16::try_from(s).ok())
                    .filter(|s| (100..=599).contains(s))
            })
            .collect::<Option<Vec<u16>>>()
            .ok_or_else(problem)
    }

    fn bad(&self, option: &str, problem: String) -> ModuleFileError {
        ModuleFileError::BadValue {
            path: self.path.into(),
            module: self.module.into(),
            option: option.into(),
            problem,
        }
    }
}

/// A scalar as the file wrote it (`false`, `5s`, `POST`).
fn show(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Bool(flag) => flag.to_string(),
        Value::Number(number) => number.to_string(),
        Value::Null => String::new(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Loaded, ModuleFileError> {
        Modules::parse(text, "probe.yml")
    }

    #[test]
    fn tcp_tls_and_http_modules_load_with_their_options() {
        let loaded = parse(
            "modules:\n  tcp_connect:\n    prober: tcp\n    timeout: 2s\n    retries: 2\n    \
             tcp:\n      preferred_ip_protocol: ip4\n  tls:\n    prober: tcp\n    tcp:\n      \
             tls: true\n  health:\n    prober: http\n    http:\n      valid_status_codes: [200, 204]\n      \
             follow_redirects: false\n",
        )
        .unwrap();
        assert!(loaded.skipped.is_empty());
        let tcp = loaded.modules.get("tcp_connect").unwrap();
        assert_eq!(
            (tcp.kind, tcp.timeout, tcp.retries),
            (ProbeKind::Tcp, Some(Duration::from_secs(2)), 2)
        );
        assert_eq!(tcp.preferred_ip, IpProtocol::V4);
        assert_eq!(loaded.modules.get("tls").unwrap().kind, ProbeKind::Tls);
        let health = loaded.modules.get("health").unwrap();
        assert_eq!(health.valid_status_codes, [200, 204]);
        assert!(!health.follow_redirects);
    }

    #[test]
    fn other_prober_kinds_and_unimplemented_options_skip_their_module_with_the_reason() {
        let loaded = parse(
            "modules:\n  icmp:\n    prober: icmp\n  post:\n    prober: http\n    http:\n      \
             method: POST\n  banner:\n    prober: tcp\n    tcp:\n      query_response:\n      - expect: x\n  \
             strict:\n    prober: http\n    http:\n      fail_if_ssl: false\n",
        )
        .unwrap();
        let skipped: Vec<&str> = loaded.skipped.iter().map(|s| s.module.as_str()).collect();
        assert_eq!(skipped, ["icmp", "post", "banner"]);
        assert!(loaded.skipped[1].reason.contains("GET only"), "{:?}", loaded.skipped[1]);
        assert!(loaded.skipped[2].reason.contains("tcp.query_response"));
        assert!(loaded.modules.get("strict").is_some(), "an option at its default means the same");
    }

    #[test]
    fn an_unknown_option_is_an_error_naming_module_and_option() {
        let error =
            parse("modules:\n  m:\n    prober: tcp\n    tcp:\n      tsl: true\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "module m in probe.yml: unknown option `tcp.tsl` (neither whyrefused nor \
             blackbox_exporter has it: a typo?)"
        );
        let error = parse("modules:\n  m:\n    prober: tcp\n    timeuot: 5s\n").unwrap_err();
        assert!(error.to_string().contains("`timeuot`"), "{error}");
    }

    #[test]
    fn bad_values_and_shapes_are_named() {
        let bad_timeout =
            parse("modules:\n  m:\n    prober: tcp\n    timeout: soon\n").unwrap_err();
        assert!(bad_timeout.to_string().contains("5s or 500ms"), "{bad_timeout}");
        let bad_prober = parse("modules:\n  m:\n    prober: udp\n").unwrap_err();
        assert!(bad_prober.to_string().contains("tcp, tls or http"), "{bad_prober}");
        assert!(matches!(parse("jobs: []\n"), Err(ModuleFileError::UnknownTopKey { .. })));
        assert!(matches!(parse("modules:\n  m: {}\n"), Err(ModuleFileError::NoProber { .. })));
    }
}

//! Builds the web page into the agent, so that `cargo build -p whyrefused` alone gives one binary
//! that serves its own page.
//!
//! 1. Compiles the `whyrefused-frontend` crate for `wasm32-unknown-unknown` with the
//!    `wasm-release` profile, by running cargo again with its own target directory
//!    (`<workspace>/target/page`, so the outer build's lock is never waited on) and with the outer
//!    build's environment removed (its flags, target and wrappers are meant for the agent, not the
//!    page).
//! 2. Runs wasm-bindgen on it as a library (`wasm-bindgen-cli-support`, the same exact version as
//!    the `wasm-bindgen` crate the page uses), `--target web` style, into `$OUT_DIR/page/`, and
//!    copies `index.html` and `style.css` beside the output.
//! 3. Compresses every file (gzip at its best level: once here, never per request; every
//!    browser takes gzip, and a brotli copy would weigh about 370 KB more in the binary), names each with a strong ETag (its SHA-256), and writes `$OUT_DIR/page_assets.rs`:
//!    a `PAGE_ASSETS` table the agent `include!`s and serves, and `PAGE_SCRIPT_HASH`, the
//!    Content-Security-Policy hash of `index.html`'s inline module script.

use std::env;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use sha2::{Digest, Sha256};

/// The page's target triple.
const WASM_TARGET: &str = "wasm32-unknown-unknown";
/// The profile the page is built with (defined in the workspace's `Cargo.toml`).
const WASM_PROFILE: &str = "wasm-release";
/// The page's package, and the name its wasm file gets (binaries keep the hyphens).
const FRONTEND_PACKAGE: &str = "whyrefused-frontend";
/// The stem of wasm-bindgen's output, which `index.html` imports.
const BINDGEN_NAME: &str = "whyrefused_frontend";

/// Variables a build script's cargo receives that would steer the inner build wrongly: flags and
/// wrappers meant for the agent's target, the outer target directory, and what cargo tells build
/// scripts about the package being built.
const OUTER_VARIABLES: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "RUSTDOCFLAGS",
    "CARGO_ENCODED_RUSTDOCFLAGS",
    "CARGO_BUILD_TARGET",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_BUILD_BUILD_DIR",
    "RUSTC_WRAPPER",
    "CARGO_BUILD_RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_BUILD_RUSTC_WORKSPACE_WRAPPER",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_MANIFEST_LINKS",
    "CARGO_CRATE_NAME",
    "CARGO_BIN_NAME",
    "CARGO_RUSTC_CURRENT_DIR",
    "OUT_DIR",
    "TARGET",
    "HOST",
    "PROFILE",
    "OPT_LEVEL",
    "DEBUG",
    "NUM_JOBS",
    "RUSTC_LINKER",
    "RUSTDOC",
    "CARGO_LLVM_COV",
];

/// Prefixes of the same kind: per-package, per-cfg and per-feature variables, and coverage tools'
/// wrapper settings.
const OUTER_PREFIXES: &[&str] =
    &["CARGO_CFG_", "CARGO_FEATURE_", "CARGO_PKG_", "DEP_", "CARGO_LLVM_COV_", "__CARGO_"];

/// Set, the agent is built without its page (for tooling builds such as the fuzz targets, which
/// never serve it): the asset table is empty.
const NO_PAGE: &str = "WHYREFUSED_NO_PAGE";

/// The asset table of a build without the page.
const NO_PAGE_TABLE: &str = "// Built with WHYREFUSED_NO_PAGE: no page.\n\
    pub static PAGE_ASSETS: [Asset; 0] = [];\n\
    pub const PAGE_SCRIPT_HASH: &str = \"'none'\";\n";

/// Variables the inner build reads from the user's environment: a change must rebuild the page.
const INNER_VARIABLES: &[&str] = &[
    "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS",
    "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER",
    "CARGO_NET_OFFLINE",
];

/// Set by `./dev dist`: the commit a release is built from, which `--version` names.
const COMMIT: &str = "WHYREFUSED_COMMIT";

fn main() {
    declare_version();
    let manifest_dir = PathBuf::from(env_var("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .parent()
        .expect("the agent's manifest lives in a folder of the workspace")
        .to_path_buf();
    let out_dir = PathBuf::from(env_var("OUT_DIR"));

    declare_inputs(&workspace);
    if env::var_os(NO_PAGE).is_some() {
        // Builds that never serve the page (the fuzz targets, on another toolchain).
        fs::write(out_dir.join("page_assets.rs"), NO_PAGE_TABLE).expect("OUT_DIR is writable");
        return;
    }
    require_wasm_target();
    let wasm = build_frontend(&workspace);
    let page_dir = out_dir.join("page");
    run_wasm_bindgen(&wasm, &page_dir);
    copy_file(&workspace.join("index.html"), &page_dir.join("index.html"));
    copy_file(&workspace.join("frontend/style.css"), &page_dir.join("style.css"));
    write_asset_table(&page_dir, &out_dir.join("page_assets.rs"));
}

/// Passes the commit (from `./dev dist`, else "unknown: a development build") and the target
/// triple to the agent's `--version`.
fn declare_version() {
    println!("cargo:rerun-if-env-changed={COMMIT}");
    let commit = env::var(COMMIT).unwrap_or_else(|_| "unknown: a development build".into());
    println!("cargo:rustc-env={COMMIT}={commit}");
    println!("cargo:rustc-env=WHYREFUSED_TARGET={}", env_var("TARGET").to_string_lossy());
}

/// A variable cargo always sets for build scripts.
fn env_var(name: &str) -> OsString {
    env::var_os(name).unwrap_or_else(|| panic!("cargo did not set {name} for the build script"))
}

/// Tells cargo what the page is made of, so the script runs again when one of them changes.
fn declare_inputs(workspace: &Path) {
    println!("cargo:rerun-if-changed=build.rs");
    for input in [
        "frontend/src",
        "frontend/Cargo.toml",
        "frontend/style.css",
        "shared/src",
        "shared/Cargo.toml",
        "index.html",
        "Cargo.toml",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", workspace.join(input).display());
    }
    println!("cargo:rerun-if-env-changed={NO_PAGE}");
    for variable in INNER_VARIABLES {
        println!("cargo:rerun-if-env-changed={variable}");
    }
}

/// Stops with what to do when the toolchain cannot build for the browser.
fn require_wasm_target() {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", WASM_TARGET])
        .output()
        .unwrap_or_else(|error| {
            panic!("could not run {} to find the wasm target: {error}", rustc.display())
        });
    let libdir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    if !output.status.success() || !libdir.is_dir() {
        panic!(
            "the Rust target {WASM_TARGET} is not installed, and the agent embeds a page built for \
             it: run `rustup target add {WASM_TARGET}` or ./dev setup"
        );
    }
}

/// Compiles the page to wasm and returns the path of the `.wasm` file.
fn build_frontend(workspace: &Path) -> PathBuf {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target_dir = workspace.join("target").join("page");
    let mut command = Command::new(&cargo);
    command
        .current_dir(workspace)
        .args(["build", "--target", WASM_TARGET, "--profile", WASM_PROFILE, "-p", FRONTEND_PACKAGE])
        .arg("--target-dir")
        .arg(&target_dir);
    clean_environment(&mut command);
    let status = command.status().unwrap_or_else(|error| {
        panic!("could not run {} to build the page: {error}", cargo.display())
    });
    if !status.success() {
        panic!(
            "building the page ({FRONTEND_PACKAGE} for {WASM_TARGET}) failed ({status}); its \
             compiler output is above"
        );
    }
    target_dir.join(WASM_TARGET).join(WASM_PROFILE).join(format!("{FRONTEND_PACKAGE}.wasm"))
}

/// Removes from the inner cargo's environment what the outer cargo set for this build.
fn clean_environment(command: &mut Command) {
    for variable in OUTER_VARIABLES {
        command.env_remove(variable);
    }
    for (variable, _) in env::vars_os() {
        let name = variable.to_string_lossy();
        if OUTER_PREFIXES.iter().any(|prefix| name.starts_with(prefix)) {
            command.env_remove(&variable);
        }
    }
}

/// Generates the JavaScript glue and the final wasm, as `wasm-bindgen --target web` would.
fn run_wasm_bindgen(wasm: &Path, page_dir: &Path) {
    if page_dir.exists() {
        fs::remove_dir_all(page_dir)
            .unwrap_or_else(|error| panic!("could not clear {}: {error}", page_dir.display()));
    }
    wasm_bindgen_cli_support::Bindgen::new()
        .input_path(wasm)
        .out_name(BINDGEN_NAME)
        .web(true)
        .expect("the web output mode is always available")
        .typescript(false)
        .generate(page_dir)
        .unwrap_or_else(|error| {
            panic!(
                "wasm-bindgen could not process {}: {error:#}. The `wasm-bindgen` crate and \
                 `wasm-bindgen-cli-support` must be the same exact version (see the workspace's \
                 Cargo.toml)",
                wasm.display()
            )
        });
}

fn copy_file(from: &Path, to: &Path) {
    fs::copy(from, to).unwrap_or_else(|error| {
        panic!("could not copy {} to {}: {error}", from.display(), to.display())
    });
}

/// Writes the table of everything in `page_dir` the agent serves, `index.html` as `/`, each with
/// its gzip form (written beside it) and its ETag. The file as built is not carried:
/// the agent inflates the gzip form for the rare client that accepts neither coding.
fn write_asset_table(page_dir: &Path, table: &Path) {
    let mut files = Vec::new();
    list_files(page_dir, &mut files);
    // The page first, then the rest in a stable order.
    files.sort_by_key(|file| (file.file_name() != Some("index.html".as_ref()), file.clone()));
    let compressed_dir = page_dir.with_file_name("page-compressed");
    if compressed_dir.exists() {
        fs::remove_dir_all(&compressed_dir).expect("the old compressed page can be removed");
    }
    fs::create_dir_all(&compressed_dir).expect("the compressed page's folder can be made");

    let mut source = format!(
        "// The page's files, generated by the agent's build script (agent/build.rs): do not edit.\n\
         // (Plain comments: this file is `include!`d into a module, where `//!` cannot go.)\n\n\
         /// The page's files; `index.html` is served as `/`.\n\
         pub static PAGE_ASSETS: [Asset; {}] = [\n",
        files.len()
    );
    for (index, file) in files.iter().enumerate() {
        let relative = file.strip_prefix(page_dir).expect("listed under the page folder");
        let bytes = fs::read(file)
            .unwrap_or_else(|error| panic!("could not read {}: {error}", file.display()));
        let gzip = compressed_dir.join(format!("{index}.gz"));
        write_file(&gzip, &gzip_of(&bytes));
        let etag = hex(&Sha256::digest(&bytes)[..16]);
        writeln!(
            source,
            "    Asset {{ path: {:?}, content_type: {:?}, etag: {etag:?}, \
             gzip: include_bytes!({:?}), identity: OnceLock::new() }},",
            url_path(relative),
            content_type(file),
            absolute(&gzip),
        )
        .expect("writing to a String cannot fail");
    }
    source.push_str("];\n\n");
    let html = fs::read_to_string(page_dir.join("index.html")).expect("index.html was copied");
    writeln!(
        source,
        "/// The CSP source of `index.html`'s inline module script (`'sha256-…'`).\n\
         pub const PAGE_SCRIPT_HASH: &str = {:?};",
        inline_script_hash(&html)
    )
    .expect("writing to a String cannot fail");
    fs::write(table, source)
        .unwrap_or_else(|error| panic!("could not write {}: {error}", table.display()));
}

/// The `'sha256-…'` CSP source of the one inline `<script type="module">` in `html`.
fn inline_script_hash(html: &str) -> String {
    let open = r#"<script type="module">"#;
    let start = html.find(open).expect("index.html has its inline module script") + open.len();
    let length = html[start..].find("</script>").expect("the inline script is closed");
    let digest = Sha256::digest(&html.as_bytes()[start..start + length]);
    format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(digest))
}

fn gzip_of(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).expect("compressing in memory cannot fail");
    encoder.finish().expect("compressing in memory cannot fail")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn write_file(path: &Path, bytes: &[u8]) {
    fs::write(path, bytes)
        .unwrap_or_else(|error| panic!("could not write {}: {error}", path.display()));
}

fn absolute(path: &Path) -> String {
    fs::canonicalize(path)
        .unwrap_or_else(|error| panic!("could not resolve {}: {error}", path.display()))
        .display()
        .to_string()
}

/// Every file under `dir`, recursively (wasm-bindgen may add a `snippets/` folder).
fn list_files(dir: &Path, files: &mut Vec<PathBuf>) {
    let entries = fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("could not list {}: {error}", dir.display()));
    for entry in entries {
        let path = entry
            .unwrap_or_else(|error| panic!("could not list {}: {error}", dir.display()))
            .path();
        if path.is_dir() {
            list_files(&path, files);
        } else {
            files.push(path);
        }
    }
}

/// The URL a page file is served at: `/` for `index.html`, else `/` and its relative path.
fn url_path(relative: &Path) -> String {
    if relative == Path::new("index.html") {
        return "/".to_owned();
    }
    let parts: Vec<String> =
        relative.components().map(|part| part.as_os_str().to_string_lossy().into_owned()).collect();
    format!("/{}", parts.join("/"))
}

/// The `Content-Type` for a page file, by its extension.
fn content_type(file: &Path) -> &'static str {
    match file.extension().and_then(|extension| extension.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") | Some("mjs") => "text/javascript; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("ico") => "image/x-icon",
        Some("png") => "image/png",
        Some("json") => "application/json",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

//! Token files as an operator must write them: readable by their owner only (the agent refuses
//! one that others may read, as ssh refuses such a key).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Writes `text` to `path` with mode 0600 and returns the path as text, for `--token-file`.
pub fn write_token_file(path: &Path, text: &str) -> String {
    std::fs::write(path, text).expect("the token file is written");
    make_private(path);
    path.to_str().expect("a UTF-8 path").to_string()
}

/// Makes a file readable by its owner only (mode 0600).
pub fn make_private(path: &Path) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .expect("the file's mode is set");
}

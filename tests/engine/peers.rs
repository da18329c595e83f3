//! Real peers the tests talk to, from pinned packages: the Python environment of
//! `scripts/py-env` (an SMTP server, the reference Standard Webhooks library), and a way to
//! run a peer script from `tests/peers/` in it.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The Python of the test environment, made (once per run) by `scripts/py-env`;
/// `BELFRY_TEST_PYTHON` names one already made. There is no skipping: without it the
/// email and webhook tests cannot be honest, so they fail.
pub fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        if let Some(python) = std::env::var_os("BELFRY_TEST_PYTHON") {
            return PathBuf::from(python);
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let output = std::process::Command::new("bash")
            .arg(root.join("scripts/py-env"))
            .output()
            .expect("run scripts/py-env");
        assert!(
            output.status.success(),
            "scripts/py-env failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
    })
}

/// A peer script in `tests/peers/`.
pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/peers")
        .join(name)
}

//! First-run setup: fetches the ONNX Runtime library from the `onnxruntime`
//! Python wheel through pip and the web assets through npm, with a progress
//! display, then initialises ONNX Runtime. Nothing is fetched when the files
//! are already in place.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use facegate_vision::runtime;

use crate::progress::Spinner;

/// The ONNX Runtime release matching the `ort` crate we build against.
pub const ONNXRUNTIME_VERSION: &str = "1.22.0";

/// Makes sure the ONNX Runtime library exists (fetching it if needed) and
/// initialises it. Returns the library path.
pub fn ensure_runtime() -> Result<PathBuf> {
    let path = match runtime::locate() {
        Some(p) => p,
        None => fetch_runtime(&PathBuf::from(runtime::RUNTIME_DIR))?,
    };
    runtime::init(&path)
        .with_context(|| format!("loading ONNX Runtime from {}", path.display()))?;
    Ok(path)
}

/// Downloads the `onnxruntime` wheel with pip and extracts its shared library into `dir`.
pub fn fetch_runtime(dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let download = tempfile::tempdir()?;
    let spinner = Spinner::start(&format!(
        "Fetching ONNX Runtime {ONNXRUNTIME_VERSION} with pip"
    ));
    let out = Command::new(python())
        .args([
            "-m",
            "pip",
            "download",
            "--disable-pip-version-check",
            "--no-deps",
            "--only-binary=:all:",
        ])
        .arg(format!("onnxruntime=={ONNXRUNTIME_VERSION}"))
        .arg("--dest")
        .arg(download.path())
        .stdin(Stdio::null())
        .output()
        .context(
            "running pip (python3 -m pip); install Python 3 with pip, or set ORT_DYLIB_PATH",
        )?;
    if !out.status.success() {
        spinner.fail("pip could not fetch onnxruntime");
        bail!(
            "pip download onnxruntime failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let wheel = std::fs::read_dir(download.path())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .context("pip downloaded no wheel")?;
    spinner.message("Extracting libonnxruntime from the wheel");
    let lib = extract_library(&wheel, dir)?;
    spinner.finish(&format!("ONNX Runtime ready: {}", lib.display()));
    Ok(lib)
}

fn extract_library(wheel: &Path, dir: &Path) -> Result<PathBuf> {
    let mut zip = zip::ZipArchive::new(std::fs::File::open(wheel)?).context("reading the wheel")?;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i)?;
        let name = entry
            .name()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        if name.starts_with("libonnxruntime.so") {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes)?;
            let target = dir.join(&name);
            let partial = dir.join(format!("{name}.partial"));
            std::fs::write(&partial, bytes)?;
            std::fs::rename(&partial, &target)?;
            return Ok(target);
        }
    }
    bail!("no libonnxruntime.so inside {}", wheel.display())
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// The npm packages of the web front end (web/package.json).
const WEB_PACKAGES: [&str; 2] = ["startbootstrap-sb-admin-2", "@fontsource/nunito"];

/// Installs the web front end's npm packages (SB Admin 2 and its vendors,
/// the Nunito font) into `<web_dir>/node_modules` when any is missing.
pub fn ensure_web_assets(web_dir: &Path) -> Result<()> {
    let installed = WEB_PACKAGES
        .iter()
        .all(|p| web_dir.join("node_modules").join(p).is_dir());
    if installed || !web_dir.join("package.json").is_file() {
        return Ok(());
    }
    let spinner = Spinner::start("Installing the web assets with npm");
    let lock = web_dir.join("package-lock.json").is_file();
    let out = Command::new("npm")
        .arg(if lock { "ci" } else { "install" })
        .args(["--no-audit", "--no-fund", "--omit=dev"])
        .current_dir(web_dir)
        .stdin(Stdio::null())
        .output()
        .context("running npm; install Node.js and npm")?;
    if !out.status.success() {
        spinner.fail("npm failed");
        bail!(
            "npm install failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    spinner.finish("Web assets ready");
    Ok(())
}

//! ONNX Runtime: locating the shared library, initialising it once, and a
//! small pool of sessions per model so that inferences can run concurrently
//! (an `ort` session needs exclusive access while it runs).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;

use crate::error::VisionError;

/// Where the project's setup puts the library, relative to the repository root.
pub const RUNTIME_DIR: &str = ".facegate/runtime";
/// The environment variable that overrides the library's location.
pub const DYLIB_ENV: &str = "ORT_DYLIB_PATH";

static INIT: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// Finds `libonnxruntime.so`: `ORT_DYLIB_PATH` first, then
/// `.facegate/runtime/` in the working directory or any of its ancestors,
/// then next to (or above) the running executable.
pub fn locate() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(DYLIB_ENV) {
        return Some(PathBuf::from(p));
    }
    let mut starts: Vec<PathBuf> = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        starts.push(cwd);
    }
    if let Ok(exe) = std::env::current_exe() {
        starts.push(exe);
    }
    starts
        .iter()
        .flat_map(|s| s.ancestors())
        .map(|dir| dir.join(RUNTIME_DIR))
        .find_map(|dir| library_in(&dir))
}

/// The ONNX Runtime library inside `dir`, if there is one.
pub fn library_in(dir: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libonnxruntime.so") || n == "libonnxruntime.dylib")
        })
        .collect();
    found.sort();
    found.pop()
}

/// Initialises ONNX Runtime from `path` (once per process; later calls
/// return the first outcome).
pub fn init(path: &Path) -> Result<(), VisionError> {
    INIT.get_or_init(|| {
        if !path.is_file() {
            return Err(format!(
                "ONNX Runtime library not found at {}",
                path.display()
            ));
        }
        ort::init_from(path.display().to_string())
            .with_name("facegate")
            .commit()
            .map(|_| path.to_path_buf())
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map(|_| ())
    .map_err(|e| VisionError::Model(e.clone()))
}

/// Initialises ONNX Runtime from [`locate`]'s answer.
pub fn init_located() -> Result<PathBuf, VisionError> {
    let path = locate().ok_or_else(|| {
        VisionError::Model(format!(
            "ONNX Runtime library not found: run `facegate setup` or set {DYLIB_ENV}"
        ))
    })?;
    init(&path)?;
    Ok(path)
}

/// How sessions are built.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionOptions {
    pub intra_threads: usize,
    pub sessions: usize,
}

/// Turns off ONNX Runtime's CPU memory arena for a session. The arena keeps
/// a session's high-water mark for good; for P-Net, which sees a new input
/// shape at every pyramid level and frame size, that is hundreds of MB
/// across sessions.
fn disable_arena(builder: &mut ort::session::builder::SessionBuilder) -> Result<(), ort::Error> {
    use ort::AsPointer;
    // SAFETY: the builder owns a valid OrtSessionOptions for its lifetime,
    // and DisableCpuMemArena only sets a flag on it.
    let status = unsafe { (ort::api().DisableCpuMemArena)(builder.ptr_mut()) };
    if status.0.is_null() {
        Ok(())
    } else {
        // SAFETY: a non-null status is ours to read and release.
        let message = unsafe {
            let msg = std::ffi::CStr::from_ptr((ort::api().GetErrorMessage)(status.0))
                .to_string_lossy()
                .into_owned();
            (ort::api().ReleaseStatus)(status.0);
            msg
        };
        Err(ort::Error::new(message))
    }
}

/// Several sessions of one model; a call takes whichever is free.
pub(crate) struct SessionPool {
    name: String,
    sessions: Vec<Mutex<Session>>,
    next: AtomicUsize,
}

impl SessionPool {
    /// Loads a model whose input shapes repeat (fixed size, small batches):
    /// ONNX Runtime's memory arena and allocation plans serve it well.
    pub fn load(name: &str, model: &[u8], opts: &SessionOptions) -> Result<Self, VisionError> {
        Self::build(name, model, opts, true)
    }

    /// Loads a model without ONNX Runtime's memory arena and allocation
    /// plans, so that its memory follows the current call instead of the
    /// largest ever seen: for P-Net, fed a new input shape at every pyramid
    /// level and frame size, and for the anti-spoofing net, whose 256×256
    /// activations are large and which runs on one or two frames a login.
    pub fn load_lean(name: &str, model: &[u8], opts: &SessionOptions) -> Result<Self, VisionError> {
        Self::build(name, model, opts, false)
    }

    fn build(
        name: &str,
        model: &[u8],
        opts: &SessionOptions,
        arena: bool,
    ) -> Result<Self, VisionError> {
        let sessions = (0..opts.sessions.max(1))
            .map(|_| {
                let mut builder = Session::builder()?
                    .with_optimization_level(GraphOptimizationLevel::Level3)?
                    .with_intra_threads(opts.intra_threads.max(1))?
                    .with_inter_threads(1)?
                    .with_intra_op_spinning(false)?
                    .with_memory_pattern(arena)?;
                if !arena {
                    disable_arena(&mut builder)?;
                }
                builder.commit_from_memory(model).map(Mutex::new)
            })
            .collect::<Result<Vec<_>, ort::Error>>()
            .map_err(|e| VisionError::Model(format!("{name}: {e}")))?;
        Ok(SessionPool {
            name: name.to_string(),
            sessions,
            next: AtomicUsize::new(0),
        })
    }

    /// Runs `f` with exclusive use of one session.
    pub fn with<T>(
        &self,
        f: impl FnOnce(&mut Session) -> Result<T, ort::Error>,
    ) -> Result<T, VisionError> {
        let n = self.sessions.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        for i in 0..n {
            if let Ok(mut s) = self.sessions[(start + i) % n].try_lock() {
                return f(&mut s).map_err(|e| VisionError::Model(format!("{}: {e}", self.name)));
            }
        }
        let mut s = self.sessions[start]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut s).map_err(|e| VisionError::Model(format!("{}: {e}", self.name)))
    }
}

/// A float tensor read back from a model.
#[derive(Debug, Clone)]
pub(crate) struct Output {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl SessionPool {
    /// Runs the model on one float input and returns the named outputs
    /// (all outputs in model order when `outputs` is empty).
    pub fn run(
        &self,
        input: &str,
        shape: &[usize],
        data: &[f32],
        outputs: &[&str],
    ) -> Result<Vec<Output>, VisionError> {
        self.with(|session| {
            let tensor = ort::value::TensorRef::from_array_view((shape.to_vec(), data))?;
            let result = session.run(ort::inputs![input => tensor])?;
            let names: Vec<String> = if outputs.is_empty() {
                result.keys().map(str::to_string).collect()
            } else {
                outputs.iter().map(|s| s.to_string()).collect()
            };
            names
                .iter()
                .map(|name| {
                    let (shape, data) = result[name.as_str()].try_extract_tensor::<f32>()?;
                    Ok(Output {
                        shape: shape.iter().map(|&d| d.max(0) as usize).collect(),
                        data: data.to_vec(),
                    })
                })
                .collect()
        })
    }
}

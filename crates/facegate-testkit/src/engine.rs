//! One face engine per test binary, loaded on first use from the
//! workspace's models with the ONNX Runtime that `facegate setup` fetched.

use std::sync::{Arc, LazyLock};

use facegate_vision::{EngineConfig, FaceEngine};

use crate::paths::models_dir;

/// The engine configuration of the tests: the defaults on the workspace's
/// models.
pub fn engine_config() -> EngineConfig {
    EngineConfig {
        models_dir: models_dir(),
        ..EngineConfig::default()
    }
}

/// The shared engine. Loading it is blocking: from async code, touch it in
/// `spawn_blocking` first.
pub static ENGINE: LazyLock<Arc<FaceEngine>> = LazyLock::new(|| {
    facegate_vision::runtime::init_located().expect("ONNX Runtime (run `facegate setup`)");
    Arc::new(FaceEngine::load(engine_config()).expect("loading the face models"))
});

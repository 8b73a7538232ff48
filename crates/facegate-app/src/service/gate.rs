//! Per-account serialisation of face-login decisions. The lock check, the
//! decision and the failure count of one account happen under that
//! account's async mutex, so parallel attempts cannot all pass a lock check
//! made before any of them was counted (the probe analysis itself runs
//! outside the mutex). One process owns an SQLite database, so an
//! in-process mutex is enough; a multi-instance backend needs a row lock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

/// Hands out one async mutex per account id.
#[derive(Default)]
pub struct AccountGate {
    locks: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>,
}

impl AccountGate {
    /// Waits for exclusive use of `user_id`'s face-login state.
    pub async fn enter(&self, user_id: i64) -> OwnedMutexGuard<()> {
        let lock = {
            let mut map = self.locks.lock().unwrap_or_else(|p| p.into_inner());
            if map.len() > 1024 {
                // Drop mutexes nobody holds or waits for.
                map.retain(|_, m| Arc::strong_count(m) > 1);
            }
            map.entry(user_id).or_default().clone()
        };
        lock.lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn one_holder_per_account() {
        let gate = Arc::new(AccountGate::default());
        let inside = Arc::new(AtomicU32::new(0));
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (gate, inside) = (gate.clone(), inside.clone());
            tasks.push(tokio::spawn(async move {
                let _g = gate.enter(7).await;
                assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0);
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                inside.fetch_sub(1, Ordering::SeqCst);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    }
}

//! `facegate rotate-key` and `facegate export-user`: the operator's side of
//! biometric data protection (face templates, photos and kept login
//! probes), and the lock that keeps two rotations from running at once.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::common::{master_key, runtime, CommonArgs};
use crate::crypto::{self, MasterKey, Vault};
use crate::service::rotate_keys;
use crate::store::{self, Keys};

/// `facegate rotate-key`: re-encrypt all face data with a new key.
#[derive(Debug, Clone, clap::Args)]
pub struct RotateKeyArgs {
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `facegate export-user`: write all of a user's data to a directory.
#[derive(Debug, Clone, clap::Args)]
pub struct ExportUserArgs {
    /// The user to export
    #[arg(long)]
    pub username: String,
    /// Output directory (created; must not exist or be empty)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Rotates the master key. With the key file: a new key is written to
/// `master.key.next` (or the one already there is reused, resuming an
/// interrupted rotation), every record not yet on it is re-sealed in its
/// own transaction, then `master.key.next` replaces `master.key`. With
/// `FACEGATE_MASTER_KEY`: the new key comes from `FACEGATE_NEW_MASTER_KEY`
/// and the operator switches the variable afterwards. The server should be
/// stopped while this runs (or, on PostgreSQL, every instance must already
/// have the new key as an opening key). Only one rotation runs at a time
/// on a data directory: it holds an exclusive lock on
/// `<data-dir>/rotate-key.lock` from start to end, and a second one exits
/// with an error instead of interleaving; on PostgreSQL it also holds an
/// advisory lock on the database, from wherever it runs.
pub fn rotate_key(args: RotateKeyArgs) -> anyhow::Result<()> {
    let config = args.common.load()?;
    let dir = config.data_dir.clone();
    if config.database_url().is_none() {
        anyhow::ensure!(
            dir.is_dir(),
            "there is no data directory at {} (nothing to rotate); pass the right --data-dir",
            dir.display()
        );
    }
    // Held until this function returns (the OS releases it if we die).
    let _lock = match config.uses_data_dir() {
        true => {
            store::prepare_data_dir(&dir)?;
            Some(lock_rotation(&dir)?)
        }
        false => None,
    };
    let old = crypto::load_keys(&dir, master_key(&config))?
        .context("no master key to rotate from (FACEGATE_MASTER_KEY or master.key)")?;
    let from_env = master_key(&config).is_some_and(|k| !k.trim().is_empty());
    let next_file = dir.join(crypto::NEXT_KEY_FILE);
    let new = if from_env {
        let text = std::env::var(crypto::NEW_KEY_ENV).with_context(|| {
            format!(
                "the key comes from FACEGATE_MASTER_KEY: set {} to the new key",
                crypto::NEW_KEY_ENV
            )
        })?;
        MasterKey::parse(&text)?
    } else if next_file.exists() {
        let k = MasterKey::read_file(&next_file)?;
        println!("resuming the rotation to key {}", k.id_hex());
        k
    } else {
        let k = MasterKey::generate();
        k.write_new_file(&next_file)?;
        k
    };
    anyhow::ensure!(
        old.primary_id() != new.id_hex(),
        "the new key is the current key"
    );
    // Opening keys: the old primary and whatever else was loaded.
    let old_keys: Vec<MasterKey> = old_keys_of(&dir, &config)?;
    let vault = Vault::new(new.clone(), old_keys);
    runtime()?.block_on(async {
        let store = store::open_with_keys(&config, Keys::Vault(vault)).await?;
        // On PostgreSQL the database is the place all rotations meet.
        let _rotation = match config.database_url() {
            Some(_) => Some(store.try_exclusive("rotate-key").await?.context(
                "another key rotation is running on this database; wait for it to finish",
            )?),
            None => None,
        };
        let report = rotate_keys(&store).await?;
        println!(
            "re-encrypted {} face record(s) and {} login probe(s) with key {} ({} already on it)",
            report.resealed, report.probes, report.key_id, report.skipped
        );
        if report.refused > 0 {
            println!(
                "left {} record(s) that do not open as they were (tampered: see the audit \
                 trail); they stay refused",
                report.refused
            );
        }
        Ok::<_, anyhow::Error>(())
    })?;
    if from_env {
        println!(
            "done: now set FACEGATE_MASTER_KEY to the new key and unset {}",
            crypto::NEW_KEY_ENV
        );
    } else {
        std::fs::rename(&next_file, dir.join(crypto::KEY_FILE))
            .context("installing the new master.key")?;
        println!("done: master.key now holds key {}", new.id_hex());
    }
    Ok(())
}

/// The lock file of `facegate rotate-key`, in the data directory. It stays
/// there (empty but for the holder's process id); only the lock matters.
pub const ROTATE_LOCK_FILE: &str = "rotate-key.lock";

/// Takes the exclusive rotation lock of `dir` without waiting.
fn lock_rotation(dir: &Path) -> anyhow::Result<File> {
    let path = dir.join(ROTATE_LOCK_FILE);
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening the lock file {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = match holder.trim() {
                "" => String::new(),
                pid => format!(" (process {pid})"),
            };
            anyhow::bail!(
                "another `facegate rotate-key` is already running on {}{holder}: it holds the \
                 lock {}. Wait for it to finish; run rotate-key again afterwards only if it failed.",
                dir.display(),
                path.display()
            );
        }
        Err(TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
    // Note who holds it, for the message above (best effort).
    let _ = file
        .set_len(0)
        .and_then(|_| file.seek(SeekFrom::Start(0)))
        .and_then(|_| writeln!(file, "{}", std::process::id()));
    Ok(file)
}

fn old_keys_of(dir: &std::path::Path, config: &crate::Config) -> anyhow::Result<Vec<MasterKey>> {
    let mut keys = Vec::new();
    match master_key(config).filter(|k| !k.trim().is_empty()) {
        Some(text) => keys.push(MasterKey::parse(text)?),
        None => keys.push(MasterKey::read_file(&dir.join(crypto::KEY_FILE))?),
    }
    Ok(keys)
}

/// Exports a user: `user.json` (account, decrypted templates, login
/// attempts), `faces/<id>.jpg` (decrypted photos) and, when login probes
/// are kept, `probes/<attempt-id>.jpg`.
pub fn export_user(args: ExportUserArgs) -> anyhow::Result<()> {
    let mut config = args.common.load()?;
    config.resolve_models_dir();
    let out = args.out.clone();
    if out.exists() {
        anyhow::ensure!(
            std::fs::read_dir(&out)?.next().is_none(),
            "{} exists and is not empty",
            out.display()
        );
    }
    runtime()?.block_on(async move {
        let store = store::open(&config).await?;
        let user = store
            .user_by_username(&args.username)
            .await?
            .with_context(|| format!("no user named {}", args.username))?;
        // No face engine is needed to read stored data.
        let export = crate::service::export_with(&store, &user).await?;
        std::fs::create_dir_all(out.join("faces"))?;
        for f in &export.faces {
            std::fs::write(out.join(&f.image_file), &f.jpeg)?;
        }
        if !export.probes.is_empty() {
            std::fs::create_dir_all(out.join("probes"))?;
        }
        for p in &export.probes {
            std::fs::write(out.join(&p.image_file), &p.jpeg)?;
        }
        std::fs::write(out.join("user.json"), serde_json::to_vec_pretty(&export)?)?;
        println!(
            "exported {} ({} face(s), {} login probe(s)) to {}",
            export.username,
            export.faces.len(),
            export.probes.len(),
            out.display()
        );
        Ok(())
    })
}

//! The store under test: a fresh store of one backend (a real SQLite file
//! in a temporary data directory, or a new database on the test
//! PostgreSQL), opened the way the application opens it, plus raw SQL
//! access to its database for the checks that must look underneath (what
//! is at rest) or plant what an attacker with database access would.

use facegate_app::crypto::MasterKey;
use facegate_app::domain::{Email, NewUser, Username};
use facegate_app::store::{self, DynStore, Keys, StoreResult};
use facegate_app::Config;
use sqlx::{Connection, PgConnection, SqliteConnection};

use facegate_testkit::postgres::fresh_database;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

pub struct Subject {
    pub kind: Kind,
    pub config: Config,
    pub key: MasterKey,
    pub store: DynStore,
    _dir: tempfile::TempDir,
}

impl Subject {
    pub async fn new(kind: Kind) -> Subject {
        let dir = tempfile::tempdir().unwrap();
        let key = MasterKey::generate();
        let mut config = Config {
            data_dir: dir.path().join("data"),
            master_key: Some(key.to_base64().as_str().into()),
            ..Config::default()
        };
        if kind == Kind::Postgres {
            config.database_url = Some(fresh_database().await.as_str().into());
        }
        let store = store::open(&config).await.expect("opening a fresh store");
        Subject {
            kind,
            config,
            key,
            store,
            _dir: dir,
        }
    }

    /// Opens the same store again (as another process or instance would).
    pub async fn reopen(&self) -> StoreResult<DynStore> {
        store::open(&self.config).await
    }

    /// Another instance on the same store, as far as the backend lets
    /// instances share one: PostgreSQL, another handle; SQLite (owned by
    /// one process, whose in-process state it keeps), this one.
    pub async fn peer(&self) -> DynStore {
        match self.kind {
            Kind::Sqlite => self.store.clone(),
            Kind::Postgres => self.reopen().await.expect("opening a second instance"),
        }
    }

    pub async fn reopen_with(&self, keys: Keys) -> StoreResult<DynStore> {
        store::open_with_keys(&self.config, keys).await
    }

    fn sqlite_url(&self) -> String {
        let file = self.config.data_dir.join(store::DB_FILE);
        format!("sqlite://{}", file.display())
    }

    /// Runs one statement on the database itself, bypassing the store.
    /// `sql` must be valid in both dialects (see [`Subject::blob`]).
    pub async fn raw_execute(&self, sql: &str) -> Result<u64, sqlx::Error> {
        match self.kind {
            Kind::Sqlite => {
                let mut c = SqliteConnection::connect(&self.sqlite_url()).await?;
                let n = sqlx::query(sql).execute(&mut c).await?.rows_affected();
                c.close().await?;
                Ok(n)
            }
            Kind::Postgres => {
                let mut c = PgConnection::connect(self.config.database_url().unwrap()).await?;
                let n = sqlx::query(sql).execute(&mut c).await?.rows_affected();
                c.close().await?;
                Ok(n)
            }
        }
    }

    /// The values of one BLOB/BYTEA column, read underneath the store.
    pub async fn raw_blobs(&self, sql: &str) -> Vec<Vec<u8>> {
        match self.kind {
            Kind::Sqlite => {
                let mut c = SqliteConnection::connect(&self.sqlite_url()).await.unwrap();
                sqlx::query_scalar(sql).fetch_all(&mut c).await.unwrap()
            }
            Kind::Postgres => {
                let url = self.config.database_url().unwrap();
                let mut c = PgConnection::connect(url).await.unwrap();
                sqlx::query_scalar(sql).fetch_all(&mut c).await.unwrap()
            }
        }
    }

    /// The values of one text column, read underneath the store.
    pub async fn raw_texts(&self, sql: &str) -> Vec<String> {
        match self.kind {
            Kind::Sqlite => {
                let mut c = SqliteConnection::connect(&self.sqlite_url()).await.unwrap();
                sqlx::query_scalar(sql).fetch_all(&mut c).await.unwrap()
            }
            Kind::Postgres => {
                let url = self.config.database_url().unwrap();
                let mut c = PgConnection::connect(url).await.unwrap();
                sqlx::query_scalar(sql).fetch_all(&mut c).await.unwrap()
            }
        }
    }

    /// A count, read underneath the store.
    pub async fn raw_count(&self, sql: &str) -> i64 {
        match self.kind {
            Kind::Sqlite => {
                let mut c = SqliteConnection::connect(&self.sqlite_url()).await.unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
            }
            Kind::Postgres => {
                let url = self.config.database_url().unwrap();
                let mut c = PgConnection::connect(url).await.unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
            }
        }
    }

    /// A blob literal in this backend's SQL.
    pub fn blob(&self, bytes: &[u8]) -> String {
        match self.kind {
            Kind::Sqlite => format!("X'{}'", hex::encode(bytes)),
            Kind::Postgres => format!("'\\x{}'::bytea", hex::encode(bytes)),
        }
    }
}

/// A new account's details.
pub fn new_user(name: &str) -> NewUser {
    NewUser {
        username: Username::parse(name).unwrap(),
        email: Email::parse(&format!("{name}@example.org")).unwrap(),
        password_hash: format!("hash-of-{name}"),
        is_staff: false,
        is_superuser: false,
    }
}

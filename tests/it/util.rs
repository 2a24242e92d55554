use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The server tests run against.
pub fn server_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database of its own for one test, dropped when the test ends.
pub struct TestDb {
    pub url: String,
    pub name: String,
}

impl TestDb {
    pub fn new() -> Self {
        let name = format!(
            "runner_test_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = PgConnection::establish(&server_url())
            .expect("the test server is reachable (TEST_DATABASE_URL)");
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .expect("drop a leftover test database");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create test database");
        let url = runner::db::url::with_database(&server_url(), &name).expect("a postgres:// URL");
        TestDb { url, name }
    }

    /// A URL for a database that does not exist yet (runner must create it); dropped too.
    pub fn not_created() -> Self {
        let db = TestDb::new();
        let mut admin = PgConnection::establish(&server_url()).unwrap();
        admin
            .batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", db.name))
            .unwrap();
        db
    }

    pub fn conn(&self) -> PgConnection {
        PgConnection::establish(&self.url).expect("connect to the test database")
    }

    /// Rows of `sql`, every cell as PostgreSQL's text.
    pub fn rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        runner::analysis::execute::query_table(&mut self.conn(), "test", sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .rows
    }

    /// Rows of `sql` with NULL shown as `NULL`, joined by `|`.
    pub fn lines(&self, sql: &str) -> Vec<String> {
        self.rows(sql)
            .into_iter()
            .map(|r| {
                r.into_iter()
                    .map(|c| c.unwrap_or_else(|| "NULL".into()))
                    .collect::<Vec<_>>()
                    .join("|")
            })
            .collect()
    }

    /// Run statements (setup and sabotage in tests).
    pub fn execute(&self, sql: &str) {
        use diesel::connection::SimpleConnection;
        self.conn()
            .batch_execute(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    pub fn scalar(&self, sql: &str) -> String {
        self.rows(sql)[0][0]
            .clone()
            .unwrap_or_else(|| "NULL".into())
    }

    pub fn has_timescale(&self) -> bool {
        self.scalar("SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'") == "1"
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut admin) = PgConnection::establish(&server_url()) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A throwaway project: the repo's `jobs/` and `templates/`, the fixture as `data/`,
/// and (from [`Project::with_database`]) a test database of its own that `run` uses.
///
/// Set up fluently, then run the binary:
///
/// ```ignore
/// let p = Project::with_database()
///     .extend_job("quarterly", "nightly", "[storage]\nmaintain_after_ingest = true\n")
///     .template("extra.sql", "SELECT 1");
/// p.run_ok(&["run", "jobs/nightly.toml"]);
/// assert_eq!(p.db().scalar("SELECT count(*) FROM daily_prices"), "17");
/// ```
pub struct Project {
    pub dir: tempfile::TempDir,
    db: Option<TestDb>,
}

impl Project {
    /// A project without a database: `run` points runner at a port nobody listens on.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&repo().join("jobs"), &dir.path().join("jobs"));
        copy_dir(&repo().join("templates"), &dir.path().join("templates"));
        copy_dir(
            &repo().join("tests/fixtures/basic"),
            &dir.path().join("data"),
        );
        Project { dir, db: None }
    }

    /// A project with a fresh database of its own, dropped with the project.
    pub fn with_database() -> Self {
        Project {
            db: Some(TestDb::new()),
            ..Project::new()
        }
    }

    /// The project's database.
    ///
    /// # Panics
    /// For a project made with [`Project::new`].
    pub fn db(&self) -> &TestDb {
        self.db
            .as_ref()
            .expect("a project made with Project::with_database")
    }

    /// `jobs/<name>.toml` with `toml` as its text.
    pub fn job(self, name: &str, toml: &str) -> Self {
        self.write(&format!("jobs/{name}.toml"), toml);
        self
    }

    /// `jobs/<name>.toml`: the text of `jobs/<base>.toml` followed by `extra` (new
    /// sections or analyses for an existing job).
    pub fn extend_job(self, base: &str, name: &str, extra: &str) -> Self {
        let text = self.read(&format!("jobs/{base}.toml")) + "\n" + extra;
        self.job(name, &text)
    }

    /// `templates/<name>` with `sql` as its text.
    pub fn template(self, name: &str, sql: &str) -> Self {
        self.write(&format!("templates/{name}"), sql);
        self
    }

    /// No fixture data: `data/` is left empty, for tests that bring their own files.
    pub fn without_fixture(self) -> Self {
        std::fs::remove_dir_all(self.path("data")).unwrap();
        std::fs::create_dir(self.path("data")).unwrap();
        self
    }

    /// `data/<rel>` with `text` as its content (replacing the fixture's file, if any).
    pub fn data(self, rel: &str, text: &str) -> Self {
        self.write(&format!("data/{rel}"), text);
        self
    }

    /// `runner ARGS` in this project, against its own database (if any).
    pub fn run(&self, args: &[&str]) -> Run {
        self.runner(self.db.as_ref(), args)
    }

    /// [`Project::run`], which must exit 0 (else it panics with the output).
    pub fn run_ok(&self, args: &[&str]) -> Run {
        self.run(args).expect_code(0)
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    /// `runner generate` into `gen/`: `symbols` files of `years` years, seeded, with the
    /// generator's deliberately malformed rows.
    pub fn generate(&self, symbols: &str, years: &str, seed: &str) {
        self.runner(
            None,
            &[
                "generate",
                "--out",
                "gen",
                "--symbols",
                symbols,
                "--years",
                years,
                "--seed",
                seed,
            ],
        )
        .expect_code(0);
    }

    /// `runner ARGS` in this project, against `db`.
    pub fn runner(&self, db: Option<&TestDb>, args: &[&str]) -> Run {
        Run(self
            .command(db, args)
            .output()
            .expect("run the runner binary"))
    }

    /// The `runner ARGS` command, to add environment or spawn it.
    pub fn command(&self, db: Option<&TestDb>, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_runner"));
        cmd.current_dir(self.dir.path())
            .args(args)
            .env_remove("RUST_LOG")
            .env_remove("RUNNER_CRASH_AT")
            .env_remove("RUNNER_PAUSE_AT");
        match db {
            Some(db) => cmd.env("DATABASE_URL", &db.url),
            None => cmd.env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none"),
        };
        cmd
    }
}

pub struct Run(pub Output);

impl Run {
    pub fn code(&self) -> i32 {
        self.0.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
    /// Panics with the output unless the exit code is `code`.
    pub fn expect_code(self, code: i32) -> Self {
        assert_eq!(
            self.code(),
            code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

use super::util::Project;

const CONFIG_ERROR: i32 = 2;

fn job(p: &Project, body: &str) -> String {
    p.write("jobs/t.toml", body);
    "jobs/t.toml".to_owned()
}

#[test]
fn unknown_key_names_file_line_column_and_suggests() {
    let p = Project::new();
    let path = job(
        &p,
        "name = \"t\"\n\n[[analysis]]\nname = \"a\"\ntemplat = \"x.sql\"\n",
    );
    let run = p.runner(None, &["check", &path]).expect_code(CONFIG_ERROR);
    let err = run.stderr();
    assert!(err.contains("unknown field `templat`"), "{err}");
    assert!(err.contains(" --> jobs/t.toml:5:1"), "{err}");
    assert!(
        err.contains("5 | templat = \"x.sql\"\n  | ^^^^^^^"),
        "{err}"
    );
    assert!(err.contains("help: did you mean `template`?"), "{err}");
}

#[test]
fn malformed_toml_names_its_position() {
    let p = Project::new();
    let path = job(&p, "name = \"t\"\ndescription = \"unterminated\n");
    let err = p
        .runner(None, &["check", &path])
        .expect_code(CONFIG_ERROR)
        .stderr();
    assert!(err.contains("invalid job file"), "{err}");
    assert!(err.contains(" --> jobs/t.toml:2:"), "{err}");
}

#[test]
fn missing_template_points_at_its_key() {
    let p = Project::new();
    let path = job(
        &p,
        "name = \"t\"\n\n[[analysis]]\nname = \"a\"\ntemplate = \"nope.sql\"\n",
    );
    let err = p
        .runner(None, &["check", &path])
        .expect_code(CONFIG_ERROR)
        .stderr();
    assert!(
        err.contains("template `nope.sql` of analysis `a` not found"),
        "{err}"
    );
    assert!(err.contains(" --> jobs/t.toml:5:12"), "{err}");
    assert!(err.contains("key: `analysis.a.template`"), "{err}");
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let p = Project::new();
    let path = job(
        &p,
        "name = \"t\"\n[[analysis]]\nname = \"a\"\ntemplate = \"nope.sql\"\n[[analysis]]\nname = \"a\"\ntemplate = \"also-missing.sql\"\n",
    );
    let err = p
        .runner(None, &["check", &path])
        .expect_code(CONFIG_ERROR)
        .stderr();
    assert!(err.contains("analysis `a` is defined twice"), "{err}");
    assert!(err.contains("3 problems found"), "{err}");
}

#[test]
fn template_errors_name_template_file_and_line() {
    let p = Project::new();
    p.write(
        "templates/broken.sql",
        "SELECT 1\nFROM t\nWHERE x = {{ undefined_var }}\n",
    );
    let path = job(
        &p,
        "name = \"t\"\n[[analysis]]\nname = \"b\"\ntemplate = \"broken.sql\"\n",
    );
    let err = p
        .runner(None, &["check", &path])
        .expect_code(CONFIG_ERROR)
        .stderr();
    assert!(err.contains("template `broken.sql`"), "{err}");
    // Issue 10: the error names the variable and points at it.
    assert!(
        err.contains("error: template `broken.sql`: `undefined_var` is undefined"),
        "{err}"
    );
    assert!(err.contains("broken.sql:3:14"), "{err}");
    assert!(err.contains("3 | WHERE x = {{ undefined_var }}"), "{err}");
}

#[test]
fn bad_var_override_is_a_config_error() {
    let p = Project::new();
    let err = p
        .runner(
            None,
            &["check", "jobs/quarterly.toml", "--var", "weeks=many"],
        )
        .expect_code(CONFIG_ERROR)
        .stderr();
    assert!(
        err.contains("`--var weeks=many`: expected an integer"),
        "{err}"
    );
    let err = p
        .runner(
            None,
            &["check", "jobs/quarterly.toml", "--var", "as_of=2020-02-30"],
        )
        .expect_code(CONFIG_ERROR)
        .stderr();
    assert!(err.contains("`as_of` must be a date"), "{err}");
}

#[test]
fn source_globs_that_match_nothing_fail_check() {
    let p = Project::new();
    let err = p
        .runner(
            None,
            &[
                "check",
                "jobs/quarterly.toml",
                "--var",
                "data_dir=/nonexistent",
            ],
        )
        .expect_code(CONFIG_ERROR)
        .stderr();
    assert!(
        err.contains("ingest source `prices` matches no files"),
        "{err}"
    );
}

/// Every shipped job validates (like `just`'s examples test).
#[test]
fn every_shipped_job_checks() {
    let p = Project::new();
    for entry in std::fs::read_dir(super::util::repo().join("jobs")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".toml") {
            let out = p
                .runner(None, &["check", &format!("jobs/{name}")])
                .expect_code(0)
                .stdout();
            assert!(out.starts_with(&format!("ok: jobs/{name}")), "{out}");
        }
    }
}

#[test]
fn render_prints_escaped_sql_without_a_database() {
    let p = Project::new();
    let out = p
        .runner(
            None,
            &[
                "render",
                "jobs/quarterly.toml",
                "--select",
                "avg_volume_last_quarter",
                "--var",
                "symbol=x'); DROP TABLE daily_prices; --",
                "--var",
                "as_of=2020-04-01",
            ],
        )
        .expect_code(0)
        .stdout();
    assert!(
        out.contains("ON p.symbol = 'x''); DROP TABLE daily_prices; --'"),
        "{out}"
    );
    assert!(out.contains("DATE '2020-04-01'"), "{out}");
}

#[test]
fn unknown_select_suggests_a_name() {
    let p = Project::new();
    let err = p
        .runner(
            None,
            &[
                "render",
                "jobs/quarterly.toml",
                "--select",
                "weekly_avg_closes",
            ],
        )
        .expect_code(CONFIG_ERROR)
        .stderr();
    assert!(err.contains("has no analysis `weekly_avg_closes`"), "{err}");
    assert!(err.contains("did you mean `weekly_avg_close`?"), "{err}");
}

/// The database rule of `job::database`, seen through `doctor`'s first line. Every URL
/// points at a closed port, so doctor prints it and then fails to connect.
#[test]
fn database_url_precedence_flag_then_job_then_environment() {
    let p = Project::new();
    // `Project::runner` without a database sets DATABASE_URL to this.
    let environment = "postgres://nobody@127.0.0.1:1/none";
    let doctor = |args: &[&str]| {
        let run = p.runner(None, args).expect_code(1);
        run.stdout()
    };
    let line = |url: &str| format!("database:     {url}\n");

    p.write(
        "jobs/explicit.toml",
        "name = \"t\"\ndatabase_url = \"postgres://job@127.0.0.1:1/from_job\"\n",
    );
    p.write(
        "jobs/from_env.toml",
        "name = \"t\"\ndatabase_url = \"${DATABASE_URL:-postgres://x@127.0.0.1:1/unused}\"\n",
    );
    p.write(
        "jobs/defaulted.toml",
        "name = \"t\"\ndatabase_url = \"${NO_SUCH_RUNNER_VAR:-postgres://d@127.0.0.1:1/dflt}\"\n",
    );
    p.write("jobs/none.toml", "name = \"t\"\n");

    // The job's URL as written: the environment does not override it.
    assert_eq!(
        doctor(&["doctor", "jobs/explicit.toml"]),
        line("postgres://job@127.0.0.1:1/from_job")
    );
    // A job may read the environment itself, with its own default.
    assert_eq!(doctor(&["doctor", "jobs/from_env.toml"]), line(environment));
    assert_eq!(
        doctor(&["doctor", "jobs/defaulted.toml"]),
        line("postgres://d@127.0.0.1:1/dflt")
    );
    // Without `database_url` (or without a job) the environment decides.
    assert_eq!(doctor(&["doctor", "jobs/none.toml"]), line(environment));
    assert_eq!(doctor(&["doctor"]), line(environment));
    // `--database-url` comes first.
    assert_eq!(
        doctor(&[
            "doctor",
            "jobs/explicit.toml",
            "--database-url",
            "postgres://flag@127.0.0.1:1/from_flag"
        ]),
        line("postgres://flag@127.0.0.1:1/from_flag")
    );
}

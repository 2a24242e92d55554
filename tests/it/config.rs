use super::util::Project;

const CONFIG_ERROR: i32 = 2;

fn job(p: &Project, body: &str) -> String {
    p.write("jobs/t.toml", body);
    "jobs/t.toml".to_owned()
}

/// The whole stderr of `runner ARGS`, which must be a config error.
fn config_error(p: &Project, args: &[&str]) -> String {
    p.runner(None, args).expect_code(CONFIG_ERROR).stderr()
}

#[test]
fn unknown_key_names_file_line_column_and_suggests() {
    let p = Project::new();
    let path = job(
        &p,
        "name = \"t\"\n\n[[analysis]]\nname = \"a\"\ntemplat = \"x.sql\"\n",
    );
    assert_eq!(
        config_error(&p, &["check", &path]),
        "error: invalid job file: unknown field `templat`, expected one of `name`, \
         `description`, `template`, `outputs`, `chart`, `materialize`, `depends_on`, \
         `time_column`, `unique_key`, `statement_timeout`, `native`
 --> jobs/t.toml:5:1
  |
5 | templat = \"x.sql\"
  | ^^^^^^^
  = help: did you mean `template`?
"
    );
}

#[test]
fn malformed_toml_names_its_position() {
    let p = Project::new();
    let path = job(&p, "name = \"t\"\ndescription = \"unterminated\n");
    assert_eq!(
        config_error(&p, &["check", &path]),
        "error: invalid job file: invalid basic string, expected `\"`
 --> jobs/t.toml:2:28
  |
2 | description = \"unterminated
  |                            ^
"
    );
}

#[test]
fn missing_template_points_at_its_key() {
    let p = Project::new();
    let path = job(
        &p,
        "name = \"t\"\n\n[[analysis]]\nname = \"a\"\ntemplate = \"nope.sql\"\n",
    );
    let templates = p.path("templates");
    assert_eq!(
        config_error(&p, &["check", &path]),
        format!(
            "error: template `nope.sql` of analysis `a` not found in `{}`
 --> jobs/t.toml:5:12
  |
5 | template = \"nope.sql\"
  |            ^^^^^^^^^^
  = key: `analysis.a.template`
",
            templates.display()
        )
    );
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let p = Project::new();
    let path = job(
        &p,
        "name = \"t\"\n[[analysis]]\nname = \"a\"\ntemplate = \"nope.sql\"\n[[analysis]]\nname = \"a\"\ntemplate = \"also-missing.sql\"\n",
    );
    let templates = p.path("templates");
    assert_eq!(
        config_error(&p, &["check", &path]),
        format!(
            "error: template `nope.sql` of analysis `a` not found in `{templates}`
 --> jobs/t.toml:4:12
  |
4 | template = \"nope.sql\"
  |            ^^^^^^^^^^
  = key: `analysis.a.template`
error: analysis `a` is defined twice
 --> jobs/t.toml:6:8
  |
6 | name = \"a\"
  |        ^^^
  = key: `analysis.name`
error: template `also-missing.sql` of analysis `a` not found in `{templates}`
 --> jobs/t.toml:7:12
  |
7 | template = \"also-missing.sql\"
  |            ^^^^^^^^^^^^^^^^^^
  = key: `analysis.a.template`
3 problems found
",
            templates = templates.display()
        )
    );
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
    // Issue 10: the error names the variable and points at it.
    assert_eq!(
        config_error(&p, &["check", &path]),
        format!(
            "error: template `broken.sql`: `undefined_var` is undefined
 --> {}:3:14
  |
3 | WHERE x = {{{{ undefined_var }}}}
  |              ^^^^^^^^^^^^^
  = key: `analysis.b`
  = help: templates see the job's [vars], `as_of`, `job` and `timescaledb`; define \
`undefined_var` in [vars] or pass --var undefined_var=…
",
            p.path("templates/broken.sql").display()
        )
    );
}

#[test]
fn bad_var_override_is_a_config_error() {
    let p = Project::new();
    assert_eq!(
        config_error(&p, &["check", "jobs/quarterly.toml", "--var", "weeks=many"]),
        "error: `--var weeks=many`: expected an integer, like the job's `weeks`
  = key: `--var`
"
    );
    assert_eq!(
        config_error(
            &p,
            &["check", "jobs/quarterly.toml", "--var", "as_of=2020-02-30"]
        ),
        "error: `as_of` must be a date (YYYY-MM-DD), found `\"2020-02-30\"`
  = key: `vars.as_of`
"
    );
}

#[test]
fn source_globs_that_match_nothing_fail_check() {
    let p = Project::new();
    // A folder that is not there is named as such, for each pattern.
    assert_eq!(
        config_error(
            &p,
            &[
                "check",
                "jobs/quarterly.toml",
                "--var",
                "data_dir=/nonexistent",
            ],
        ),
        "error: pattern `${data_dir}/stocks/*.csv`: folder /nonexistent/stocks does not exist
  = key: `ingest.prices.paths`
error: pattern `${data_dir}/etfs/*.csv`: folder /nonexistent/etfs does not exist
  = key: `ingest.prices.paths`
error: pattern `${data_dir}/symbols_valid_meta.csv`: folder /nonexistent does not exist
  = key: `ingest.symbols.paths`
3 problems found
"
    );
    // An empty folder is a source that matches nothing.
    std::fs::create_dir_all(p.path("empty/stocks")).unwrap();
    std::fs::create_dir_all(p.path("empty/etfs")).unwrap();
    assert_eq!(
        config_error(
            &p,
            &["check", "jobs/quarterly.toml", "--var", "data_dir=empty"]
        ),
        "error: ingest source `prices` matches no files: ${data_dir}/stocks/*.csv, \
         ${data_dir}/etfs/*.csv
  = key: `ingest.prices.paths`
error: ingest source `symbols` matches no files: ${data_dir}/symbols_valid_meta.csv
  = key: `ingest.symbols.paths`
2 problems found
"
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
    assert_eq!(
        config_error(
            &p,
            &[
                "render",
                "jobs/quarterly.toml",
                "--select",
                "weekly_avg_closes",
            ],
        ),
        "error: job `quarterly` has no analysis `weekly_avg_closes`
  = key: `--select`
  = help: did you mean `weekly_avg_close`?
"
    );
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

#[test]
fn native_names_what_runner_computes_and_needs_its_key() {
    let p = Project::new();
    p.write("templates/x.sql", "SELECT 1 AS one");
    let unknown = job(
        &p,
        "name = \"t\"\n\n[[analysis]]\nname = \"a\"\ntemplate = \"x.sql\"\nmaterialize = \"incremental\"\ntime_column = \"day\"\nunique_key = [\"symbol\", \"day\"]\nnative = \"indicator\"\n",
    );
    let err = config_error(&p, &["check", &unknown]);
    assert!(
        err.contains("runner computes no `indicator` natively (it knows: indicators)")
            && err.contains("jobs/t.toml:9:10")
            && err.contains("did you mean `indicators`?"),
        "{err}"
    );
    let unkeyed = job(
        &p,
        "name = \"t\"\n\n[[analysis]]\nname = \"a\"\ntemplate = \"x.sql\"\nmaterialize = \"table\"\nnative = \"indicators\"\n",
    );
    let err = config_error(&p, &["check", &unkeyed]);
    assert!(
        err.contains(
            "native `indicators` needs materialize = \"incremental\", time_column = \"day\" and unique_key = [\"symbol\", \"day\"]"
        ) && err.contains("analysis.a.native"),
        "{err}"
    );
}

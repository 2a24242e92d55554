//! What a nightly user touches besides `run`: `history`, the runs index, `render`
//! resolving `as_of`, and `generate` reproducing the bundled data.

use super::derived::{project, write_symbols, JOB};
use super::util::{repo, Project, TestDb};

#[test]
fn history_and_the_index_list_every_run() {
    let db = TestDb::new();
    let p = project();
    write_symbols(&p, 2, 40);
    p.runner(Some(&db), &["run", "jobs/derived.toml"])
        .expect_code(0);
    p.write("templates/broken.sql", "SELECT 1 / 0 AS boom");
    p.write(
        "jobs/derived.toml",
        &(JOB.to_owned() + "\n[[analysis]]\nname = \"broken\"\ntemplate = \"broken.sql\"\n"),
    );
    p.runner(Some(&db), &["run", "jobs/derived.toml"])
        .expect_code(1);
    let out = p
        .runner(Some(&db), &["history", "jobs/derived.toml"])
        .expect_code(0)
        .stdout();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[0].starts_with(
            "run  job      started (UTC)        status     exit  seconds  as of       rows  report"
        ),
        "{out}"
    );
    let fields = |line: &str| -> Vec<String> {
        let f: Vec<&str> = line.split_whitespace().collect();
        // run, job, status, exit, as of, rows (the start time is two fields)
        vec![f[0], f[1], f[4], f[5], f[7], f[8]]
            .into_iter()
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        fields(lines[1]),
        ["2", "derived", "partial", "1", "2019-02-25", "0"]
    );
    assert_eq!(
        fields(lines[2]),
        ["1", "derived", "succeeded", "0", "2019-02-25", "80"]
    );
    assert!(lines[1].contains("division by zero"), "{out}");
    let index = p.read("reports/derived/index.html");
    assert_eq!(index.matches("<tr class=").count(), 2, "{index}");
    assert!(
        index.contains("<tr class=\"partial\"><td>2</td>"),
        "{index}"
    );
    assert!(
        index.contains("<a href=\"2019-02-25/report.html\">2019-02-25</a>"),
        "{index}"
    );
}

#[test]
fn render_asks_the_database_for_as_of_and_says_how_to_pass_it() {
    let db = TestDb::new();
    let p = Project::new();
    p.runner(Some(&db), &["run", "jobs/quarterly.toml"])
        .expect_code(0);
    let out = p
        .runner(
            Some(&db),
            &[
                "render",
                "jobs/quarterly.toml",
                "--select",
                "avg_volume_last_quarter",
            ],
        )
        .expect_code(0);
    assert!(
        out.stderr()
            .contains("-- as_of = 2020-04-01: the latest trading day in the job's database"),
        "{}",
        out.stderr()
    );
    assert!(
        out.stdout().contains("DATE '2020-04-01'"),
        "{}",
        out.stdout()
    );
    let offline = p
        .runner(
            None,
            &[
                "render",
                "jobs/quarterly.toml",
                "--select",
                "avg_volume_last_quarter",
            ],
        )
        .expect_code(0);
    assert!(
        offline.stderr().contains(
            "-- as_of is NULL: the job's database (postgres://nobody@127.0.0.1:1/none) is not reachable; pass --var as_of=YYYY-MM-DD"
        ),
        "{}",
        offline.stderr()
    );
}

/// The README's `generate` command makes `data/` byte for byte.
#[test]
fn the_documented_generate_command_reproduces_the_bundled_data() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let command = readme
        .lines()
        .find_map(|l| {
            l.split('`')
                .find(|part| part.starts_with("runner generate --out data "))
        })
        .expect("README documents how data/ was made");
    let out = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = command
        .split_whitespace()
        .skip(1)
        .map(str::to_owned)
        .collect();
    let at = args.iter().position(|a| a == "--out").unwrap();
    args[at + 1] = out.path().display().to_string();
    let p = Project::new();
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    p.runner(None, &refs).expect_code(0);
    let diff = std::process::Command::new("diff")
        .args([
            "-r",
            &out.path().display().to_string(),
            &repo().join("data").display().to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        diff.status.success(),
        "{}",
        String::from_utf8_lossy(&diff.stdout)
    );
}

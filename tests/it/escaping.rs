//! Values from job files and `--var` reach PostgreSQL as literals of their own type, and
//! an injection attempt stays a string (end to end, through the server).

use super::util::{Project, TestDb};

const JOB: &str = r#"
name = "esc"
[vars]
s = "O'Brien \\ \"q\" $$ -- not a comment"
i = -42
f = 2.5
b = true
d = 2020-03-31
l = ["AAPL", "x'y"]
e = []
n = [1, 2]
[[ingest]]
kind = "prices"
paths = ["data/stocks/*.csv"]
[[analysis]]
name = "values"
template = "values.sql"
outputs = ["csv"]
"#;

const TEMPLATE: &str = "SELECT {{ s }} AS s, pg_typeof({{ s }})::text AS s_type,
       {{ i }} AS i, pg_typeof({{ i }})::text AS i_type,
       {{ f }} AS f, pg_typeof({{ f }})::text AS f_type,
       {{ b }} AS b, {{ d }} + 1 AS next_day, pg_typeof({{ d }})::text AS d_type,
       'x''y' IN {{ l }} AS in_list, 1 IN {{ e }} AS in_empty, 2 IN {{ n }} AS in_nums,
       (SELECT count(*) FROM daily_prices WHERE symbol = {{ s }}) AS matches";

#[test]
fn every_value_type_arrives_typed_and_injection_stays_a_string() {
    let db = TestDb::new();
    let p = Project::new();
    p.write("jobs/esc.toml", JOB);
    p.write("templates/values.sql", TEMPLATE);
    p.runner(Some(&db), &["run", "jobs/esc.toml"])
        .expect_code(0);
    assert_eq!(
        p.read("reports/esc/latest/values.csv"),
        "s,s_type,i,i_type,f,f_type,b,next_day,d_type,in_list,in_empty,in_nums,matches\n\
         \"O'Brien \\ \"\"q\"\" $$ -- not a comment\",unknown,-42,integer,2.5,numeric,true,2020-04-01,date,true,,true,0\n"
    );
    for attack in [
        "s=x'); DROP TABLE daily_prices; --",
        "s=\\'; DROP TABLE daily_prices; --",
        "l=[a, b'); DROP TABLE daily_prices; --]",
    ] {
        p.runner(
            Some(&db),
            &["run", "jobs/esc.toml", "--skip-ingest", "--var", attack],
        )
        .expect_code(0);
        assert_eq!(
            db.scalar("SELECT count(*) FROM daily_prices"),
            "15",
            "{attack}"
        );
        let csv = p.read("reports/esc/latest/values.csv");
        let row = csv.lines().nth(1).unwrap();
        match attack.split_once("s=") {
            // The whole attack came back as the string value.
            Some(("", value)) => assert!(row.starts_with(&format!("{value},unknown,")), "{row}"),
            // The list attack is just a list of two odd strings.
            _ => assert!(row.ends_with(",false,,true,0"), "{row}"),
        }
    }
}

//! The dialect helpers give the same numbers with and without TimescaleDB: the expected
//! rows below are worked out by hand from tests/fixtures/basic (AAA), and every dialect
//! the test server offers must produce exactly them. On plain PostgreSQL that is the
//! `date_bin` / `array_agg` rendering; on a TimescaleDB server (TEST_DATABASE_URL at
//! 5433) both renderings run against the same data.

use runner::analysis::env::{environment, Dialect};

use super::util::{Project, TestDb};

const BUCKETS: &str = "
WITH buckets AS (
    SELECT {{ bucket(width, 'day') }} AS bucket, count(*) AS days,
           {{ first('close', 'day') }} AS first_close, {{ last('close', 'day') }} AS last_close,
           sum(volume) AS volume
    FROM daily_prices WHERE symbol = 'AAA'
    GROUP BY 1
), series AS (
    SELECT {{ gapfill_series(start|date, end|date, width) }} AS bucket
)
SELECT s.bucket, b.days, b.first_close, b.last_close, b.volume
FROM series s LEFT JOIN buckets b USING (bucket)
ORDER BY s.bucket";

fn render(dialect: Dialect, width: &str, start: &str, end: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let env = environment(dir.path(), dialect);
    env.render_str(
        BUCKETS,
        minijinja::context! { width => width, start => start, end => end },
    )
    .unwrap()
}

fn dialects(db: &TestDb) -> Vec<Dialect> {
    if db.has_timescale() {
        vec![Dialect::Postgres, Dialect::Timescale]
    } else {
        vec![Dialect::Postgres]
    }
}

#[test]
fn bucket_first_last_and_gapfill_agree_across_dialects() {
    let db = TestDb::new();
    let p = Project::new();
    p.runner(Some(&db), &["run", "jobs/quarterly.toml"])
        .expect_code(0);
    let cases: [(&str, &str, &str, &[&str]); 4] = [
        (
            "1 week",
            "2020-03-16",
            "2020-04-06",
            &[
                "2020-03-16|NULL|NULL|NULL|NULL",
                "2020-03-23|1|13.5|13.5|350",
                "2020-03-30|3|14|16|5900",
                "2020-04-06|NULL|NULL|NULL|NULL",
            ],
        ),
        // Two-week buckets count from Monday 2000-01-03 in both dialects.
        (
            "2 weeks",
            "2019-09-30",
            "2019-10-28",
            &[
                "2019-09-30|2|8|9|1002999",
                "2019-10-14|NULL|NULL|NULL|NULL",
                "2019-10-28|NULL|NULL|NULL|NULL",
            ],
        ),
        (
            "1 month",
            "2019-09-01",
            "2020-04-01",
            &[
                "2019-09-01|1|8|8|999999",
                "2019-10-01|1|9|9|3000",
                "2019-11-01|NULL|NULL|NULL|NULL",
                "2019-12-01|2|10|11|3000",
                "2020-01-01|2|12|12.5|300",
                "2020-02-01|1|13|13|300",
                "2020-03-01|3|13.5|15|1250",
                "2020-04-01|1|16|16|5000",
            ],
        ),
        (
            "1 quarter",
            "2019-07-01",
            "2020-04-01",
            &[
                "2019-07-01|1|8|8|999999",
                "2019-10-01|3|9|11|6000",
                "2020-01-01|6|12|15|1850",
                "2020-04-01|1|16|16|5000",
            ],
        ),
    ];
    for dialect in dialects(&db) {
        for (width, start, end, expected) in cases {
            let sql = render(dialect, width, start, end);
            assert_eq!(db.lines(&sql), expected, "{dialect:?} {width}\n{sql}");
        }
    }
    // The 2-week buckets away from the gap-filled range, without gap filling.
    for dialect in dialects(&db) {
        let dir = tempfile::tempdir().unwrap();
        let sql = environment(dir.path(), dialect)
            .render_str(
                "SELECT {{ bucket('2 weeks', 'day') }} AS b, count(*), {{ first('close', 'day') }} AS f, {{ last('close', 'day') }} AS l \
                 FROM daily_prices WHERE symbol = 'AAA' GROUP BY 1 ORDER BY 1",
                minijinja::context! {},
            )
            .unwrap();
        assert_eq!(
            db.lines(&sql),
            [
                "2019-09-30|2|8|9",
                "2019-12-23|4|10|12.5",
                "2020-02-03|1|13|13",
                "2020-03-16|1|13.5|13.5",
                "2020-03-30|3|14|16"
            ],
            "{dialect:?}"
        );
    }
}

use std::sync::mpsc;
use std::time::Duration;

use chrono::NaiveDate;
use diesel::prelude::*;
use runner::db::changelog::{self, Source, Span};

use super::util::TestDb;

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn migrated(db: &TestDb) -> PgConnection {
    let mut conn = db.conn();
    runner::db::migrate::run_pending(&mut conn).unwrap();
    conn
}

fn spans(p: &changelog::Pending) -> Vec<String> {
    p.spans
        .iter()
        .map(|s| format!("{} {}..{}", s.symbol, s.first_day(), s.last_day()))
        .collect()
}

#[test]
fn entries_commit_with_the_writer_and_are_pruned_after_every_consumer() {
    let db = TestDb::new();
    let mut conn = migrated(&db);
    // A new consumer rebuilds, then sees only what came after.
    let first = changelog::pending(&mut conn, "weekly", Source::DailyPrices).unwrap();
    assert!(first.rebuild && first.spans.is_empty());
    changelog::mark_applied(&mut conn, "weekly", first.upto).unwrap();
    changelog::pending(&mut conn, "monthly", Source::DailyPrices).unwrap();
    changelog::mark_applied(&mut conn, "monthly", 0).unwrap();

    // A rolled-back writer leaves nothing behind.
    let _ = conn.transaction::<(), diesel::result::Error, _>(|c| {
        changelog::record(
            c,
            Source::DailyPrices,
            &[Span::days("X", day("2020-01-01"), day("2020-01-01"))],
        )?;
        Err(diesel::result::Error::RollbackTransaction)
    });
    conn.transaction::<(), diesel::result::Error, _>(|c| {
        changelog::record(
            c,
            Source::DailyPrices,
            &[
                Span::days("B", day("2020-03-02"), day("2020-03-06")),
                Span::days("A", day("2020-01-02"), day("2020-01-03")),
            ],
        )
    })
    .unwrap();
    changelog::record(
        &mut conn,
        Source::DailyPrices,
        &[Span::days("A", day("2019-12-30"), day("2020-01-02"))],
    )
    .unwrap();
    changelog::record(
        &mut conn,
        Source::IntradayBars,
        &[Span::days("A", day("2020-05-01"), day("2020-05-01"))],
    )
    .unwrap();

    let weekly = changelog::pending(&mut conn, "weekly", Source::DailyPrices).unwrap();
    assert!(!weekly.rebuild);
    assert_eq!(
        spans(&weekly),
        ["A 2019-12-30..2020-01-03", "B 2020-03-02..2020-03-06"]
    );
    changelog::mark_applied(&mut conn, "weekly", weekly.upto).unwrap();
    assert!(changelog::pending(&mut conn, "weekly", Source::DailyPrices)
        .unwrap()
        .is_empty());

    // `monthly` has not applied them: nothing of daily_prices may go; intraday has no
    // consumer, so its entry goes.
    assert_eq!(changelog::prune(&mut conn).unwrap(), 1);
    assert_eq!(db.scalar("SELECT count(*) FROM change_log"), "3");
    let monthly = changelog::pending(&mut conn, "monthly", Source::DailyPrices).unwrap();
    assert_eq!(spans(&monthly), spans(&weekly));
    changelog::mark_applied(&mut conn, "monthly", monthly.upto).unwrap();
    assert_eq!(changelog::prune(&mut conn).unwrap(), 3);
    assert_eq!(db.scalar("SELECT count(*) FROM change_log"), "0");

    // A lost output is rebuilt on request; marking applied never moves backwards.
    changelog::request_rebuild(&mut conn, "weekly").unwrap();
    let again = changelog::pending(&mut conn, "weekly", Source::DailyPrices).unwrap();
    assert!(again.rebuild);
    changelog::mark_applied(&mut conn, "weekly", 0).unwrap();
    // Ids 1 (rolled back) to 5 were drawn; the watermark stays at 5.
    assert_eq!(
        db.lines("SELECT applied_id, rebuild FROM change_log_consumers WHERE consumer = 'weekly'"),
        ["5|false"]
    );
}

/// A writer that drew a lower id but commits later must not be skipped: `pending` waits
/// for writers in flight.
#[test]
fn a_late_commit_with_a_lower_id_is_not_skipped() {
    let db = TestDb::new();
    let mut conn = migrated(&db);
    let p = changelog::pending(&mut conn, "c", Source::DailyPrices).unwrap();
    changelog::mark_applied(&mut conn, "c", p.upto).unwrap();

    let (drew_id, commit) = (mpsc::channel(), mpsc::channel::<()>());
    let url = db.url.clone();
    let slow = std::thread::spawn(move || {
        let mut c = PgConnection::establish(&url).unwrap();
        c.transaction::<(), diesel::result::Error, _>(|c| {
            changelog::record(
                c,
                Source::DailyPrices,
                &[Span::days("SLOW", day("2020-01-01"), day("2020-01-01"))],
            )?;
            drew_id.0.send(()).unwrap();
            commit.1.recv().unwrap();
            Ok(())
        })
        .unwrap();
    });
    drew_id.1.recv().unwrap();
    changelog::record(
        &mut conn,
        Source::DailyPrices,
        &[Span::days("FAST", day("2020-01-02"), day("2020-01-02"))],
    )
    .unwrap();

    let url = db.url.clone();
    let reader = std::thread::spawn(move || {
        let mut c = PgConnection::establish(&url).unwrap();
        changelog::pending(&mut c, "c", Source::DailyPrices).unwrap()
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !reader.is_finished(),
        "pending must wait for the writer in flight"
    );
    commit.0.send(()).unwrap();
    slow.join().unwrap();
    let seen = reader.join().unwrap();
    assert_eq!(
        spans(&seen),
        ["FAST 2020-01-02..2020-01-02", "SLOW 2020-01-01..2020-01-01"]
    );
}

//! `runner stream JOB`: consume the job's feed until SIGTERM/SIGINT (or, with
//! `--until-drained`, until nothing is left); `--status` shows, per feed, the broker's
//! lag, pending acks and redeliveries and the last sequence applied to the database.

use crate::cli::StreamArgs;
use crate::error::{Diagnostic, Error, Result};
use crate::job::feed::Feed;
use crate::job::Job;
use crate::stream::{broker, consumer, status};

pub fn stream(args: &StreamArgs) -> Result<()> {
    let job = super::load_job(&args.job)?;
    if args.status {
        return print_status(&job, args);
    }
    let feed = pick_feed(&job, args.feed.as_deref())?;
    // Plain PostgreSQL: one more connection refreshes the rollups while batches commit
    // (the pool opens it when the consumer asks for it).
    let (pool, caps) = super::prepare_database(&job.database_url, 2)?;
    let counters = consumer::run(
        &feed,
        &pool,
        &caps,
        consumer::Options {
            until_drained: args.until_drained,
            log_every: args.log_every,
        },
    )?;
    crate::outln!("{}", serde_json::to_string(&counters).unwrap_or_default());
    Ok(())
}

/// `--status`: the named feed, or every feed of the job (a text block, or a JSON line,
/// each).
fn print_status(job: &Job, args: &StreamArgs) -> Result<()> {
    let feeds = match args.feed.as_deref() {
        Some(name) => vec![pick_feed(job, Some(name))?],
        None if job.feeds.is_empty() => vec![pick_feed(job, None)?],
        None => job.feeds.clone(),
    };
    let (pool, _caps) = super::prepare_database(&job.database_url, 1)?;
    let mut conn = crate::db::pool::checkout(&pool)?;
    for (i, feed) in feeds.iter().enumerate() {
        let status = feed_status(feed, &mut conn)?;
        if args.json {
            crate::outln!("{}", serde_json::to_string(&status).unwrap_or_default());
        } else {
            if i > 0 {
                crate::outln!("");
            }
            crate::out!("{}", status.text());
        }
    }
    Ok(())
}

fn feed_status(feed: &Feed, conn: &mut diesel::PgConnection) -> Result<status::Status> {
    let applied =
        status::applied(conn, feed).map_err(crate::db::db_error("reading stream offsets"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(crate::stream::StreamError::Runtime)?;
    let broker = runtime.block_on(async {
        let (_client, js) = broker::connect(feed).await?;
        broker::state(&js, feed).await
    })?;
    Ok(status::Status {
        feed: feed.name.clone(),
        stream: feed.stream.clone(),
        consumer: feed.consumer.clone(),
        broker,
        database: applied,
    })
}

/// The feed named `wanted`, or the job's only one.
pub fn pick_feed(job: &Job, wanted: Option<&str>) -> Result<Feed> {
    let names: Vec<&str> = job.feeds.iter().map(|f| f.name.as_str()).collect();
    let found = match wanted {
        Some(name) => job.feeds.iter().find(|f| f.name == name),
        None if job.feeds.len() == 1 => job.feeds.first(),
        None => None,
    };
    found.cloned().ok_or_else(|| {
        let message = match (wanted, names.is_empty()) {
            (_, true) => format!("job `{}` has no [[feed]]", job.name),
            (Some(name), false) => format!(
                "no feed `{name}` in job `{}` (it has {})",
                job.name,
                names.join(", ")
            ),
            (None, false) => format!(
                "job `{}` has several feeds ({}): pick one with --feed",
                job.name,
                names.join(", ")
            ),
        };
        Error::config(Diagnostic::new(message).key("--feed"))
    })
}

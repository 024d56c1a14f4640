//! The subcommands' flags: `summary`, `prune`, `import`, `export` and
//! `migrate`, each parsed into its typed arguments. Serving is config.rs.

use super::{db_config, db_flags, finish, flag, number, Command, Env};
use crate::db::Db;
use crate::error::Error;
use crate::ingest::peer::Keep;
use std::str::FromStr;
use std::time::Duration;

/// `spartakus-collector summary`, validated.
#[derive(Debug, Clone)]
pub struct SummaryArgs {
    pub db: Db,
    pub days: i32,
    pub json: bool,
}

/// `spartakus-collector prune`, validated.
#[derive(Debug, Clone)]
pub struct PruneArgs {
    pub db: Db,
    pub older_than: Duration,
    pub batch_size: i64,
}

/// `spartakus-collector import`, validated.
#[derive(Debug, Clone)]
pub struct ImportArgs {
    pub db: Db,
    /// The files to read in order; `-` is standard input.
    pub files: Vec<String>,
    pub on_error: OnError,
    pub received_from: Keep,
    pub batch_size: usize,
}

/// What `import` does with a line it cannot store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    Stop,
    Skip,
}

/// `spartakus-collector export`, validated.
#[derive(Debug, Clone)]
pub struct ExportArgs {
    pub db: Db,
}

/// `spartakus-collector migrate`, validated.
#[derive(Debug, Clone)]
pub struct MigrateArgs {
    pub db: Db,
    pub batch_size: i64,
}

pub fn summary(mut args: pico_args::Arguments, env: Env) -> Result<Command, Error> {
    let db = db_flags(&mut args, env)?;
    let days = flag(&mut args, env, "--days", None)?;
    let json = args.contains("--json");
    finish(args)?;
    let db = db_config(db)?;
    let days = number("--days", days.as_deref(), 30, 1, 36500)?;
    Ok(Command::Summary(SummaryArgs {
        db,
        days: i32::try_from(days).expect("--days is at most 36500"),
        json,
    }))
}

pub fn prune(mut args: pico_args::Arguments, env: Env) -> Result<Command, Error> {
    let db = db_flags(&mut args, env)?;
    let older_than = flag(&mut args, env, "--older-than", None)?;
    let batch_size = flag(&mut args, env, "--batch-size", None)?;
    finish(args)?;
    let db = db_config(db)?;
    let older_than = older_than.ok_or_else(|| {
        Error::usage("--older-than", "required, a duration like 400d, 36h or 90m")
    })?;
    let older_than = age(&older_than).ok_or_else(|| {
        Error::usage(
            "--older-than",
            &format!(
                "must be a duration like 400d, 36h or 90m, from 1s to 36500d, not {older_than:?}"
            ),
        )
    })?;
    let batch_size = number("--batch-size", batch_size.as_deref(), 10_000, 1, 1_000_000)?;
    Ok(Command::Prune(PruneArgs {
        db,
        older_than,
        batch_size: i64::try_from(batch_size).expect("--batch-size is at most 1000000"),
    }))
}

pub fn import(mut args: pico_args::Arguments, env: Env) -> Result<Command, Error> {
    let db = db_flags(&mut args, env)?;
    let on_error = flag(&mut args, env, "--on-error", None)?;
    let received_from = flag(
        &mut args,
        env,
        "--received-from",
        Some("SPARTAKUS_RECEIVED_FROM"),
    )?;
    let batch_size = flag(&mut args, env, "--batch-size", None)?;
    let mut files = Vec::new();
    for file in args.finish() {
        match file.into_string() {
            Ok(f) if f.starts_with("--") => {
                return Err(Error::usage(
                    "arguments",
                    &format!("unexpected {f:?}; see --help"),
                ))
            }
            Ok(f) => files.push(f),
            Err(_) => return Err(Error::usage("FILE", "must be valid UTF-8")),
        }
    }
    if files.is_empty() {
        files.push("-".into());
    }
    let db = db_config(db)?;
    let on_error = match on_error.as_deref() {
        None | Some("stop") => OnError::Stop,
        Some("skip") => OnError::Skip,
        Some(_) => return Err(Error::usage("--on-error", "must be stop or skip")),
    };
    let received_from = Keep::from_str(received_from.as_deref().unwrap_or("full"))
        .map_err(|_| Error::usage("--received-from", "must be full, truncated or none"))?;
    let batch_size = number("--batch-size", batch_size.as_deref(), 500, 1, 10_000)?;
    Ok(Command::Import(ImportArgs {
        db,
        files,
        on_error,
        received_from,
        batch_size,
    }))
}

pub fn export(mut args: pico_args::Arguments, env: Env) -> Result<Command, Error> {
    let db = db_flags(&mut args, env)?;
    finish(args)?;
    Ok(Command::Export(ExportArgs { db: db_config(db)? }))
}

pub fn migrate(mut args: pico_args::Arguments, env: Env) -> Result<Command, Error> {
    let db = db_flags(&mut args, env)?;
    let batch_size = flag(&mut args, env, "--batch-size", None)?;
    finish(args)?;
    let db = db_config(db)?;
    let batch_size = number("--batch-size", batch_size.as_deref(), 1_000, 1, 100_000)?;
    Ok(Command::Migrate(MigrateArgs {
        db,
        batch_size: i64::try_from(batch_size).expect("--batch-size is at most 100000"),
    }))
}

/// A positive age like `400d`, `36h`, `90m`, `30s` or `1d12h`, at most
/// 36500 days, which keeps it far inside PostgreSQL's interval range.
fn age(text: &str) -> Option<Duration> {
    let mut seconds: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        let number: u64 = rest[..digits].parse().ok()?;
        let unit = match rest[digits..].chars().next()? {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return None,
        };
        seconds = seconds.checked_add(number.checked_mul(unit)?)?;
        rest = &rest[digits + 1..];
    }
    (1..=36_500 * 86_400)
        .contains(&seconds)
        .then(|| Duration::from_secs(seconds))
}

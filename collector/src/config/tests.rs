//! Flag parsing: every rule, table-driven, and the environment fallbacks.

use super::*;

fn command(args: &[&str], env: &[(&str, &str)]) -> Result<Command, String> {
    let args = args.iter().map(OsString::from).collect();
    let env = |k: &str| {
        env.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    };
    parse(args, &env).map_err(|e| e.to_string())
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Result<Config, String> {
    match command(args, env)? {
        Command::Run(c) => Ok(*c),
        _ => Err("not a run".into()),
    }
}

#[test]
fn bad_flags_name_the_flag() {
    let db = "--db-url=postgres://u@h/d";
    let cases: &[(&[&str], &str)] = &[
        (&[], "--db-url: required"),
        (&[db, "--listen", "nowhere"], "--listen: must be HOST:PORT"),
        (
            &[db, "--body-memory", "0"],
            "--body-memory: must be a whole number",
        ),
        (
            &[db, "--body-memory", "many"],
            "--body-memory: must be a whole number",
        ),
        (
            &[db, "--body-memory", "3999", "--max-body-bytes", "2000"],
            "--body-memory: must be at least twice --max-body-bytes",
        ),
        (&[db, "--max-body-bytes", "-1"], "--max-body-bytes: must be"),
        (
            &[db, "--trusted-proxy", "10.0.0.0/33"],
            "--trusted-proxy: \"10.0.0.0/33\" is not a CIDR",
        ),
        (&[db, "--log-level", "loud"], "--log-level: must be"),
        (&[db, "--db-url"], "--db-url: needs a value"),
        (&[db, "extra"], "arguments: unexpected \"extra\""),
        (
            &["--db-url", "mysql://x"],
            "--db-url: must be a PostgreSQL URL",
        ),
    ];
    for (args, want) in cases {
        let got = run(args, &[]).expect_err("should fail");
        assert!(
            got.starts_with(want),
            "args {args:?}: want {want:?}, got {got:?}"
        );
    }
}

#[test]
fn env_is_a_fallback_and_flags_win() {
    let env = [
        ("DATABASE_URL", "postgres://u@h/d"),
        ("SPARTAKUS_LISTEN", "0.0.0.0:9000"),
        ("SPARTAKUS_TRUSTED_PROXY", "10.0.0.0/8, 192.168.0.0/16"),
        ("SPARTAKUS_BODY_MEMORY", "30000000"),
    ];
    let c = run(&["--body-memory", "20000000"], &env).expect("valid");
    assert_eq!(c.listen.to_string(), "0.0.0.0:9000");
    assert_eq!(c.body_memory, 20_000_000);
    assert_eq!(c.trusted_proxies.len(), 2);
    assert_eq!(c.max_body_bytes, 8 << 20);
}

#[test]
fn subcommand_flags_name_the_flag() {
    let db = "--db-url=postgres://u@h/d";
    let cases: &[(&[&str], &str)] = &[
        (&["summary"], "--db-url: required"),
        (
            &["summary", db, "--days", "0"],
            "--days: must be a whole number from 1 to 36500",
        ),
        (
            &["summary", db, "--days", "x"],
            "--days: must be a whole number",
        ),
        (
            &["summary", db, "--json", "x"],
            "arguments: unexpected \"x\"",
        ),
        (&["prune", db], "--older-than: required"),
        (&["prune", "--older-than", "400d"], "--db-url: required"),
        (
            &["prune", db, "--older-than", "0d"],
            "--older-than: must be a duration",
        ),
        (
            &["prune", db, "--older-than", "400"],
            "--older-than: must be a duration",
        ),
        (
            &["prune", db, "--older-than", "1y"],
            "--older-than: must be a duration",
        ),
        (
            &["prune", db, "--older-than", "36501d"],
            "--older-than: must be a duration",
        ),
        (
            &["prune", db, "--older-than", "400d", "--batch-size", "0"],
            "--batch-size: must be",
        ),
        (
            &["prune", db, "--older-than"],
            "--older-than: needs a value",
        ),
        (&["report", db], "arguments: unexpected \"report\""),
    ];
    for (args, want) in cases {
        let got = command(args, &[])
            .err()
            .unwrap_or_else(|| "accepted".into());
        assert!(
            got.starts_with(want),
            "args {args:?}: want {want:?}, got {got:?}"
        );
    }
}

#[test]
fn older_than_takes_days_hours_minutes_seconds() {
    let env = [("DATABASE_URL", "postgres://u@h/d")];
    for (text, secs) in [
        ("400d", 400 * 86_400),
        ("36h", 129_600),
        ("90m", 5_400),
        ("1d12h30s", 129_630),
    ] {
        match command(&["prune", "--older-than", text], &env) {
            Ok(Command::Prune(p)) => {
                assert_eq!(p.older_than, Duration::from_secs(secs), "{text}");
                assert_eq!(p.batch_size, 10_000);
            }
            _ => panic!("{text}: not a prune"),
        }
    }
}

#[test]
fn summary_defaults_to_30_days_of_tables() {
    let env = [("DATABASE_URL", "postgres://u@h/d")];
    match command(&["summary"], &env) {
        Ok(Command::Summary(s)) => assert_eq!((s.days, s.json), (30, false)),
        _ => panic!("not a summary"),
    }
    match command(&["summary", "--json", "--days=7"], &env) {
        Ok(Command::Summary(s)) => assert_eq!((s.days, s.json), (7, true)),
        _ => panic!("not a summary"),
    }
}

#[test]
fn db_ca_file_comes_from_the_environment_too() {
    let env = [
        ("DATABASE_URL", "postgres://u@h/d"),
        ("SPARTAKUS_DB_CA_FILE", "/nonexistent/ca.crt"),
    ];
    let commands: [&[&str]; 3] = [&[], &["summary"], &["prune", "--older-than", "1d"]];
    for args in commands {
        match command(args, &env) {
            Err(e) => assert!(
                e.starts_with("--db-ca-file: /nonexistent/ca.crt: cannot read it"),
                "{args:?}: {e}"
            ),
            Ok(_) => panic!("{args:?}: the CA file was not read"),
        }
    }
    let empty = [
        ("DATABASE_URL", "postgres://u@h/d"),
        ("SPARTAKUS_DB_CA_FILE", ""),
    ];
    match command(&[], &empty) {
        Err(e) => assert_eq!(e, "--db-ca-file: SPARTAKUS_DB_CA_FILE is set but empty"),
        Ok(_) => panic!("an empty SPARTAKUS_DB_CA_FILE was taken for no TLS"),
    }
}

#[test]
fn stats_is_off_by_default_and_its_rules_are_bounded() {
    use crate::insight::stats::Rules;
    let db = "--db-url=postgres://u@h/d";
    assert_eq!(run(&[db], &[]).expect("valid").stats, None);
    assert_eq!(
        run(&[db, "--stats", "off"], &[]).expect("valid").stats,
        None
    );
    let on = |args: &[&str], env: &[(&str, &str)]| run(args, env).expect("valid").stats;
    let rules = |min_clusters, min_days| {
        Some(Rules {
            min_clusters,
            min_days,
        })
    };
    assert_eq!(on(&[db, "--stats", "on"], &[]), rules(5, 2));
    assert_eq!(
        on(
            &[db, "--min-clusters", "2", "--min-days", "7"],
            &[("SPARTAKUS_STATS", "on"), ("SPARTAKUS_MIN_CLUSTERS", "9")]
        ),
        rules(2, 7)
    );
    assert_eq!(
        on(
            &[db],
            &[
                ("SPARTAKUS_STATS", "on"),
                ("SPARTAKUS_MIN_CLUSTERS", "9"),
                ("SPARTAKUS_MIN_DAYS", "1")
            ]
        ),
        rules(9, 1)
    );
    let cases: &[(&[&str], &str)] = &[
        (&[db, "--stats", "yes"], "--stats: must be off or on"),
        (&[db, "--stats"], "--stats: needs a value"),
        (
            &[db, "--min-clusters", "1"],
            "--min-clusters: must be a whole number from 2 to 1000000",
        ),
        (
            &[db, "--min-days", "0"],
            "--min-days: must be a whole number from 1 to 7",
        ),
        (
            &[db, "--min-days", "8"],
            "--min-days: must be a whole number from 1 to 7",
        ),
    ];
    for (args, want) in cases {
        let got = run(args, &[]).expect_err("should fail");
        assert!(
            got.starts_with(want),
            "{args:?}: want {want:?}, got {got:?}"
        );
    }
}

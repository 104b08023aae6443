//! Tests of loading the configuration: layers, environment, validation.

use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn defaults_parse_and_validate() {
    let c = Config::defaults();
    assert_eq!(c.server.listen, "127.0.0.1:8080");
    assert_eq!(c.limits.max_chat_chars, 2000);
    assert!(c.store_url().starts_with("sqlite://"));
}

#[test]
fn store_urls_take_postgres_and_never_show_a_password() {
    let with = |url: &str| Config::from_layers(None, env(&[("LECTERN_STORE_URL", url)]));
    let c = with("postgres://lectern:s3cret@db.example:5432/lectern").unwrap();
    assert_eq!(
        c.store_url(),
        "postgres://lectern:s3cret@db.example:5432/lectern"
    );
    assert!(!format!("{c:?}").contains("s3cret"));
    assert!(format!("{:?}", c.store).contains("lectern:***@db.example:5432/lectern"));
    with("postgresql://db.example/lectern").unwrap();
    with("sqlite::memory:").unwrap();
    let err = with("mysql://lectern:s3cret@db.example/lectern").unwrap_err();
    assert!(!err.to_string().contains("s3cret"), "{err}");
    assert!(err.to_string().contains("postgres://"), "{err}");
}

#[test]
fn env_overrides_with_types() {
    let c = Config::from_layers(
        None,
        env(&[
            ("LECTERN_ROOM_AUTO_START", "true"),
            ("LECTERN_LIMITS_MAX_CHAT_CHARS", "10"),
            ("LECTERN_SERVER_LISTEN", "127.0.0.1:0"),
        ]),
    )
    .expect("valid");
    assert!(c.room.auto_start);
    assert_eq!(c.limits.max_chat_chars, 10);
    assert_eq!(c.listen_addr().port(), 0);
}

#[test]
fn readable_errors() {
    // An unknown variable is only a warning that names it; an unknown key in a file stays an
    // error (below).
    let c = Config::from_layers(
        None,
        env(&[("LECTERN_ROOM_AUTO_STRAT", "true"), ("LECTERN_BIN", "/x")]),
    )
    .expect("unknown variables do not stop the server");
    assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
    assert!(
        c.warnings[0].contains("LECTERN_ROOM_AUTO_STRAT"),
        "{:?}",
        c.warnings
    );
    assert!(c.warnings[1].contains("LECTERN_BIN"), "{:?}", c.warnings);
    assert!(!c.room.auto_start);
    let e = Config::from_layers(None, env(&[("LECTERN_LIMITS_CHAT_BURST", "many")])).unwrap_err();
    assert!(e.to_string().contains("non-negative integer"), "{e}");
    let e = Config::from_layers(Some(("x.toml", "[room]\nauto_strat = true\n")), []).unwrap_err();
    assert!(e.to_string().contains("room.auto_strat"), "{e}");
    let e = Config::from_layers(Some(("x.toml", "[room\n")), []).unwrap_err();
    assert!(e.to_string().contains("x.toml"), "{e}");
    let e = Config::from_layers(Some(("x.toml", "[room]\nauto_start = 3\n")), []).unwrap_err();
    assert_eq!(
        e.to_string(),
        "`room.auto_start` must be true or false, not an integer"
    );
    let e = Config::from_layers(None, env(&[("LECTERN_SERVER_LISTEN", "nowhere")])).unwrap_err();
    assert!(e.to_string().contains("server.listen"), "{e}");
    let e = Config::from_layers(None, env(&[("LECTERN_AUTH_HS256_SECRET", "short")])).unwrap_err();
    assert!(e.to_string().contains("32"), "{e}");
    let e = Config::from_layers(
        Some(("x.toml", "[websocket]\nping_interval_secs = 50\n")),
        [],
    )
    .unwrap_err();
    assert!(e.to_string().contains("idle_timeout_secs"), "{e}");
}

#[test]
fn public_keys_from_file() {
    let c = Config::from_layers(
        Some((
            "x.toml",
            "[[auth.public_keys]]\nalgorithm = \"EdDSA\"\npem = \"x\"\n",
        )),
        [],
    )
    .expect("valid");
    assert_eq!(c.auth.public_keys.len(), 1);
    let e = Config::from_layers(
        Some((
            "x.toml",
            "[[auth.public_keys]]\nalgorithm = \"HS512\"\npem = \"x\"\n",
        )),
        [],
    )
    .unwrap_err();
    assert!(e.to_string().contains("RS256"), "{e}");
}

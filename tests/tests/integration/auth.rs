//! Join-token checks at the hello: every refusal is a typed error followed by `closing`.

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use lectern_proto::Role;
use lectern_server::auth::{JoinClaims, unix_now};
use lectern_tests::{Client, SECRET, TestServer};
use serde_json::json;

fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn claims(room: &str) -> JoinClaims {
    let now = unix_now();
    JoinClaims {
        sub: "ada".into(),
        name: "Ada".into(),
        room: room.into(),
        role: Role::Student,
        exp: now + 600,
        nbf: now - 5,
        iat: Some(now),
        iss: None,
        aud: None,
    }
}

fn hs256(claims: &impl serde::Serialize, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign")
}

/// Try a token; return the error code and the closing reason the server sent.
async fn refusal(s: &TestServer, token: &str, room_param: Option<&str>) -> (String, String) {
    let mut c = Client::connect(s.addr, room_param).await.expect("connect");
    let err = c
        .hello(token, None)
        .await
        .expect_err("token must be refused");
    let error = c
        .received
        .iter()
        .find(|m| m["type"] == "error")
        .unwrap_or_else(|| panic!("no error message: {err}"))
        .clone();
    let closing = c
        .wait_for(|m| m["type"] == "closing")
        .await
        .expect("closing follows");
    c.wait_closed().await.expect("closed");
    (
        error["code"].as_str().unwrap_or_default().to_owned(),
        closing["reason"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn bad_tokens_are_refused_with_typed_errors() {
    let s = TestServer::start().await;
    let now = unix_now();

    let mut expired = claims("r");
    expired.exp = now - 120;
    expired.nbf = now - 600;
    assert_eq!(
        refusal(&s, &hs256(&expired, SECRET), None).await,
        ("token_expired".into(), "handshake_failed".into())
    );

    let mut early = claims("r");
    early.nbf = now + 3600;
    assert_eq!(
        refusal(&s, &hs256(&early, SECRET), None).await.0,
        "token_not_yet_valid"
    );

    let forged = hs256(&claims("r"), "another-secret-another-secret-another-1");
    assert_eq!(refusal(&s, &forged, None).await.0, "invalid_token");

    // alg "none": an unsigned token claiming anything.
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let none = format!(
        "{}.{}.",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(serde_json::to_vec(&claims("r")).expect("json"))
    );
    assert_eq!(refusal(&s, &none, None).await.0, "invalid_token");

    // A valid token for room r used to enter room other.
    assert_eq!(
        refusal(&s, &hs256(&claims("r"), SECRET), Some("other"))
            .await
            .0,
        "wrong_room"
    );

    // Missing claims: each required one in turn.
    for missing in ["sub", "name", "room", "role", "exp", "nbf"] {
        let mut value = serde_json::to_value(claims("r")).expect("json");
        value.as_object_mut().expect("object").remove(missing);
        let (code, _) = refusal(&s, &hs256(&value, SECRET), None).await;
        assert_eq!(code, "invalid_token", "missing {missing}");
    }
    let mut bad_role = serde_json::to_value(claims("r")).expect("json");
    bad_role["role"] = json!("principal");
    assert_eq!(
        refusal(&s, &hs256(&bad_role, SECRET), None).await.0,
        "invalid_token"
    );

    // Garbage.
    assert_eq!(refusal(&s, "not.a.token", None).await.0, "invalid_token");

    // Tokens that (nearly) never expire are refused: 2^63, u64::MAX, and 40 days against the
    // default longest lifetime of 30.
    for exp in [json!(1u64 << 63), json!(u64::MAX), json!(now + 40 * 86_400)] {
        let mut value = serde_json::to_value(claims("r")).expect("json");
        value["exp"] = exp.clone();
        assert_eq!(
            refusal(&s, &hs256(&value, SECRET), None).await.0,
            "invalid_token",
            "exp {exp}"
        );
    }

    // RS256 with no key configured is refused, not confused with the HS256 secret.
    let rs = jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &claims("r"),
        &EncodingKey::from_rsa_pem(fixture("rsa_private.pem").as_bytes()).expect("key"),
    )
    .expect("sign");
    assert_eq!(refusal(&s, &rs, None).await.0, "invalid_token");

    // The server is still fine for a good token after all that, and JWT's NumericDate may
    // have a fraction.
    let mut ok = Client::connect(s.addr, Some("r")).await.expect("connect");
    ok.hello(&hs256(&claims("r"), SECRET), None)
        .await
        .expect("welcome");
    let mut fractional = serde_json::to_value(claims("r")).expect("json");
    fractional["exp"] = json!(now as f64 + 600.5);
    fractional["nbf"] = json!(now as f64 - 5.25);
    let mut ok = Client::connect(s.addr, Some("r")).await.expect("connect");
    ok.hello(&hs256(&fractional, SECRET), None)
        .await
        .expect("a fractional exp is accepted");
    assert!(s.metric("lectern_handshake_failed_total").await >= 14);
}

#[tokio::test]
async fn lms_tokens_with_public_keys_and_pinned_algorithms() {
    let keys = format!(
        "[{{ kid = \"lms-rsa\", algorithm = \"RS256\", pem = \"\"\"{}\"\"\" }}, {{ algorithm = \"EdDSA\", pem = \"\"\"{}\"\"\" }}]",
        fixture("rsa_public.pem"),
        fixture("ed25519_public.pem")
    );
    let s = TestServer::start_with(&[
        ("LECTERN_AUTH_PUBLIC_KEYS", keys.as_str()),
        ("LECTERN_AUTH_ISSUER", "https://lms.example.edu"),
        ("LECTERN_AUTH_AUDIENCE", "lectern"),
    ])
    .await;
    let mut c = claims("r");
    c.iss = Some("https://lms.example.edu".into());
    c.aud = Some("lectern".into());

    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("lms-rsa".into());
    let rs = jsonwebtoken::encode(
        &header,
        &c,
        &EncodingKey::from_rsa_pem(fixture("rsa_private.pem").as_bytes()).expect("key"),
    )
    .expect("sign");
    let mut client = Client::connect(s.addr, None).await.expect("connect");
    client
        .hello(&rs, None)
        .await
        .expect("RS256 token from the LMS is accepted");

    let ed = jsonwebtoken::encode(
        &Header::new(Algorithm::EdDSA),
        &JoinClaims {
            sub: "bob".into(),
            ..c.clone()
        },
        &EncodingKey::from_ed_pem(fixture("ed25519_private.pem").as_bytes()).expect("key"),
    )
    .expect("sign");
    let mut client = Client::connect(s.addr, None).await.expect("connect");
    client
        .hello(&ed, None)
        .await
        .expect("EdDSA token is accepted");

    // Algorithm confusion: an HS256 token whose "secret" is the RSA public key.
    let confused = hs256(&c, &fixture("rsa_public.pem"));
    assert_eq!(refusal(&s, &confused, None).await.0, "invalid_token");
    // Wrong issuer and wrong audience.
    let mut wrong_iss = c.clone();
    wrong_iss.iss = Some("https://evil.example".into());
    let t = jsonwebtoken::encode(
        &header,
        &wrong_iss,
        &EncodingKey::from_rsa_pem(fixture("rsa_private.pem").as_bytes()).expect("key"),
    )
    .expect("sign");
    assert_eq!(refusal(&s, &t, None).await.0, "invalid_token");
    let mut wrong_aud = c.clone();
    wrong_aud.aud = Some("other-app".into());
    let t = jsonwebtoken::encode(
        &header,
        &wrong_aud,
        &EncodingKey::from_rsa_pem(fixture("rsa_private.pem").as_bytes()).expect("key"),
    )
    .expect("sign");
    assert_eq!(refusal(&s, &t, None).await.0, "invalid_token");
    // A configured issuer and audience are required, not just checked when present.
    for strip in ["iss", "aud"] {
        let mut value = serde_json::to_value(&c).expect("json");
        value.as_object_mut().expect("object").remove(strip);
        let t = jsonwebtoken::encode(
            &header,
            &value,
            &EncodingKey::from_rsa_pem(fixture("rsa_private.pem").as_bytes()).expect("key"),
        )
        .expect("sign");
        assert_eq!(
            refusal(&s, &t, None).await.0,
            "invalid_token",
            "token without {strip}"
        );
    }
}

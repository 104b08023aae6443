//! Time-limited TURN credentials in the TURN REST API form (the one coturn implements with
//! `use-auth-secret`): username `"<expiry>:<participant>"`, password
//! `base64(HMAC-SHA1(secret, username))`. The TURN server checks them with the shared secret
//! alone, so Lectern never has to tell it about participants.

use base64::Engine;
use hmac::{Hmac, Mac};
use lectern_proto::{IceServer, ParticipantId};

use crate::config::TurnConfig;

/// The ICE servers for one participant at `now` (Unix seconds); empty when no TURN is set.
pub fn ice_servers(config: &TurnConfig, participant: &ParticipantId, now: u64) -> Vec<IceServer> {
    if config.urls.is_empty() {
        return Vec::new();
    }
    let username = format!("{}:{participant}", now + config.ttl_secs);
    vec![IceServer {
        urls: config.urls.clone(),
        credential: Some(credential(&config.secret, &username)),
        username: Some(username),
    }]
}

fn credential(secret: &str, username: &str) -> String {
    // HMAC accepts keys of any length.
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_turn_rest_api_form() {
        // Computed independently: base64(hmac_sha1(secret, "1790000000:demo/ada")) in Python.
        assert_eq!(
            credential("coturn-shared-secret-0123456789", "1790000000:demo/ada"),
            "nNaZyW5sovAuzYa/Yx+/N2xwdK4="
        );
        let config = TurnConfig {
            urls: vec!["turn:127.0.0.1:3478".into()],
            secret: "coturn-shared-secret-0123456789".into(),
            ttl_secs: 600,
        };
        let servers = ice_servers(&config, &ParticipantId::new("ada"), 1_000);
        assert_eq!(servers[0].username.as_deref(), Some("1600:ada"));
        let none = TurnConfig {
            urls: vec![],
            ..config
        };
        assert!(ice_servers(&none, &ParticipantId::new("ada"), 1_000).is_empty());
    }
}

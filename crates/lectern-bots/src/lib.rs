//! Simulated Lectern participants on webrtc-rs (the `webrtc` crate), an independent WebRTC
//! stack, for integration tests and the load tool `lectern-bench media`.
//!
//! A [`Bot`] speaks Lectern's real protocol (docs/PROTOCOL.md) over a WebSocket: `hello` with a
//! token, then `media_offer` → `sfu_answer` for its own peer connection, `sfu_offer` →
//! `media_answer` for what the SFU sends it, and trickled `media_candidate`s. Messages are
//! `lectern-proto` types through its codec (`encode_client`, `decode_server`), never JSON by hand.
//!
//! - [`Bot::publish`]: an instructor that sends generated VP8 video (~30 fps, a configurable bit
//!   rate, keyframes at start, periodically and on PLI/FIR) and Opus audio (20 ms packets).
//!   Payloads are checkable ([`payload`]): each carries its frame number, position and send
//!   time, and video starts with a valid VP8 payload descriptor so the SFU's keyframe gating
//!   sees real keyframes.
//! - [`Bot::subscribe`]: a student that receives every offered track and keeps per-track
//!   [`TrackStats`]: RTP sequence continuity (gaps that NACK did not fill), a byte-for-byte
//!   payload check, whether video began with a keyframe, and one-way latency from the embedded
//!   send time (both ends read the same wall clock, so bots must run on one machine).
//!
//! Each bot has its own UDP socket on [`BotOptions::bind_ip`] and its own webrtc-rs driver task
//! on the caller's tokio runtime. Nothing here decodes media: the payloads are not real VP8
//! or Opus beyond their first bytes.

mod bot;
mod error;
pub mod payload;
pub mod stats;

pub use bot::{
    Bot, BotOptions, InboundStream, OfferedTrack, PendingPublish, PublishCounters, PublishOptions,
    now_us,
};
pub use error::BotError;
pub use stats::{Histogram, SeqTracker, TrackStats};

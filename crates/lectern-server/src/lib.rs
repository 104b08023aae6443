//! The `lectern` server: configuration, HTTP and WebSocket endpoints, join-token checks, one
//! task per room driving the sans-IO [`lectern_room::Room`], persistence through
//! [`lectern_store::Store`], metrics and graceful shutdown.
//!
//! Data flow: a connection task reads frames, checks the hello's token, and sends commands to the
//! room's task over a bounded channel. The room task feeds them to the `Room`, stores what must
//! be durable (one transaction per batch of inputs), then fans out each message serialized once
//! into every recipient's bounded outbound queue. A connection that cannot keep up is closed.
//!
//! Modules of the live path, dependencies one way (`server -> shared -> rooms -> conn`, and
//! `ws -> rooms, conn`): `server` (start-up, router, shutdown), `shared` (what handlers and
//! connection tasks share), `ws` (one WebSocket connection), `rooms` (the registry and room
//! tasks, which see only a `RoomEnv`), `conn` (a leaf: outbound items and how a connection is
//! closed), `ws_frame` (a leaf: WebSocket frames as bytes on the wire), `media` (media
//! workers and room placement), `clock` (the one clock).

mod api;
pub mod auth;
pub mod board;
pub mod clock;
pub mod cluster;
pub mod config;
mod conn;
pub mod courses;
mod drain;
mod media;
pub mod metrics;
pub mod quizzes;
pub mod recordings;
pub mod room_name;
mod rooms;
mod server;
mod shared;
mod turn;
mod web;
mod ws;
mod ws_frame;
mod ws_upgrade;

pub use drain::drain_signal;
pub use server::{Server, ServerError, resolve_secret};

//! Full-server integration tests: the real `lectern` server on 127.0.0.1:0 with real WebSocket
//! clients. One binary (see tests/Cargo.toml); shared helpers live in `lectern_tests`.

mod api;
mod auth;
mod bad_input;
mod board;
mod bots;
mod class;
mod cluster;
mod durability;
mod fencing;
mod frames;
mod history;
mod home;
mod http;
mod lifecycle;
mod media;
mod outage;
mod polls;
mod postgres;
mod quizzes;
mod reconnect;
mod recording;
mod restore;
mod room_admin;
mod teaching;

//! Media-plane tests: one binary, modules by layer.

mod forwarding;
mod handover;
mod negotiation;
mod quality;
mod recording;
mod support;
mod worker;

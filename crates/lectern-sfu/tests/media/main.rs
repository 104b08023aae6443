//! Media-plane tests: one binary, modules by layer.

mod forwarding;
mod handover;
mod negotiation;
mod recording;
mod support;
mod worker;

//! Media-plane tests: one binary, modules by layer.

mod forwarding;
mod negotiation;
mod support;
mod worker;

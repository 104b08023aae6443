//! Media-plane tests: one binary, modules by layer.

mod forwarding;
mod support;
mod worker;

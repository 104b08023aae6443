//! Media-plane tests: one binary, modules by layer.

mod batch;
mod downlink;
mod forwarding;
mod glare;
mod handover;
mod joins;
mod negotiation;
mod quality;
mod recording;
mod relay;
mod reuse;
mod shed;
mod support;
mod worker;

//! Tests of the room state machine, driven without sockets. One binary; one module per area.

mod support;

mod chat;
mod class;
mod hands;
mod join;
mod polls;
mod props;
mod quiz;
mod recording;
mod replay;
mod restore;
mod scenario;
mod schedule;
mod speaker;
mod speaking;
mod teaching;

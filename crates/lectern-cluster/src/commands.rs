//! Cross-node commands: the REST API on one node acts on a room hosted by another.
//!
//! Each node subscribes to its own pub/sub channel, `{prefix}inbox:{node}`. A command is
//! published to the target node's inbox as a JSON envelope carrying a request id and the
//! sender's node id; the target handles it and publishes the reply, with the same request id,
//! to the sender's inbox. The sender waits for that reply with a timeout.
//!
//! Why pub/sub rather than streams: a command only makes sense to the node hosting the room
//! *now*, and only while the caller (an HTTP request) is waiting. Pub/sub delivers at most once
//! and keeps nothing, which is that; and `PUBLISH` answers how many subscribers got the message,
//! so a command to a node that is gone (stopped, crashed, cut off from Redis) fails at once with
//! [`ClusterError::TargetGone`] instead of waiting for a timeout. A stream would keep commands
//! for a dead node that nobody should carry out later.
//!
//! What the caller can conclude:
//! - a [`CommandReply`]: the target handled it and said how;
//! - [`ClusterError::TargetGone`]: nobody received it; nothing was done;
//! - [`ClusterError::Timeout`]: it may or may not have been done (the target may have died while
//!   handling it, or its reply was lost while this node's subscription reconnected). Commands are
//!   designed to be safe to repeat (ending a class that has ended, admitting someone admitted).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::conn::Redis;
use crate::error::{ClusterError, Result};
use crate::ids::{FencingToken, NodeId, check_room_id};
use crate::lease::Leases;

/// The envelope version this crate writes and reads. A request in another version is answered
/// [`CommandReply::Unsupported`]; adding a command or a reply variant does not change it.
const ENVELOPE_VERSION: u32 = 1;

/// A command for the node hosting a room. New commands are new variants; a node that does not
/// know a variant answers [`CommandReply::Unsupported`] (so nodes of two versions can run side by
/// side during an upgrade).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RoomCommand {
    /// End the class in the room (as the instructor's "end class" does).
    EndClass,
    /// Admit a participant waiting in the lobby.
    Admit {
        /// The participant's id.
        participant: String,
    },
    /// Remove a participant from the room.
    Remove {
        /// The participant's id.
        participant: String,
    },
}

/// How the hosting node answered a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CommandReply {
    /// Done.
    Done,
    /// The node does not host the room (any more, or not under the token the sender saw).
    NotHosted,
    /// The room refused it; `code` is a stable error code, `message` a short readable text.
    Refused {
        /// A stable error code, for example `not_found`.
        code: String,
        /// A short message for people.
        message: String,
    },
    /// The node does not know this command (an older version).
    Unsupported,
    /// The node has too many commands waiting; try again.
    Busy,
}

/// A command received by this node, to be handled by the room it names and answered with
/// [`IncomingCommand::reply`]. A command dropped without a reply leaves the sender to time out.
#[derive(Debug)]
pub struct IncomingCommand {
    /// The node that sent it.
    pub from: NodeId,
    /// The room it is for.
    pub room: String,
    /// The lease token the sender saw for the room, if it looked it up: a node whose lease has a
    /// different token should answer [`CommandReply::NotHosted`].
    pub token: Option<FencingToken>,
    /// The command.
    pub command: RoomCommand,
    request_id: u64,
    redis: Redis,
    me: NodeId,
}

impl IncomingCommand {
    /// Sends the reply to the node that asked.
    pub async fn reply(self, reply: CommandReply) -> Result<()> {
        send_reply(&self.redis, &self.me, &self.from, self.request_id, &reply).await
    }
}

/// Publishes `reply` to request `id` to the inbox of `to`.
async fn send_reply(
    redis: &Redis,
    me: &NodeId,
    to: &NodeId,
    id: u64,
    reply: &CommandReply,
) -> Result<()> {
    let envelope = Envelope {
        v: ENVELOPE_VERSION,
        id,
        from: me.clone(),
        body: Body::Reply {
            reply: serde_json::to_value(reply).map_err(encode_error)?,
        },
    };
    publish(redis, to, &envelope).await?;
    Ok(())
}

#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    v: u32,
    id: u64,
    from: NodeId,
    #[serde(flatten)]
    body: Body,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Body {
    Request {
        room: String,
        token: Option<FencingToken>,
        // Kept raw so that an unknown command still yields a reply (Unsupported).
        command: serde_json::Value,
    },
    Reply {
        reply: serde_json::Value,
    },
}

type Pending = Mutex<HashMap<u64, oneshot::Sender<Result<CommandReply>>>>;

/// Sends commands to other nodes and receives theirs. Cheap to clone; the listener stops when
/// the last clone is dropped (or at [`CommandBus::stop`]).
#[derive(Debug, Clone)]
pub struct CommandBus {
    inner: Arc<BusInner>,
}

#[derive(Debug)]
struct BusInner {
    redis: Redis,
    node: NodeId,
    pending: Arc<Pending>,
    next_id: AtomicU64,
    listener: JoinHandle<()>,
}

impl Drop for BusInner {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl CommandBus {
    /// Subscribes to this node's inbox and starts listening. Commands for this node arrive on
    /// the returned receiver; at most `queue` wait there (more are answered
    /// [`CommandReply::Busy`]). Fails if Redis cannot be reached now; later disconnections are
    /// retried in the background (commands and replies sent meanwhile are lost).
    pub async fn start(
        redis: Redis,
        node: NodeId,
        queue: usize,
    ) -> Result<(CommandBus, mpsc::Receiver<IncomingCommand>)> {
        let channel = redis.inbox_channel(&node);
        let mut pubsub = redis.client().get_async_pubsub().await?;
        pubsub.subscribe(&channel).await?;
        let pending: Arc<Pending> = Arc::default();
        let (incoming_tx, incoming_rx) = mpsc::channel(queue.max(1));
        let listener = tokio::spawn(listen(
            redis.clone(),
            node.clone(),
            pubsub,
            Arc::clone(&pending),
            incoming_tx,
        ));
        tracing::info!(node.id = %node, "command bus listening");
        let inner = BusInner {
            redis,
            node,
            pending,
            // Random start: a restarted node with the same id never matches replies meant for
            // its previous run.
            next_id: AtomicU64::new(rand::random::<u64>() >> 1),
            listener,
        };
        Ok((
            CommandBus {
                inner: Arc::new(inner),
            },
            incoming_rx,
        ))
    }

    /// This node's id.
    pub fn node(&self) -> &NodeId {
        &self.inner.node
    }

    /// Sends `command` for `room` to `target` and waits up to `timeout` for its reply.
    pub async fn send(
        &self,
        target: &NodeId,
        room: &str,
        token: Option<FencingToken>,
        command: &RoomCommand,
        timeout: Duration,
    ) -> Result<CommandReply> {
        check_room_id(room)?;
        if self.inner.listener.is_finished() {
            return Err(ClusterError::BusClosed);
        }
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let envelope = Envelope {
            v: ENVELOPE_VERSION,
            id,
            from: self.inner.node.clone(),
            body: Body::Request {
                room: room.to_owned(),
                token,
                command: serde_json::to_value(command).map_err(encode_error)?,
            },
        };
        let (tx, rx) = oneshot::channel();
        lock(&self.inner.pending).insert(id, tx);
        // Whatever happens below, the entry must not outlive this call.
        let _cleanup = RemovePending {
            pending: &self.inner.pending,
            id,
        };
        // The timeout covers the publish too: while Redis reconnects, a publish waits for it.
        let exchange = async {
            let receivers = publish(&self.inner.redis, target, &envelope).await?;
            if receivers == 0 {
                return Err(ClusterError::TargetGone {
                    node: target.clone(),
                });
            }
            tracing::debug!(
                node.id = %self.inner.node,
                target.id = %target,
                room.id = %room,
                request.id = id,
                "command sent"
            );
            rx.await.map_err(|_| ClusterError::BusClosed)?
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or_else(|_| {
                Err(ClusterError::Timeout {
                    node: target.clone(),
                    timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
                })
            })
    }

    /// Looks up who hosts `room` and sends it `command` with the holder's token.
    /// [`ClusterError::NotHosted`] if no node holds the room.
    pub async fn send_to_room(
        &self,
        leases: &Leases,
        room: &str,
        command: &RoomCommand,
        timeout: Duration,
    ) -> Result<CommandReply> {
        let holder = leases
            .holder(room)
            .await?
            .ok_or_else(|| ClusterError::NotHosted {
                room: room.to_owned(),
            })?;
        self.send(&holder.node, room, Some(holder.token), command, timeout)
            .await
    }

    /// Stops listening: this node no longer receives commands, and commands sent to it fail with
    /// [`ClusterError::TargetGone`].
    pub fn stop(&self) {
        self.inner.listener.abort();
    }
}

struct RemovePending<'a> {
    pending: &'a Pending,
    id: u64,
}

impl Drop for RemovePending<'_> {
    fn drop(&mut self) {
        lock(self.pending).remove(&self.id);
    }
}

fn lock(
    pending: &Pending,
) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<Result<CommandReply>>>> {
    // A panic while holding this lock cannot leave the map inconsistent (single inserts and
    // removes), so a poisoned lock is still usable.
    pending
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn encode_error(e: serde_json::Error) -> ClusterError {
    ClusterError::Decode {
        what: "command envelope",
        detail: e.to_string(),
    }
}

/// [`send_reply`] for replies the listener gives itself: a failure is only logged.
async fn answer_logged(redis: &Redis, me: &NodeId, to: &NodeId, id: u64, reply: CommandReply) {
    if let Err(e) = send_reply(redis, me, to, id, &reply).await {
        tracing::warn!(node.id = %me, error = %e, "could not answer a command");
    }
}

/// Publishes to `target`'s inbox; answers how many subscribers received it.
async fn publish(redis: &Redis, target: &NodeId, envelope: &Envelope) -> Result<u64> {
    let json = serde_json::to_string(envelope).map_err(encode_error)?;
    let receivers: u64 = redis::cmd("PUBLISH")
        .arg(redis.inbox_channel(target))
        .arg(json)
        .query_async(&mut redis.conn())
        .await?;
    Ok(receivers)
}

/// Receives this node's inbox until aborted, resubscribing after a lost connection.
async fn listen(
    redis: Redis,
    node: NodeId,
    pubsub: redis::aio::PubSub,
    pending: Arc<Pending>,
    incoming: mpsc::Sender<IncomingCommand>,
) {
    let channel = redis.inbox_channel(&node);
    let mut pubsub = Some(pubsub);
    let mut backoff = Duration::from_millis(50);
    loop {
        let mut current = match pubsub.take() {
            Some(p) => p,
            None => match resubscribe(&redis, &channel).await {
                Ok(p) => {
                    tracing::info!(node.id = %node, "command bus resubscribed");
                    backoff = Duration::from_millis(50);
                    p
                }
                Err(e) => {
                    tracing::warn!(node.id = %node, error = %e, "command bus cannot subscribe, retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            },
        };
        {
            let mut messages = current.on_message();
            while let Some(msg) = messages.next().await {
                handle_message(&redis, &node, msg.get_payload_bytes(), &pending, &incoming).await;
            }
        }
        tracing::warn!(node.id = %node, "command bus lost its redis subscription");
    }
}

async fn resubscribe(redis: &Redis, channel: &str) -> Result<redis::aio::PubSub> {
    let mut pubsub = redis.client().get_async_pubsub().await?;
    pubsub.subscribe(channel).await?;
    Ok(pubsub)
}

async fn handle_message(
    redis: &Redis,
    me: &NodeId,
    payload: &[u8],
    pending: &Pending,
    incoming: &mpsc::Sender<IncomingCommand>,
) {
    let envelope: Envelope = match serde_json::from_slice(payload) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(node.id = %me, error = %e, "dropping an undecodable command envelope");
            return;
        }
    };
    match envelope.body {
        Body::Reply { reply } => {
            let Some(waiter) = lock(pending).remove(&envelope.id) else {
                tracing::debug!(node.id = %me, request.id = envelope.id, "reply for no waiting command (late)");
                return;
            };
            let reply =
                serde_json::from_value::<CommandReply>(reply).map_err(|e| ClusterError::Decode {
                    what: "command reply",
                    detail: e.to_string(),
                });
            let _ = waiter.send(reply);
        }
        Body::Request {
            room,
            token,
            command,
        } => {
            let from = envelope.from;
            let id = envelope.id;
            let answer = |reply: CommandReply| answer_logged(redis, me, &from, id, reply);
            if envelope.v != ENVELOPE_VERSION {
                tracing::info!(node.id = %me, from.id = %from, envelope.v = envelope.v, "command envelope of another version");
                answer(CommandReply::Unsupported).await;
                return;
            }
            if check_room_id(&room).is_err() {
                tracing::warn!(node.id = %me, from.id = %from, "command with an invalid room id");
                answer(CommandReply::NotHosted).await;
                return;
            }
            let command = match serde_json::from_value::<RoomCommand>(command) {
                Ok(c) => c,
                Err(e) => {
                    tracing::info!(node.id = %me, from.id = %from, error = %e, "unsupported command");
                    answer(CommandReply::Unsupported).await;
                    return;
                }
            };
            let cmd = IncomingCommand {
                from: from.clone(),
                room: room.clone(),
                token,
                command,
                request_id: id,
                redis: redis.clone(),
                me: me.clone(),
            };
            let refusal = match incoming.try_send(cmd) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Full(_)) => CommandReply::Busy,
                Err(mpsc::error::TrySendError::Closed(_)) => CommandReply::NotHosted,
            };
            tracing::warn!(node.id = %me, room.id = %room, reply = ?refusal, "command not queued");
            answer(refusal).await;
        }
    }
}

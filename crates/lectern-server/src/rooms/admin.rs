//! Administrators' actions on a live room (the REST API's `end`, `admit`, `remove`), wherever
//! the room runs.
//!
//! The node that receives the call looks for the room: its own task (one node, or the lease
//! holder is this node) gets [`RoomCommand::Admin`] and answers at once; otherwise the lease
//! holder in Redis gets a [`lectern_cluster::RoomCommand`] over the command bus, with the lease
//! token seen, and its [`serve_commands`] hands it to the room task the same way. The room task
//! applies it with `Room::handle_admin`, which is safe to repeat: so is a command retried after
//! a timeout.

use std::sync::Arc;

use lectern_cluster::{ClusterError, CommandReply, IncomingCommand, NodeId};
use lectern_proto::{ErrorCode, ParticipantId, RoomId};
use lectern_room::{AdminAction, RoomError};
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use super::{Registry, RoomCommand};

use crate::cluster::ACTION_TIMEOUT;

/// Why an administrator's action was not done (or may not have been).
#[derive(Debug, thiserror::Error)]
pub enum ActError {
    /// No node runs the room now (it opens with the first hello).
    #[error("room {room} is not running on any node")]
    NotRunning { room: String },
    /// The room refused: the participant is not there, or may not be removed.
    #[error("the room refused: {0}")]
    Refused(RoomError),
    /// The hosting node is not listening (stopped, crashed, cut off from Redis): nothing was
    /// done. Its clients reconnect and the room opens elsewhere shortly.
    #[error(
        "the node hosting room {room} ({node}) is not reachable; nothing was done. \
         Try again in a few seconds, when the room has moved to another node"
    )]
    HostGone { room: String, node: String },
    /// No answer in time: it may or may not have happened.
    #[error(
        "no answer from the node hosting room {room} ({node}) within {secs} s: the action may or \
         may not have happened. It is safe to repeat"
    )]
    Timeout {
        room: String,
        node: String,
        secs: u64,
    },
    /// The cluster's Redis fails, or the hosting node is busy or runs a version that does not
    /// know the action.
    #[error("the room cannot be reached now: {0}. Try again shortly")]
    Unavailable(String),
}

impl Registry {
    /// Applies `action` to `room` where it runs (see the module docs).
    pub async fn act(&self, room: &RoomId, action: AdminAction) -> Result<(), ActError> {
        let not_running = || ActError::NotRunning {
            room: room.as_str().to_owned(),
        };
        let Some(cluster) = &self.cluster else {
            let tx = self.get(room).ok_or_else(not_running)?;
            return act_here(&tx, room, action).await;
        };
        // A task here runs under the current lease (a lost lease stops it at once).
        if let Some(tx) = self.get(room) {
            return act_here(&tx, room, action).await;
        }
        let holder = cluster
            .holder(room.as_str())
            .await
            .map_err(|e| unavailable(room, &e))?
            .ok_or_else(not_running)?;
        if &holder.node == cluster.node_id() {
            // Ours, but no task: it is stopping (or starting) right now.
            return Err(not_running());
        }
        let command = to_command(&action);
        let reply = cluster
            .send_command(&holder.node, room.as_str(), holder.token, &command)
            .await;
        info!(action = action.name(), target.id = %holder.node, reply = ?reply, "administrator's action sent to the hosting node");
        match reply {
            Ok(CommandReply::Done) => Ok(()),
            Ok(CommandReply::NotHosted) => Err(not_running()),
            Ok(CommandReply::Refused { code, .. }) => Err(ActError::Refused(refusal(&code))),
            Ok(CommandReply::Busy) => Err(ActError::Unavailable(format!(
                "node {} has too many commands waiting",
                holder.node
            ))),
            Ok(other) => Err(ActError::Unavailable(format!(
                "node {} cannot carry it out ({other:?}; another version of Lectern?)",
                holder.node
            ))),
            Err(ClusterError::TargetGone { node }) => Err(ActError::HostGone {
                room: room.as_str().to_owned(),
                node: node.to_string(),
            }),
            Err(ClusterError::Timeout { node, .. }) => Err(timeout(room, &node)),
            Err(e) => Err(unavailable(room, &e)),
        }
    }
}

/// Hands `action` to the room task behind `tx` and waits for its verdict.
async fn act_here(
    tx: &mpsc::Sender<RoomCommand>,
    room: &RoomId,
    action: AdminAction,
) -> Result<(), ActError> {
    let name = action.name();
    let (reply, verdict) = oneshot::channel();
    let exchange = async {
        tx.send(RoomCommand::Admin { action, reply }).await.ok()?;
        verdict.await.ok()
    };
    match tokio::time::timeout(ACTION_TIMEOUT, exchange).await {
        Ok(Some(Ok(()))) => {
            info!(room.id = %room, action = name, "administrator's action done");
            Ok(())
        }
        Ok(Some(Err(e))) => Err(ActError::Refused(e)),
        // The task stopped before it took the command (closed after being empty, or its
        // lease was lost): nothing was done.
        Ok(None) => Err(ActError::NotRunning {
            room: room.as_str().to_owned(),
        }),
        Err(_) => Err(ActError::Timeout {
            room: room.as_str().to_owned(),
            node: "this node".into(),
            secs: ACTION_TIMEOUT.as_secs(),
        }),
    }
}

fn timeout(room: &RoomId, node: &NodeId) -> ActError {
    ActError::Timeout {
        room: room.as_str().to_owned(),
        node: node.to_string(),
        secs: ACTION_TIMEOUT.as_secs(),
    }
}

fn unavailable(room: &RoomId, e: &ClusterError) -> ActError {
    warn!(room.id = %room, error = %e, "cannot reach the cluster for an administrator's action");
    ActError::Unavailable("the cluster's Redis does not answer".into())
}

fn to_command(action: &AdminAction) -> lectern_cluster::RoomCommand {
    match action {
        AdminAction::EndClass => lectern_cluster::RoomCommand::EndClass,
        AdminAction::Admit { participant_id } => lectern_cluster::RoomCommand::Admit {
            participant: participant_id.as_str().to_owned(),
        },
        AdminAction::Remove { participant_id } => lectern_cluster::RoomCommand::Remove {
            participant: participant_id.as_str().to_owned(),
        },
    }
}

fn from_command(command: lectern_cluster::RoomCommand) -> Option<AdminAction> {
    Some(match command {
        lectern_cluster::RoomCommand::EndClass => AdminAction::EndClass,
        lectern_cluster::RoomCommand::Admit { participant } => AdminAction::Admit {
            participant_id: ParticipantId::new(participant),
        },
        lectern_cluster::RoomCommand::Remove { participant } => AdminAction::Remove {
            participant_id: ParticipantId::new(participant),
        },
        _ => return None,
    })
}

/// The wire code of a refusal (`not_found`, `not_permitted`, ...).
fn code_of(e: &RoomError) -> String {
    serde_json::to_value(e.code())
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "internal".into())
}

/// A refusal's code as the room error the REST API maps: only the two an action can meet.
fn refusal(code: &str) -> RoomError {
    match serde_json::from_value::<ErrorCode>(serde_json::Value::from(code)) {
        Ok(ErrorCode::NotFound) => RoomError::NotFound,
        _ => RoomError::NotPermitted,
    }
}

/// Serves the commands other nodes send to this node's rooms until the bus closes: each goes
/// to the room task running under the lease token the sender saw, and its verdict back.
pub async fn serve_commands(
    registry: Arc<Registry>,
    mut incoming: mpsc::Receiver<IncomingCommand>,
) {
    while let Some(command) = incoming.recv().await {
        let registry = registry.clone();
        // One task each: a slow room never holds up the others' commands.
        tokio::spawn(async move {
            let reply = answer(&registry, &command).await;
            if let Err(e) = command.reply(reply).await {
                warn!(error = %e, "could not answer a command from another node");
            }
        });
    }
}

async fn answer(registry: &Registry, command: &IncomingCommand) -> CommandReply {
    let Some(action) = from_command(command.command.clone()) else {
        return CommandReply::Unsupported;
    };
    let room = RoomId::new(command.room.clone());
    let Some(tx) = registry.for_command(&room, command.token) else {
        info!(room.id = %room, from.id = %command.from, "command for a room not hosted here");
        return CommandReply::NotHosted;
    };
    info!(room.id = %room, from.id = %command.from, action = action.name(), "command from another node");
    match act_here(&tx, &room, action).await {
        Ok(()) => CommandReply::Done,
        Err(ActError::Refused(e)) => CommandReply::Refused {
            code: code_of(&e),
            message: e.to_string(),
        },
        Err(ActError::NotRunning { .. }) => CommandReply::NotHosted,
        // The room task did not answer in time: the sender has given up by now, with "may or
        // may not have happened".
        Err(_) => CommandReply::Busy,
    }
}

//! Live polls: staff open one (one at a time), students answer once, staff see the results as
//! they come (`poll_results`, to staff only) and may show the counts to the class.
//!
//! Who chose what never reaches a student, and for an anonymous poll not even staff: they get
//! counts only, and the store keeps no identity. A poll's id is the seq of its `poll_started`.

use lectern_proto::{Poll, PollId, PollState, Role, RoomEvent, ServerMessage, UnixMillis};

use super::{Handled, Reply, Request, Room};
use crate::poll::{LivePoll, check_choices, check_poll};
use crate::roster::Participant;
use crate::{PersistRecord, RoomError};

impl Room {
    /// Staff open a poll: refused while another is open ([`RoomError::PollOpen`]) or with an
    /// invalid question or options ([`RoomError::PollInvalid`]). Announced to everyone with the
    /// question only; it replaces the last (closed) poll.
    pub(super) fn poll_start(
        &mut self,
        req: &Request,
        question: String,
        options: Vec<String>,
        multiple: bool,
        anonymous: bool,
    ) -> Handled {
        if self.poll.as_ref().is_some_and(|p| p.open) {
            return Err(RoomError::PollOpen);
        }
        let (question, options) =
            check_poll(&question, &options).map_err(RoomError::PollInvalid)?;
        let poll = Poll {
            // The seq `emit` is about to use.
            poll_id: self.seq + 1,
            question,
            options,
            multiple,
            anonymous,
            asked_by: req.actor.clone(),
            started_at: req.now,
        };
        self.poll = Some(LivePoll::new(poll.clone()));
        let seq = self.emit(req.now, RoomEvent::PollStarted { poll: poll.clone() }, None);
        debug_assert_eq!(seq, poll.poll_id);
        let asked_by_name = self.actor(req).name.clone();
        self.persist(PersistRecord::PollStarted {
            poll,
            asked_by_name,
        });
        Reply::event(seq)
    }

    /// A student answers the open poll, once. Staff and observers may not
    /// ([`RoomError::NotPermitted`]), nor the lobby ([`RoomError::InLobby`]). The ack carries no
    /// seq; staff get the new `poll_results`.
    pub(super) fn poll_answer(
        &mut self,
        req: &Request,
        poll_id: PollId,
        choices: Vec<u32>,
    ) -> Handled {
        self.check_participation(req)?;
        let actor = self.actor(req);
        if actor.role != Role::Student {
            return Err(RoomError::NotPermitted);
        }
        let name = actor.name.clone();
        let live = self.current_poll_mut(poll_id)?;
        if !live.open {
            return Err(RoomError::PollClosed);
        }
        if live.has_answered(&req.actor) {
            return Err(RoomError::AlreadyAnswered);
        }
        let choices = check_choices(&live.poll, choices).ok_or(RoomError::InvalidChoice)?;
        let anonymous = live.poll.anonymous;
        let vote = live.record(&req.actor, &name, choices.clone());
        let results = live.results(vote.into_iter().collect());
        self.send_to_staff(ServerMessage::PollResults { results });
        self.persist(PersistRecord::PollAnswered {
            poll_id,
            voter: (!anonymous).then(|| (req.actor.clone(), name)),
            choices,
            at: (!anonymous).then_some(req.now),
        });
        Reply::no_event()
    }

    /// Staff close the open poll; a closed one is [`RoomError::PollClosed`].
    pub(super) fn poll_end(&mut self, req: &Request, poll_id: PollId) -> Handled {
        if !self.current_poll_mut(poll_id)?.open {
            return Err(RoomError::PollClosed);
        }
        Reply::event(self.end_poll(req.now, Some(req)))
    }

    /// Staff show the counts to everyone, closing the poll first if it is open. Sharing again
    /// is a no-op.
    pub(super) fn poll_share(&mut self, req: &Request, poll_id: PollId) -> Handled {
        let live = self.current_poll_mut(poll_id)?;
        if live.shared {
            return Reply::no_event();
        }
        if live.open {
            self.end_poll(req.now, Some(req));
        }
        let Some(live) = self.poll.as_mut() else {
            return Err(RoomError::NotFound);
        };
        live.shared = true;
        let event = RoomEvent::PollShared {
            poll_id,
            counts: live.counts().to_vec(),
            answered: live.answered(),
            by: req.actor.clone(),
        };
        let seq = self.emit(req.now, event, None);
        self.persist(PersistRecord::PollShared {
            poll_id,
            at: req.now,
        });
        Reply::event(seq)
    }

    /// Closes the open poll (`by` the request's actor, or nobody when the class ended) and
    /// returns the seq of `poll_ended`. The caller checked that it is open.
    fn end_poll(&mut self, now: UnixMillis, req: Option<&Request>) -> u64 {
        let Some(live) = self.poll.as_mut() else {
            return self.seq;
        };
        live.open = false;
        let poll_id = live.poll.poll_id;
        let event = RoomEvent::PollEnded {
            poll_id,
            by: req.map(|r| r.actor.clone()),
        };
        let seq = self.emit(now, event, None);
        self.persist(PersistRecord::PollEnded { poll_id, at: now });
        seq
    }

    /// The class ended: an open poll closes.
    pub(super) fn close_poll_at_class_end(&mut self, now: UnixMillis) {
        if self.poll.as_ref().is_some_and(|p| p.open) {
            self.end_poll(now, None);
        }
    }

    /// The class (re)starts: a closed poll of an earlier class is forgotten.
    pub(super) fn forget_closed_poll(&mut self) {
        if self.poll.as_ref().is_some_and(|p| !p.open) {
            self.poll = None;
        }
    }

    /// The poll named by a request: it must be the room's current one.
    fn current_poll_mut(&mut self, poll_id: PollId) -> Result<&mut LivePoll, RoomError> {
        self.poll
            .as_mut()
            .filter(|p| p.poll.poll_id == poll_id)
            .ok_or(RoomError::NotFound)
    }

    fn send_to_staff(&mut self, message: ServerMessage) {
        let to = self.roster.recipients(|p| p.is_staff());
        if !to.is_empty() {
            self.send(to, None, message);
        }
    }

    /// After a replay: staff get the open poll's full results (they missed the live ones).
    pub(super) fn poll_results_after_replay(&mut self, conn: crate::ConnId, viewer_is_staff: bool) {
        let Some(live) = self.poll.as_ref().filter(|p| p.open && viewer_is_staff) else {
            return;
        };
        let results = live.results(live.all_votes());
        self.send(vec![conn], None, ServerMessage::PollResults { results });
    }

    /// The poll as `viewer` may see it in a snapshot: the open poll, or the last one once
    /// shared. `None` stands for a student who has not answered (shared snapshots, the
    /// recording's log). Staff get the results with every named vote; everyone else their own
    /// answer and, once shared, the counts.
    pub(super) fn poll_state_for(&self, viewer: Option<&Participant>) -> Option<PollState> {
        let live = self.poll.as_ref().filter(|p| p.open || p.shared)?;
        let staff = viewer.is_some_and(Participant::is_staff);
        let results = if staff {
            Some(live.results(live.all_votes()))
        } else {
            live.shared.then(|| live.results(Vec::new()))
        };
        Some(PollState {
            poll: live.poll.clone(),
            open: live.open,
            shared: live.shared,
            my_choices: viewer.and_then(|v| live.answer_of(&v.id).cloned()),
            results,
        })
    }

    /// True when this participant answered the current poll (their snapshot is their own).
    pub(super) fn answered_poll(&self, id: &lectern_proto::ParticipantId) -> bool {
        self.poll.as_ref().is_some_and(|p| p.has_answered(id))
    }
}

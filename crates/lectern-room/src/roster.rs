//! The roster: every participant in the room (connected or within their reconnect grace
//! period) in join order, indexed by participant id and by connection, plus the grace deadlines.
//!
//! The roster keeps its indexes consistent; the room decides who joins, leaves and expires.

use std::collections::{BTreeSet, HashMap};

use lectern_proto::{MediaState, ParticipantId, Role, UnixMillis};

use crate::{ConnId, Identity, Permissions};

/// One participant's state as the room stores it.
#[derive(Debug, Clone)]
pub(crate) struct Participant {
    pub id: ParticipantId,
    pub name: String,
    pub role: Role,
    /// The attached connection; `None` while in the grace period. Changed only by [`Roster`].
    pub conn: Option<ConnId>,
    pub in_lobby: bool,
    pub hard_muted: bool,
    /// Staff granted speech (call on, allow speak). Not the effective permission.
    pub speak_granted: bool,
    /// Staff allowed their camera outside the stage (camera request or allow, seminar mode).
    pub camera_allowed: bool,
    pub media: MediaState,
    /// When the grace period ends, while disconnected. Changed only by [`Roster`].
    pub grace_deadline: Option<UnixMillis>,
    /// What they may see widened while they were disconnected (let in from the lobby): their
    /// next join gets a full snapshot, never a replay, which would lack what they could not
    /// see before.
    pub needs_snapshot: bool,
}

impl Participant {
    pub fn new(identity: Identity, conn: ConnId, in_lobby: bool) -> Self {
        Participant {
            id: identity.id,
            name: identity.name,
            role: identity.role,
            conn: Some(conn),
            in_lobby,
            hard_muted: false,
            speak_granted: false,
            camera_allowed: false,
            media: MediaState::default(),
            grace_deadline: None,
            needs_snapshot: false,
        }
    }

    pub fn perms(&self) -> Permissions {
        Permissions::for_role(self.role)
    }

    pub fn is_staff(&self) -> bool {
        self.role.is_staff()
    }
}

/// Participants in join order with O(1) lookups by id and by connection.
#[derive(Debug, Default)]
pub(crate) struct Roster {
    list: Vec<Participant>,
    index: HashMap<ParticipantId, usize>,
    conns: HashMap<ConnId, ParticipantId>,
    grace: BTreeSet<(UnixMillis, ParticipantId)>,
}

impl Roster {
    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// In join order.
    pub fn iter(&self) -> impl Iterator<Item = &Participant> {
        self.list.iter()
    }

    /// In join order. Callers must not change `id`, `conn` or `grace_deadline`.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Participant> {
        self.list.iter_mut()
    }

    pub fn get(&self, id: &ParticipantId) -> Option<&Participant> {
        self.index.get(id).map(|&i| &self.list[i])
    }

    /// Callers must not change `id`, `conn` or `grace_deadline`.
    pub fn get_mut(&mut self, id: &ParticipantId) -> Option<&mut Participant> {
        self.index.get(id).map(|&i| &mut self.list[i])
    }

    pub fn contains(&self, id: &ParticipantId) -> bool {
        self.index.contains_key(id)
    }

    /// The participant this connection is attached to.
    pub fn id_by_conn(&self, conn: ConnId) -> Option<&ParticipantId> {
        self.conns.get(&conn)
    }

    /// Adds a participant who is not in the roster yet (attached to `p.conn`).
    pub fn insert(&mut self, p: Participant) {
        debug_assert!(
            !self.index.contains_key(&p.id),
            "participant already present"
        );
        if let Some(conn) = p.conn {
            self.conns.insert(conn, p.id.clone());
        }
        self.index.insert(p.id.clone(), self.list.len());
        self.list.push(p);
    }

    /// Adds a participant restored from storage: not connected, in their grace period until
    /// `deadline`.
    pub fn insert_in_grace(&mut self, mut p: Participant, deadline: UnixMillis) {
        p.conn = None;
        p.grace_deadline = Some(deadline);
        self.grace.insert((deadline, p.id.clone()));
        self.insert(p);
    }

    /// Attaches `conn` to a participant who has none, ending their grace period.
    pub fn attach(&mut self, id: &ParticipantId, conn: ConnId) {
        let Some(&i) = self.index.get(id) else {
            return;
        };
        let p = &mut self.list[i];
        if let Some(old) = p.conn.replace(conn) {
            self.conns.remove(&old);
        }
        if let Some(deadline) = p.grace_deadline.take() {
            self.grace.remove(&(deadline, p.id.clone()));
        }
        self.conns.insert(conn, p.id.clone());
    }

    /// Detaches a participant's connection, starting a grace period ending at `deadline` if
    /// given. Returns the connection that was attached.
    pub fn detach(&mut self, id: &ParticipantId, deadline: Option<UnixMillis>) -> Option<ConnId> {
        let &i = self.index.get(id)?;
        let p = &mut self.list[i];
        let conn = p.conn.take()?;
        self.conns.remove(&conn);
        if let Some(deadline) = deadline {
            p.grace_deadline = Some(deadline);
            self.grace.insert((deadline, p.id.clone()));
        }
        Some(conn)
    }

    /// Removes a participant for good (with their connection and grace deadline).
    pub fn remove(&mut self, id: &ParticipantId) -> Option<Participant> {
        let i = self.index.remove(id)?;
        let p = self.list.remove(i);
        for (j, later) in self.list.iter().enumerate().skip(i) {
            self.index.insert(later.id.clone(), j);
        }
        self.forget_links(&p);
        Some(p)
    }

    /// Removes every participant matching `pred`, in join order, in one pass.
    pub fn remove_where(&mut self, mut pred: impl FnMut(&Participant) -> bool) -> Vec<Participant> {
        let (removed, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.list)
            .into_iter()
            .partition(|p| pred(p));
        self.list = kept;
        for p in &removed {
            self.forget_links(p);
        }
        self.index = self
            .list
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id.clone(), i))
            .collect();
        removed
    }

    fn forget_links(&mut self, p: &Participant) {
        if let Some(conn) = p.conn {
            self.conns.remove(&conn);
        }
        if let Some(deadline) = p.grace_deadline {
            self.grace.remove(&(deadline, p.id.clone()));
        }
    }

    /// Participants whose grace period has ended at `now`, earliest first.
    pub fn expired(&self, now: UnixMillis) -> Vec<ParticipantId> {
        self.grace
            .iter()
            .take_while(|(deadline, _)| *deadline <= now)
            .map(|(_, id)| id.clone())
            .collect()
    }

    /// The earliest grace deadline.
    pub fn next_deadline(&self) -> Option<UnixMillis> {
        self.grace.first().map(|(deadline, _)| *deadline)
    }

    /// The connections of connected participants matching `pred`, in join order.
    pub fn recipients(&self, mut pred: impl FnMut(&Participant) -> bool) -> Vec<ConnId> {
        self.list
            .iter()
            .filter_map(|p| p.conn.filter(|_| pred(p)))
            .collect()
    }
}

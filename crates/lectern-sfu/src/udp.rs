//! Batched UDP I/O for a media worker (issue 15, point 2).
//!
//! One received RTP packet becomes one datagram per subscriber: at 200 students a `send_to`
//! per datagram was about half of the server's CPU per forwarded packet (a system call each).
//! [`SendQueue`] keeps the datagrams a pass of the worker produces, in order, and writes them
//! with one `sendmmsg` per [`SEND_BATCH`]; [`RecvBatch`] reads up to [`RECV_BATCH`] datagrams
//! with one `recvmmsg`, so the SFU's timers and polls run once per batch, not per datagram.
//!
//! The socket is non-blocking. A full send buffer (`EAGAIN`) leaves the rest queued, in order,
//! until the socket is writable again ([`wait`]); the queue is bounded ([`MAX_QUEUED`]) and what
//! does not fit is dropped and counted, never silently. A datagram the kernel refuses for its
//! destination (unreachable network, bad address) is counted and skipped: one bad peer does not
//! hold up the others. quinn-udp's GSO is not used: it batches segments to one destination, and
//! a forwarded packet goes to as many destinations as there are subscribers.
//!
//! A worker short of CPU falls behind its socket; when the socket's receive buffer is full the
//! kernel drops what arrives (a joining student's connectivity checks among it). With
//! [`count_overflow`] the kernel tells how many it dropped ([`RecvBatch::overflowed`]), so the
//! server can say so (`lectern_media_socket_overflow_total`, a warning) rather than leave a
//! failed join unexplained. With [`timestamp_arrivals`] it also says when each datagram
//! arrived ([`RecvBatch::waited`]): how far behind the worker is, datagram by datagram, which
//! is what `shed.rs` sheds stale media by.
//!
//! Safe code only: `nix`'s `sendmmsg`, `recvmmsg`, `poll` and `setsockopt` wrap the system calls.

use std::collections::VecDeque;
use std::io::{IoSlice, IoSliceMut};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, SystemTime};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{
    ControlMessage, ControlMessageOwned, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg,
    sendmmsg, setsockopt, sockopt,
};
use nix::sys::time::TimeSpec;
use tracing::debug;

/// Datagrams per `sendmmsg`. One forwarded packet to 200 subscribers is four calls; larger
/// batches save little more and keep more datagrams waiting behind the first.
pub const SEND_BATCH: usize = 64;

/// Datagrams per `recvmmsg`.
pub const RECV_BATCH: usize = 32;

/// Largest datagram read. WebRTC keeps datagrams under ~1200 bytes; anything bigger is junk.
pub const RECV_BUF: usize = 2048;

/// Datagrams held while the socket is not writable; more are dropped (and counted). A third of
/// a second of a 200-student lecture (47,000 datagrams/s), ~20 MB at most; the kernel's own send
/// buffer (4 MiB, see `worker::SOCKET_BUFFER_BYTES`, ~1,800 such datagrams) is full before.
pub const MAX_QUEUED: usize = 16_384;

/// Counters of a [`SendQueue`], monotonic.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SendStats {
    /// Datagrams the kernel took.
    pub sent: u64,
    /// Datagrams the kernel refused for their destination (e.g. no route); skipped.
    pub failed: u64,
    /// Datagrams dropped because the queue was full while the socket was not writable.
    pub dropped: u64,
    /// `sendmmsg` calls.
    pub calls: u64,
    /// Times the socket's send buffer was full (`EAGAIN`).
    pub blocked: u64,
}

/// Datagrams waiting to be sent, in order. See the module docs.
#[derive(Debug)]
pub struct SendQueue {
    queue: VecDeque<(SocketAddr, Vec<u8>)>,
    limit: usize,
    /// `sendmmsg`'s headers and addresses, allocated once.
    headers: MultiHeaders<SockaddrStorage>,
    addrs: Vec<Option<SockaddrStorage>>,
    /// Empty between calls; kept for its allocation (see [`recycle`]).
    slices: Vec<[IoSlice<'static>; 1]>,
    stats: SendStats,
}

impl Default for SendQueue {
    fn default() -> Self {
        SendQueue::new(MAX_QUEUED)
    }
}

impl SendQueue {
    /// A queue holding at most `limit` datagrams.
    pub fn new(limit: usize) -> Self {
        SendQueue {
            queue: VecDeque::with_capacity(SEND_BATCH * 4),
            limit,
            headers: MultiHeaders::preallocate(SEND_BATCH, None),
            addrs: Vec::with_capacity(SEND_BATCH),
            slices: Vec::with_capacity(SEND_BATCH),
            stats: SendStats::default(),
        }
    }

    /// Queue a datagram after the others. False (and counted in [`SendStats::dropped`]) when
    /// the queue is full.
    pub fn push(&mut self, destination: SocketAddr, contents: Vec<u8>) -> bool {
        if self.queue.len() >= self.limit {
            self.stats.dropped += 1;
            return false;
        }
        self.queue.push_back((destination, contents));
        true
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub fn stats(&self) -> SendStats {
        self.stats
    }

    /// Send whole batches while at least [`SEND_BATCH`] datagrams wait; the rest stays for
    /// [`SendQueue::flush`]. Lets the worker send as it goes without holding a whole pass's
    /// datagrams. False when the socket is full.
    pub fn send_full_batches(&mut self, socket: &UdpSocket) -> bool {
        while self.queue.len() >= SEND_BATCH {
            if !self.send_batch(socket) {
                return false;
            }
        }
        true
    }

    /// Send everything queued, in order. True when the queue is empty; false when the socket's
    /// buffer is full (the rest stays queued: [`wait`] for writability and flush again).
    pub fn flush(&mut self, socket: &UdpSocket) -> bool {
        while !self.queue.is_empty() {
            if !self.send_batch(socket) {
                return false;
            }
        }
        true
    }

    /// One `sendmmsg` of up to [`SEND_BATCH`] datagrams from the front. False when the socket
    /// is full.
    fn send_batch(&mut self, socket: &UdpSocket) -> bool {
        let n = self.queue.len().min(SEND_BATCH);
        self.addrs.clear();
        self.addrs.extend(
            self.queue
                .iter()
                .take(n)
                .map(|(to, _)| Some(SockaddrStorage::from(*to))),
        );
        let mut slices: Vec<[IoSlice<'_>; 1]> = recycle(std::mem::take(&mut self.slices));
        slices.extend(self.queue.iter().take(n).map(|(_, c)| [IoSlice::new(c)]));
        let no_control: [ControlMessage<'_>; 0] = [];
        let result = sendmmsg(
            socket.as_raw_fd(),
            &mut self.headers,
            &slices,
            &self.addrs,
            no_control,
            MsgFlags::MSG_DONTWAIT,
        )
        // The results say only how many went (their addresses are not read).
        .map(Iterator::count);
        self.slices = recycle(slices);
        self.stats.calls += 1;
        match result {
            Ok(0) => {
                // Not expected (the kernel reports the first datagram's error instead); treat
                // it as a full buffer rather than spin.
                self.stats.blocked += 1;
                false
            }
            Ok(sent) => {
                // A short count means datagram `sent` failed or the buffer filled: the next
                // call starts with it and reports which.
                self.stats.sent += sent as u64;
                self.queue.drain(..sent);
                true
            }
            Err(Errno::EAGAIN) => {
                self.stats.blocked += 1;
                false
            }
            Err(Errno::EINTR) => true,
            Err(e) => {
                // The first datagram's own error (no route, bad address, too big): skip it.
                self.stats.failed += 1;
                self.queue.pop_front();
                debug!(error = %e, "media datagram refused");
                true
            }
        }
    }
}

/// Datagrams read by one `recvmmsg`: `buffers` and where each came from.
#[derive(Debug)]
pub struct RecvBatch {
    buffers: Vec<[u8; RECV_BUF]>,
    headers: MultiHeaders<SockaddrStorage>,
    /// Length and source of each datagram of the last read.
    got: Vec<(usize, SocketAddr)>,
    /// When the kernel took each datagram of the last read in (see [`timestamp_arrivals`]),
    /// and when the read was made.
    arrived: Vec<Option<SystemTime>>,
    read_at: SystemTime,
    /// `recvmmsg` calls.
    pub calls: u64,
    /// Datagrams read.
    pub datagrams: u64,
    /// Datagrams the kernel dropped on this socket since it was made, because its receive
    /// buffer was full, as of the last datagram read that said (see [`count_overflow`]).
    pub overflowed: u32,
}

impl Default for RecvBatch {
    fn default() -> Self {
        RecvBatch {
            buffers: vec![[0; RECV_BUF]; RECV_BATCH],
            headers: Self::headers(),
            got: Vec::with_capacity(RECV_BATCH),
            arrived: Vec::with_capacity(RECV_BATCH),
            read_at: SystemTime::UNIX_EPOCH,
            calls: 0,
            datagrams: 0,
            overflowed: 0,
        }
    }
}

impl RecvBatch {
    /// With room for the drop count each datagram carries once the kernel dropped any, and
    /// for its arrival time.
    fn headers() -> MultiHeaders<SockaddrStorage> {
        MultiHeaders::preallocate(RECV_BATCH, Some(nix::cmsg_space!(u32, TimeSpec)))
    }

    /// Read what is waiting, up to [`RECV_BATCH`] datagrams, without blocking. Returns how
    /// many ([`RecvBatch::datagram`] reads them); 0 when none is waiting. Errors (e.g. an ICMP
    /// error surfacing on the socket) are logged and read as 0: they are not fatal for the
    /// other peers.
    pub fn recv(&mut self, socket: &UdpSocket) -> usize {
        self.got.clear();
        self.arrived.clear();
        // On the stack: `recvmmsg` borrows them for as long as their buffers.
        let mut buffers = self.buffers.iter_mut();
        let mut slices: [[IoSliceMut<'_>; 1]; RECV_BATCH] =
            std::array::from_fn(|_| [IoSliceMut::new(buffers.next().expect("RECV_BATCH"))]);
        self.calls += 1;
        let mut truncated = false;
        match recvmmsg(
            socket.as_raw_fd(),
            &mut self.headers,
            slices.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        ) {
            Ok(results) => {
                self.read_at = SystemTime::now();
                for m in results {
                    // Truncated: bigger than any WebRTC datagram, so junk. Keep the slot (the
                    // buffers line up with the results) but mark it empty.
                    let len = if m.flags.contains(MsgFlags::MSG_TRUNC) {
                        0
                    } else {
                        m.bytes
                    };
                    let from = m.address.as_ref().and_then(to_std);
                    self.got.push((len, from.unwrap_or(UNKNOWN)));
                    // The count is the socket's total so far: keep the highest seen.
                    let mut arrived = None;
                    for c in m.cmsgs().into_iter().flatten() {
                        match c {
                            ControlMessageOwned::RxqOvfl(n) => {
                                self.overflowed = self.overflowed.max(n);
                            }
                            ControlMessageOwned::ScmTimestampns(t) => {
                                arrived = SystemTime::UNIX_EPOCH.checked_add(Duration::from(t));
                            }
                            _ => {}
                        }
                    }
                    self.arrived.push(arrived);
                    // The kernel leaves each header's control length at what it used, and
                    // `recvmmsg` does not restore it: a slot that read a datagram before the
                    // first drop has no room for the count that every datagram after it
                    // carries. Fresh headers then (once: from then on each uses it all).
                    truncated |= m.flags.contains(MsgFlags::MSG_CTRUNC);
                }
            }
            Err(Errno::EAGAIN | Errno::EINTR) => {}
            Err(e) => debug!(error = %e, "media socket receive"),
        }
        if truncated {
            self.headers = Self::headers();
        }
        self.datagrams += self.got.len() as u64;
        self.got.len()
    }

    /// Datagram `i` of the last read: its source and contents. An empty datagram was junk (or
    /// had no address) and is to be skipped.
    pub fn datagram(&self, i: usize) -> (SocketAddr, &[u8]) {
        let (len, from) = self.got[i];
        if from == UNKNOWN {
            return (from, &[]);
        }
        (from, &self.buffers[i][..len])
    }

    /// How long datagram `i` of the last read waited in the socket before the read: `None`
    /// without [`timestamp_arrivals`]. Zero if the clock went back meanwhile.
    pub fn waited(&self, i: usize) -> Option<Duration> {
        let arrived = self.arrived.get(i).copied().flatten()?;
        Some(
            self.read_at
                .duration_since(arrived)
                .unwrap_or(Duration::ZERO),
        )
    }
}

/// Asks the kernel to stamp each datagram with its arrival time (`SO_TIMESTAMPNS`; see
/// [`RecvBatch::waited`]). The first socket of the system to ask turns stamping on arrival on
/// a moment later (a deferred work item); a datagram that arrived before is stamped when read
/// and reads as not having waited (never shed).
pub fn timestamp_arrivals(socket: &UdpSocket) -> nix::Result<()> {
    setsockopt(socket, sockopt::ReceiveTimestampns, &true)
}

/// Asks the kernel to attach to each datagram read how many it dropped on `socket` so far for a
/// full receive buffer (`SO_RXQ_OVFL`; see [`RecvBatch::overflowed`]).
pub fn count_overflow(socket: &UdpSocket) -> nix::Result<()> {
    setsockopt(socket, sockopt::RxqOvfl, &1)
}

/// Sends `socket`'s IPv4 datagrams with Don't Fragment and never fragments them itself,
/// whatever path MTU the kernel learned (`IP_PMTUDISC_PROBE`, as QUIC stacks do). WebRTC keeps
/// its datagrams under its own MTU (str0m's DTLS and SCTP ~1,150 bytes; RTP is forwarded at the
/// size it arrived in), so nothing needs the kernel to fragment it. What it saves: by default
/// (`IP_PMTUDISC_WANT`) the kernel may fragment a datagram of an unconnected UDP socket, so it
/// draws an IP ID for each from its shared hashed generator (`__ip_select_ident`, 3.3% of the
/// server's CPU when forwarding to 200 students, docs/BENCHMARKS.md); with this it writes 0
/// (RFC 6864). An IPv6 socket has no IP ID to draw and is left as it is.
pub fn dont_fragment(socket: &UdpSocket) -> std::io::Result<()> {
    if socket.local_addr()?.is_ipv4() {
        use rustix::net::sockopt::{Ipv4PathMtuDiscovery, set_ip_mtu_discover};
        set_ip_mtu_discover(socket, Ipv4PathMtuDiscovery::PROBE)?;
    }
    Ok(())
}

/// Stands for a source address that could not be read (never a peer's).
const UNKNOWN: SocketAddr = SocketAddr::V4(SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 0));

fn to_std(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::V4(SocketAddrV4::from(*v4)));
    }
    a.as_sockaddr_in6()
        .map(|v6| SocketAddr::V6(SocketAddrV6::from(*v6)))
}

/// What [`wait`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ready {
    pub readable: bool,
    pub writable: bool,
}

/// Wait until `socket` is readable (or also writable, with `write`) or `timeout` passes.
/// Rounded up to whole milliseconds (poll's unit), at most ~65 s.
pub fn wait(socket: &UdpSocket, timeout: Duration, write: bool) -> Ready {
    let mut events = PollFlags::POLLIN;
    if write {
        events |= PollFlags::POLLOUT;
    }
    let millis = timeout.as_micros().div_ceil(1000).min(u128::from(u16::MAX));
    let timeout = PollTimeout::from(u16::try_from(millis).unwrap_or(u16::MAX));
    let mut fds = [PollFd::new(socket.as_fd(), events)];
    match poll(&mut fds, timeout) {
        Ok(0) => Ready::default(),
        Ok(_) => {
            let got = fds[0].revents().unwrap_or(PollFlags::empty());
            // An error condition reads as readable: the next read reports (and clears) it.
            let error = got.intersects(PollFlags::POLLERR | PollFlags::POLLHUP);
            Ready {
                readable: got.contains(PollFlags::POLLIN) || error,
                writable: got.contains(PollFlags::POLLOUT),
            }
        }
        Err(Errno::EINTR) => Ready::default(),
        Err(e) => {
            debug!(error = %e, "media socket poll");
            Ready::default()
        }
    }
}

/// An empty vector's allocation, for borrows of another lifetime. Nothing is transmuted (the
/// vector is empty); std collects a `Vec`'s own iterator into its buffer in place, so the
/// batch's slice arrays are not allocated per call.
fn recycle<T, U>(mut v: Vec<T>) -> Vec<U> {
    v.clear();
    v.into_iter().map(|_| unreachable!("empty")).collect()
}

#[cfg(test)]
mod tests;

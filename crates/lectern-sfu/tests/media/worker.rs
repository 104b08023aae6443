//! The driver: a media worker thread with a real UDP socket on 127.0.0.1, str0m clients on
//! their own sockets, signalling through the worker's command and event channels.

use std::net::UdpSocket;
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use lectern_sfu::{
    CommandKind, MediaEvent, MediaWorker, PeerId, SfuError, WorkerConfig, WorkerEvent,
};
use str0m::media::MediaKind;

use crate::support::Client;

struct UdpClient {
    socket: UdpSocket,
    client: Client,
}

impl UdpClient {
    fn new(id: &str) -> UdpClient {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(2)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        UdpClient {
            socket,
            client: Client::at(Instant::now(), id, addr),
        }
    }

    fn id(&self) -> PeerId {
        self.client.id.clone()
    }

    /// Send what str0m wants sent, then wait briefly for one datagram.
    fn step(&mut self) {
        self.client.tick(Instant::now());
        while let Some((dest, bytes)) = self.client.poll_transmit() {
            self.socket.send_to(&bytes, dest).unwrap();
        }
        let mut buf = [0u8; 2048];
        while let Ok((n, source)) = self.socket.recv_from(&mut buf) {
            self.client.receive(Instant::now(), source, &buf[..n]);
            while let Some((dest, bytes)) = self.client.poll_transmit() {
                self.socket.send_to(&bytes, dest).unwrap();
            }
        }
    }
}

fn spawn_worker() -> (MediaWorker, Receiver<WorkerEvent>) {
    crate::support::init_log();
    let (tx, rx) = mpsc::channel();
    let config = WorkerConfig::new("127.0.0.1:0".parse().unwrap());
    let worker = MediaWorker::spawn(config, move |event| {
        let _ = tx.send(event);
    })
    .expect("worker starts");
    (worker, rx)
}

/// Wait for `cond`, driving the clients and answering the worker's signalling meanwhile.
fn drive_until(
    worker: &MediaWorker,
    events: &Receiver<WorkerEvent>,
    clients: &mut [&mut UdpClient],
    what: &str,
    mut cond: impl FnMut(&[&mut UdpClient]) -> bool,
) {
    // A generous deadline against hangs, not a performance assertion.
    let deadline = Instant::now() + Duration::from_secs(30);
    let handle = worker.handle();
    while !cond(clients) {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        while let Ok(event) = events.try_recv() {
            match event {
                WorkerEvent::Answer { peer, sdp } => {
                    let c = clients.iter_mut().find(|c| c.id() == peer).unwrap();
                    c.client.accept_answer(Instant::now(), &sdp);
                }
                WorkerEvent::Media(MediaEvent::Offer { peer, sdp, .. }) => {
                    let c = clients.iter_mut().find(|c| c.id() == peer).unwrap();
                    let answer = c.client.accept_offer(Instant::now(), &sdp);
                    handle.accept_answer(peer, answer).unwrap();
                }
                WorkerEvent::Failed { peer, error, .. } => {
                    panic!("command for {peer} failed: {error}")
                }
                WorkerEvent::Media(_) => {}
            }
        }
        for c in clients.iter_mut() {
            c.step();
        }
    }
}

#[test]
fn a_media_worker_forwards_between_real_udp_sockets() {
    let (worker, events) = spawn_worker();
    assert!(worker.local_addr().ip().is_loopback());
    let handle = worker.handle();
    let mut teacher = UdpClient::new("teacher");
    let mut student = UdpClient::new("student");

    handle.add_peer(student.id()).unwrap();
    handle.add_peer(teacher.id()).unwrap();
    handle
        .set_publish_permission(teacher.id(), true, true)
        .unwrap();
    let offer = teacher
        .client
        .make_offer(Instant::now(), &[MediaKind::Audio, MediaKind::Video]);
    handle.accept_offer(teacher.id(), offer).unwrap();
    teacher.client.sending = true;

    drive_until(
        &worker,
        &events,
        &mut [&mut teacher, &mut student],
        "the student receives a second of audio and video",
        |c| {
            c[1].client.frames(MediaKind::Video).len() >= 30
                && c[1].client.frames(MediaKind::Audio).len() >= 50
        },
    );
    assert!(student.client.received.iter().all(|r| r.data_ok));
    assert!(student.client.frames(MediaKind::Video)[0].keyframe);
    // The handle reports the worker's counters (published every 100 ms).
    let received = student.client.received.len() as u64;
    let deadline = Instant::now() + std::time::Duration::from_secs(5);
    while handle.stats().rtp_forwarded < received {
        assert!(
            Instant::now() < deadline,
            "stats never caught up: {:?}",
            handle.stats()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(handle.stats().peers, 2);
    worker.shutdown();
}

#[test]
fn a_refused_command_is_reported_as_an_event() {
    let (worker, events) = spawn_worker();
    let handle = worker.handle();
    let ghost = PeerId::new("r1", "ghost");
    handle
        .accept_offer(ghost.clone(), "v=0\r\n".into())
        .unwrap();
    handle.add_peer(ghost.clone()).unwrap();
    handle
        .accept_answer(ghost.clone(), "not sdp".into())
        .unwrap();
    handle.add_peer(ghost.clone()).unwrap();

    let mut codes = Vec::new();
    let mut commands = Vec::new();
    while codes.len() < 3 {
        match events
            .recv_timeout(Duration::from_secs(30))
            .expect("an event")
        {
            WorkerEvent::Failed {
                peer,
                command,
                error,
            } => {
                assert_eq!(peer, ghost);
                codes.push(error.code());
                commands.push(command);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        codes,
        ["invalid_sdp", "invalid_sdp", "duplicate_participant"]
    );
    // Each failure says which command failed: only the first answers an offer.
    assert_eq!(
        commands,
        [
            CommandKind::AcceptOffer,
            CommandKind::AcceptAnswer,
            CommandKind::AddPeer
        ]
    );
    assert!(matches!(
        SfuError::UnknownParticipant(ghost).code(),
        "unknown_participant"
    ));
    drop(worker);
}

#[test]
fn the_media_socket_gets_a_large_receive_buffer() {
    let (worker, _events) = spawn_worker();
    // Linux grants min(asked, net.core.rmem_max) and reports twice that; its default without
    // asking is net.core.rmem_default (~208 KiB).
    let rmem_max: usize = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let granted = lectern_sfu::SOCKET_BUFFER_BYTES.min(rmem_max);
    assert!(
        worker.recv_buffer_bytes() >= granted,
        "receive buffer {} < {granted} (rmem_max {rmem_max})",
        worker.recv_buffer_bytes()
    );
    worker.shutdown();
}

//! Media through the server: WebRTC signalling over the room's WebSocket, and real media over
//! UDP through the SFU, with peers built on str0m (an independent client-side use of the
//! library) on their own sockets on 127.0.0.1.

use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lectern_proto::Role;
use lectern_tests::{Client, TestServer, wait_until};
use serde_json::{Value, json};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

/// One simulated browser: a str0m peer on its own UDP socket, driven by a thread.
struct Peer {
    state: Arc<Mutex<PeerState>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct PeerState {
    rtc: Rtc,
    pending: Option<SdpPendingOffer>,
    connected: bool,
    /// Video frames received: (mid, payload).
    frames: Vec<(String, Vec<u8>)>,
    /// Send a video frame every ~33 ms on this mid, once connected.
    publish: Option<Mid>,
    sent: u32,
    /// Send Opus-shaped audio every 20 ms on this mid, with this level (dBov) in the audio
    /// level header extension.
    audio: Option<(Mid, i8)>,
    audio_sent: u32,
}

impl Peer {
    fn new() -> Peer {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("udp");
        let addr = socket.local_addr().expect("addr");
        let mut rtc = Rtc::builder().build(Instant::now());
        rtc.add_local_candidate(Candidate::host(addr, "udp").expect("candidate"));
        let state = Arc::new(Mutex::new(PeerState {
            rtc,
            pending: None,
            connected: false,
            frames: Vec::new(),
            publish: None,
            sent: 0,
            audio: None,
            audio_sent: 0,
        }));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::spawn(move || drive(&socket, addr, &state, &stop))
        };
        Peer {
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// An offer publishing video, or (with `publish == false`) only a data channel.
    fn offer(&self, publish: bool) -> String {
        let mut s = self.state.lock().expect("lock");
        let mut api = s.rtc.sdp_api();
        let mid =
            publish.then(|| api.add_media(MediaKind::Video, Direction::SendOnly, None, None, None));
        if !publish {
            api.add_channel("lectern".into());
        }
        let (offer, pending) = api.apply().expect("an offer");
        s.pending = Some(pending);
        s.publish = mid;
        offer.to_sdp_string()
    }

    /// An offer publishing a microphone that sends audio at `level` dBov (and no video).
    fn offer_audio(&self, level: i8) -> String {
        let mut s = self.state.lock().expect("lock");
        let mut api = s.rtc.sdp_api();
        let mid = api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
        let (offer, pending) = api.apply().expect("an offer");
        s.pending = Some(pending);
        s.audio = Some((mid, level));
        offer.to_sdp_string()
    }

    fn accept_answer(&self, sdp: &str) {
        let mut s = self.state.lock().expect("lock");
        let pending = s.pending.take().expect("pending offer");
        let answer = SdpAnswer::from_sdp_string(sdp).expect("answer parses");
        s.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .expect("answer accepted");
    }

    fn accept_offer(&self, sdp: &str) -> String {
        let mut s = self.state.lock().expect("lock");
        let offer = SdpOffer::from_sdp_string(sdp).expect("offer parses");
        let answer = s.rtc.sdp_api().accept_offer(offer).expect("offer accepted");
        answer.to_sdp_string()
    }

    /// Frames received on the m-line with this mid.
    fn frames_on(&self, mid: &str) -> usize {
        let s = self.state.lock().expect("lock");
        s.frames.iter().filter(|(m, _)| m == mid).count()
    }

    fn connected(&self) -> bool {
        self.state.lock().expect("lock").connected
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A VP8 keyframe-shaped payload (bit 0 of the first byte clear) carrying its frame number.
fn frame(n: u32) -> Vec<u8> {
    let mut data = vec![0x10];
    data.extend_from_slice(b"LECTERN");
    data.extend_from_slice(&n.to_be_bytes());
    data.resize(1200, 7);
    data
}

fn drive(
    socket: &UdpSocket,
    addr: SocketAddr,
    state: &Mutex<PeerState>,
    stop: &std::sync::atomic::AtomicBool,
) {
    let mut buf = vec![0u8; 2000];
    let mut next_frame = Instant::now();
    let mut next_audio = Instant::now();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let timeout = {
            let mut s = state.lock().expect("lock");
            let now = Instant::now();
            if s.connected
                && now >= next_audio
                && let Some((mid, level)) = s.audio
            {
                next_audio = now + Duration::from_millis(20);
                let n = s.audio_sent;
                s.audio_sent += 1;
                if let Some(writer) = s.rtc.writer(mid) {
                    let pt = writer
                        .payload_params()
                        .find(|p| p.spec().codec == Codec::Opus)
                        .map(|p| p.pt());
                    if let Some(pt) = pt {
                        let time = MediaTime::new(u64::from(n) * 960, Frequency::FORTY_EIGHT_KHZ);
                        let _ = writer.audio_level(level, level > -50).write(
                            pt,
                            now,
                            time,
                            vec![0xfc; 80],
                        );
                    }
                }
            }
            if s.connected
                && now >= next_frame
                && let Some(mid) = s.publish
            {
                next_frame = now + Duration::from_millis(33);
                let n = s.sent;
                s.sent += 1;
                if let Some(writer) = s.rtc.writer(mid) {
                    let pt = writer
                        .payload_params()
                        .find(|p| p.spec().codec == Codec::Vp8)
                        .map(|p| p.pt());
                    if let Some(pt) = pt {
                        let time = MediaTime::new(u64::from(n) * 3000, Frequency::NINETY_KHZ);
                        let _ = writer.write(pt, now, time, frame(n));
                    }
                }
            }
            loop {
                match s.rtc.poll_output() {
                    Ok(Output::Timeout(t)) => break t,
                    Ok(Output::Transmit(t)) => {
                        let _ = socket.send_to(&t.contents, t.destination);
                    }
                    Ok(Output::Event(Event::Connected)) => s.connected = true,
                    Ok(Output::Event(Event::MediaData(d))) => {
                        s.frames.push((d.mid.to_string(), d.data.to_vec()));
                    }
                    Ok(Output::Event(_)) => {}
                    Err(_) => return,
                }
            }
        };
        let wait = timeout
            .saturating_duration_since(Instant::now())
            .clamp(Duration::from_millis(1), Duration::from_millis(10));
        socket.set_read_timeout(Some(wait)).expect("timeout");
        let now = Instant::now();
        let mut s = state.lock().expect("lock");
        match socket.recv_from(&mut buf) {
            Ok((n, source)) => {
                if let Ok(receive) = Receive::new(Protocol::Udp, source, addr, &buf[..n]) {
                    let _ = s.rtc.handle_input(Input::Receive(now, receive));
                }
            }
            Err(_) => {
                let _ = s.rtc.handle_input(Input::Timeout(now));
            }
        }
    }
}

/// Send a `media_offer` and return the SFU's answer (the ack follows it).
async fn negotiate(client: &mut Client, sdp: String) -> anyhow::Result<String> {
    let reply = client
        .request(json!({"type": "media_offer", "sdp": sdp}))
        .await?;
    anyhow::ensure!(reply["type"] == "ack", "media_offer refused: {reply}");
    let answer = client.wait_for(|m| m["type"] == "sfu_answer").await?;
    Ok(answer["sdp"].as_str().unwrap_or_default().to_owned())
}

/// Answer the SFU's offers to `client`, in order, until one carries a track of `publisher`;
/// returns that track.
async fn track_of(client: &mut Client, peer: &Peer, publisher: &str) -> anyhow::Result<Value> {
    let deadline = Instant::now() + lectern_tests::DEADLINE;
    loop {
        anyhow::ensure!(
            Instant::now() < deadline,
            "no track of {publisher} was offered"
        );
        let offer = client.wait_for(|m| m["type"] == "sfu_offer").await?;
        let answer = peer.accept_offer(offer["sdp"].as_str().unwrap_or_default());
        client
            .ok(json!({"type": "media_answer", "sdp": answer}))
            .await?;
        let tracks = offer["tracks"].as_array().cloned().unwrap_or_default();
        if let Some(track) = tracks
            .into_iter()
            .find(|t| t["participant_id"] == publisher)
        {
            return Ok(track);
        }
    }
}

#[tokio::test]
async fn the_instructors_video_reaches_students_and_the_stage_rules_apply() -> anyhow::Result<()> {
    let s = TestServer::start_with(&[("LECTERN_ROOM_AUTO_START", "true")]).await;
    assert!(s.server.media_addr().is_some(), "media is on by default");
    let mut grace = s.join("physics", "grace", Role::Instructor).await;
    let mut ada = s.join("physics", "ada", Role::Student).await;

    // The instructor publishes video; the student connects to receive.
    let teacher = Peer::new();
    let answer = negotiate(&mut grace, teacher.offer(true)).await?;
    teacher.accept_answer(&answer);
    let student = Peer::new();
    let answer = negotiate(&mut ada, student.offer(false)).await?;
    student.accept_answer(&answer);
    wait_until("both peers to connect", || async {
        teacher.connected() && student.connected()
    })
    .await?;

    // The SFU offers the instructor's track to the student, naming its publisher, and the
    // frames arrive intact.
    let grace_track = track_of(&mut ada, &student, "grace").await?;
    assert_eq!(grace_track["kind"], "video");
    let grace_mid = grace_track["mid"].as_str().unwrap_or_default().to_owned();
    wait_until("the student to receive the instructor's frames", || async {
        student.frames_on(&grace_mid) >= 10
    })
    .await?;
    let got = student.state.lock().expect("lock").frames[0].1.clone();
    assert_eq!(&got[1..8], b"LECTERN", "the payload arrives intact");

    // A student without the stage publishes nothing that reaches anyone: no offer names him.
    let mut bob = s.join("physics", "bob", Role::Student).await;
    let bob_peer = Peer::new();
    let answer = negotiate(&mut bob, bob_peer.offer(true)).await?;
    bob_peer.accept_answer(&answer);
    wait_until("bob to connect", || async { bob_peer.connected() }).await?;
    let offered_bob = |c: &Client| {
        c.received.iter().any(|m| {
            m["type"] == "sfu_offer"
                && m["tracks"]
                    .as_array()
                    .is_some_and(|ts| ts.iter().any(|t| t["participant_id"] == "bob"))
        })
    };
    assert!(
        !offered_bob(&ada),
        "a student without the stage had a track offered"
    );

    // The instructor hands the stage to Bob: his video is offered to Ada and reaches her.
    grace
        .ok(json!({"type": "stage_grant", "participant_id": "bob"}))
        .await?;
    let bob_track = track_of(&mut ada, &student, "bob").await?;
    let bob_mid = bob_track["mid"].as_str().unwrap_or_default().to_owned();
    wait_until("ada to receive bob's frames", || async {
        student.frames_on(&bob_mid) >= 10
    })
    .await?;

    // Taking the stage back stops Bob's video at once (he keeps sending), while the
    // instructor's goes on.
    grace.ok(json!({"type": "stage_revoke"})).await?;
    let bob_then = student.frames_on(&bob_mid);
    let grace_then = student.frames_on(&grace_mid);
    wait_until("more of the instructor's frames", || async {
        student.frames_on(&grace_mid) >= grace_then + 20
    })
    .await?;
    let bob_after = student.frames_on(&bob_mid) - bob_then;
    assert!(
        bob_after <= 3,
        "{bob_after} of bob's frames arrived after the stage was revoked"
    );

    // In the lobby there is no media at all.
    let lobby = TestServer::start().await;
    let mut early = lobby.join("r", "early", Role::Student).await;
    let refused = early
        .request(json!({"type": "media_offer", "sdp": "v=0"}))
        .await?;
    assert_eq!(refused["code"], "in_lobby");
    // Garbage SDP is a typed error, and the connection goes on.
    let refused = grace
        .request(json!({"type": "media_offer", "sdp": "not sdp"}))
        .await?;
    assert_eq!(refused["code"], "invalid_message", "{refused}");
    // An answer nobody asked for: handed to the SFU (ack), which then refuses it.
    bob.ok(json!({"type": "media_answer", "sdp": "v=0"}))
        .await?;
    let refused = bob.wait_for(|m| m["type"] == "error").await?;
    assert_eq!(refused["code"], "invalid_message", "{refused}");
    // A view size for a mid the SFU never offered, or an absurd one: typed errors too.
    let refused = ada
        .request(json!({"type": "media_view", "mid": "1", "width": 1_000_000, "height": 10}))
        .await?;
    assert_eq!(refused["code"], "invalid_message", "{refused}");
    ada.ok(json!({"type": "media_view", "mid": "no-such-mid", "width": 320, "height": 180}))
        .await?;
    let refused = ada.wait_for(|m| m["type"] == "error").await?;
    assert_eq!(refused["code"], "invalid_message", "{refused}");
    grace
        .ok(json!({"type": "chat_send", "text": "still fine"}))
        .await?;
    Ok(())
}

#[tokio::test]
async fn turn_credentials_follow_the_welcome() -> anyhow::Result<()> {
    let s = TestServer::start_with(&[
        (
            "LECTERN_TURN_URLS",
            r#"["turn:127.0.0.1:3478?transport=udp"]"#,
        ),
        ("LECTERN_TURN_SECRET", "coturn-shared-secret-0123456789"),
        ("LECTERN_TURN_TTL_SECS", "600"),
    ])
    .await;
    let mut ada = s.join("r", "ada", Role::Student).await;
    let config = ada.wait_for(|m| m["type"] == "media_config").await?;
    let server = &config["ice_servers"][0];
    assert_eq!(server["urls"][0], "turn:127.0.0.1:3478?transport=udp");
    let username = server["username"].as_str().unwrap_or_default();
    let (expiry, who) = username.split_once(':').expect("expiry:participant");
    assert_eq!(who, "ada");
    let expiry: u64 = expiry.parse()?;
    let now = lectern_server::auth::unix_now();
    assert!(
        expiry > now + 500 && expiry <= now + 600,
        "expiry {expiry} vs now {now}"
    );
    assert!(!server["credential"].as_str().unwrap_or_default().is_empty());

    // Without TURN the list is empty, but the message still comes.
    let plain = TestServer::start().await;
    let mut bob = plain.join("r", "bob", Role::Student).await;
    let config = bob.wait_for(|m| m["type"] == "media_config").await?;
    assert_eq!(config["ice_servers"], json!([]));
    Ok(())
}

#[tokio::test]
async fn peers_are_placed_on_the_least_loaded_media_worker() -> anyhow::Result<()> {
    let s = TestServer::start_with(&[
        ("LECTERN_ROOM_AUTO_START", "true"),
        ("LECTERN_MEDIA_WORKERS", "2"),
    ])
    .await;
    let addrs = s.server.media_addrs();
    assert_eq!(addrs.len(), 2, "two workers, two ports");
    assert_ne!(addrs[0].port(), addrs[1].port());
    assert_eq!(s.server.media_loads(), [0, 0]);
    assert_eq!(s.metric("lectern_media_workers").await, 2);

    // Two classes start media: each peer goes to the least loaded worker, so one each.
    let mut rooms = Vec::new();
    for room in ["physics", "history"] {
        let mut teacher = s.join(room, "grace", Role::Instructor).await;
        let peer = Peer::new();
        let answer = negotiate(&mut teacher, peer.offer(true)).await?;
        peer.accept_answer(&answer);
        rooms.push((room, teacher, peer));
    }
    assert_eq!(s.server.media_loads(), [1, 1]);

    // A student of each class: the first lands on its class's worker (equal loads: the
    // room's own worker is preferred), the second on the less loaded one, its class's too.
    let mut students = Vec::new();
    for (room, _, _) in &rooms {
        let mut ada = s.join(room, "ada", Role::Student).await;
        let peer = Peer::new();
        let answer = negotiate(&mut ada, peer.offer(false)).await?;
        peer.accept_answer(&answer);
        let track = track_of(&mut ada, &peer, "grace").await?;
        let mid = track["mid"].as_str().unwrap_or_default().to_owned();
        students.push((ada, peer, mid));
    }
    assert_eq!(s.server.media_loads(), [2, 2]);
    for (_, peer, mid) in &students {
        wait_until(
            "each student to receive its instructor's frames",
            || async { peer.frames_on(mid) >= 10 },
        )
        .await?;
    }
    wait_until("the workers' counters to reach /metrics", || async {
        s.metric("lectern_media_rtp_forwarded_total").await >= 20
            && s.metric("lectern_media_peers").await == 4
    })
    .await?;

    // When a class's media ends, its worker is free again.
    drop(students);
    drop(rooms);
    wait_until("the placements to be released", || async {
        s.server.media_loads() == [0, 0]
    })
    .await?;
    Ok(())
}

/// Issue 15, point 1: a lecture over every core. Its peers are spread over both workers, the
/// instructor's packets are taken in on one and handed once to the other, and every student
/// receives the video wherever they landed.
#[tokio::test]
async fn a_lecture_spreads_over_both_media_workers_and_every_student_receives_it()
-> anyhow::Result<()> {
    let s = TestServer::start_with(&[
        ("LECTERN_ROOM_AUTO_START", "true"),
        ("LECTERN_MEDIA_WORKERS", "2"),
    ])
    .await;
    let mut grace = s.join("lecture", "grace", Role::Instructor).await;
    let teacher = Peer::new();
    let answer = negotiate(&mut grace, teacher.offer(true)).await?;
    teacher.accept_answer(&answer);

    let mut students = Vec::new();
    for i in 0..4 {
        let mut client = s
            .join("lecture", &format!("student{i}"), Role::Student)
            .await;
        let peer = Peer::new();
        let answer = negotiate(&mut client, peer.offer(false)).await?;
        peer.accept_answer(&answer);
        let track = track_of(&mut client, &peer, "grace").await?;
        let mid = track["mid"].as_str().unwrap_or_default().to_owned();
        students.push((client, peer, mid));
    }
    // Each peer on the less loaded worker: grace and two students on one, three on the other.
    assert_eq!(s.server.media_loads(), [3, 2]);
    for (i, (_, peer, mid)) in students.iter().enumerate() {
        wait_until(
            &format!("student{i} to receive the instructor's frames"),
            || async { peer.frames_on(mid) >= 10 },
        )
        .await?;
    }
    // Crossed once per packet (to the one other worker), not once per student over there.
    wait_until("relayed packets to reach /metrics", || async {
        s.metric("lectern_media_rtp_relayed_total").await >= 10
    })
    .await?;
    let relayed = s.metric("lectern_media_rtp_relayed_total").await;
    let received = s.metric("lectern_media_rtp_received_total").await;
    assert!(
        relayed <= received,
        "{relayed} relayed of {received} received"
    );
    Ok(())
}

/// A live class "physics": grace, the instructor, sends audio at -20 dBov through `teacher`;
/// ada, a student, has joined without media.
struct SpeakingClass {
    s: TestServer,
    grace: Client,
    ada: Client,
    teacher: Peer,
}

impl SpeakingClass {
    async fn start() -> anyhow::Result<SpeakingClass> {
        let s = TestServer::start_with(&[("LECTERN_ROOM_AUTO_START", "true")]).await;
        let mut grace = s.join("physics", "grace", Role::Instructor).await;
        let ada = s.join("physics", "ada", Role::Student).await;
        let teacher = Peer::new();
        let answer = negotiate(&mut grace, teacher.offer_audio(-20)).await?;
        teacher.accept_answer(&answer);
        Ok(SpeakingClass {
            s,
            grace,
            ada,
            teacher,
        })
    }
}

#[tokio::test]
async fn the_active_speaker_is_announced_to_the_class() -> anyhow::Result<()> {
    let SpeakingClass {
        s,
        mut grace,
        mut ada,
        teacher,
    } = SpeakingClass::start().await?;
    let student = Peer::new();
    let answer = negotiate(&mut ada, student.offer(false)).await?;
    student.accept_answer(&answer);

    // Speaking (audio level -20 dBov) makes the instructor the class's active speaker.
    let speaker = ada.wait_for(|m| m["type"] == "active_speaker").await?;
    assert_eq!(speaker["participant_id"], "grace", "{speaker}");
    let speaker = grace.wait_for(|m| m["type"] == "active_speaker").await?;
    assert_eq!(speaker["participant_id"], "grace", "{speaker}");
    wait_until("the change to be counted in /metrics", || async {
        s.metric("lectern_media_speaker_changes_total").await >= 1
    })
    .await?;

    // Someone entering later learns the current speaker right after the welcome.
    let mut bob = s.join("physics", "bob", Role::Student).await;
    let speaker = bob.wait_for(|m| m["type"] == "active_speaker").await?;
    assert_eq!(speaker["participant_id"], "grace", "{speaker}");

    // The instructor's peer goes (a new connection replaces the old one): the speaker is
    // cleared for everyone.
    drop(teacher);
    let _grace_again = s.join("physics", "grace", Role::Instructor).await;
    let cleared = ada
        .wait_for(|m| m["type"] == "active_speaker" && m["participant_id"].is_null())
        .await?;
    assert!(cleared["participant_id"].is_null());
    Ok(())
}

/// The quality `network_quality` message `m` gives `id`, if it names them.
fn quality_of(m: &Value, id: &str) -> Option<String> {
    if m["type"] != "network_quality" {
        return None;
    }
    m["participants"]
        .as_array()?
        .iter()
        .find(|p| p["participant_id"] == id)
        .and_then(|p| p["quality"].as_str())
        .map(str::to_owned)
}

#[tokio::test]
async fn network_quality_is_told_to_the_room_and_to_whoever_joins() -> anyhow::Result<()> {
    let SpeakingClass {
        s,
        mut grace,
        mut ada,
        teacher,
    } = SpeakingClass::start().await?;
    let student = Peer::new();
    let answer = negotiate(&mut ada, student.offer(false)).await?;
    student.accept_answer(&answer);

    // A clean loopback link: the instructor's connection is good, for everyone (ada has no
    // media session of her own to measure yet, or a good one).
    for c in [&mut ada, &mut grace] {
        let m = c.wait_for(|m| quality_of(m, "grace").is_some()).await?;
        assert_eq!(quality_of(&m, "grace").as_deref(), Some("good"), "{m}");
    }

    // Someone entering later learns it right after the welcome, before anything else.
    let mut bob = s.join("physics", "bob", Role::Student).await;
    let m = bob.wait_for(|m| m["type"] != "media_config").await?;
    assert_eq!(quality_of(&m, "grace").as_deref(), Some("good"), "{m}");

    // The instructor's peer goes (a new connection replaces the old one): unknown again.
    drop(teacher);
    let _grace_again = s.join("physics", "grace", Role::Instructor).await;
    let m = bob
        .wait_for(|m| quality_of(m, "grace").is_some_and(|q| q == "unknown"))
        .await?;
    assert_eq!(m["participants"].as_array().map(Vec::len), Some(1), "{m}");
    drop(student);
    Ok(())
}

#[tokio::test]
async fn an_offer_renumbering_extensions_is_refused_and_the_media_session_goes_on()
-> anyhow::Result<()> {
    // `_server`, not `_`: the server must live to the end of the test.
    let SpeakingClass {
        s: _server,
        mut grace,
        mut ada,
        teacher,
    } = SpeakingClass::start().await?;

    // The camera comes on with an offer that moves the audio level extension to another id
    // (a client that numbers each offer anew): refused with a typed error for that request.
    let level = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
    let renumbered: String = teacher
        .offer(true)
        .lines()
        .map(|l| match l.strip_prefix("a=extmap:") {
            Some(rest) if rest.ends_with(level) => format!("a=extmap:9 {level}\r\n"),
            _ => format!("{l}\r\n"),
        })
        .collect();
    assert!(renumbered.contains(&format!("a=extmap:9 {level}")));
    let refused = grace
        .request(json!({"type": "media_offer", "sdp": renumbered}))
        .await?;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["code"], "renegotiation_unsupported", "{refused}");
    let message = refused["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(level) && message.contains("media_start"),
        "{message}"
    );

    // The connection goes on: the instructor, speaking, is the class's active speaker, and the
    // same offer with the numbers of the first negotiation is answered.
    let speaker = ada.wait_for(|m| m["type"] == "active_speaker").await?;
    assert_eq!(speaker["participant_id"], "grace", "{speaker}");
    let answer = negotiate(&mut grace, teacher.offer(true)).await?;
    assert!(answer.contains(&format!("a=extmap:1 {level}")), "{answer}");
    teacher.accept_answer(&answer);
    Ok(())
}

#[tokio::test]
async fn media_start_lets_the_sfu_make_the_only_offer() -> anyhow::Result<()> {
    let s = TestServer::start_with(&[("LECTERN_ROOM_AUTO_START", "true")]).await;
    let mut grace = s.join("physics", "grace", Role::Instructor).await;
    let teacher = Peer::new();
    let answer = negotiate(&mut grace, teacher.offer(true)).await?;
    teacher.accept_answer(&answer);

    // The student sends no offer of its own: `media_start`, then it answers the SFU's offer,
    // which already carries the instructor's video.
    let mut ada = s.join("physics", "ada", Role::Student).await;
    let student = Peer::new();
    ada.ok(json!({"type": "media_start"})).await?;
    let offer = ada.wait_for(|m| m["type"] == "sfu_offer").await?;
    answer_and_receive_the_instructor(&mut ada, &student, &offer).await?;
    assert!(
        !ada.received.iter().any(|m| m["type"] == "sfu_answer"),
        "one negotiation only"
    );

    // In the lobby: refused like any media.
    let lobby = TestServer::start().await;
    let mut early = lobby.join("r", "early", Role::Student).await;
    let refused = early.request(json!({"type": "media_start"})).await?;
    assert_eq!(refused["code"], "in_lobby");
    Ok(())
}

/// Connect and say a hello with `media_start: true`; returns the client once welcomed.
/// Answer `offer` (which must carry the instructor `grace`'s video) from `student` and wait
/// until its frames arrive.
async fn answer_and_receive_the_instructor(
    client: &mut Client,
    student: &Peer,
    offer: &Value,
) -> anyhow::Result<()> {
    let tracks = offer["tracks"].as_array().cloned().unwrap_or_default();
    let mid = tracks
        .iter()
        .find(|t| t["participant_id"] == "grace")
        .and_then(|t| t["mid"].as_str())
        .ok_or_else(|| anyhow::anyhow!("the offer lacks the instructor: {offer}"))?
        .to_owned();
    let answer = student.accept_offer(offer["sdp"].as_str().unwrap_or_default());
    client
        .ok(json!({"type": "media_answer", "sdp": answer}))
        .await?;
    wait_until("the student to receive the instructor's frames", || async {
        student.frames_on(&mid) >= 10
    })
    .await
}

async fn join_asking_media_start(s: &TestServer, room: &str, sub: &str) -> anyhow::Result<Client> {
    let token = s.token(room, sub, sub, Role::Student);
    let mut client = Client::connect(s.addr, None).await?;
    client
        .send(&json!({"type": "hello", "protocol_version": 1, "token": token, "media_start": true}))
        .await?;
    let welcome = client
        .wait_for(|m| m["type"] == "welcome" || m["type"] == "error")
        .await?;
    anyhow::ensure!(welcome["type"] == "welcome", "refused: {welcome}");
    client.welcome = welcome;
    Ok(client)
}

#[tokio::test]
async fn media_start_in_the_hello_brings_the_sfu_offer_after_the_welcome_unasked()
-> anyhow::Result<()> {
    let s = TestServer::start_with(&[("LECTERN_ROOM_AUTO_START", "true")]).await;
    let mut grace = s.join("physics", "grace", Role::Instructor).await;
    let teacher = Peer::new();
    let answer = negotiate(&mut grace, teacher.offer(true)).await?;
    teacher.accept_answer(&answer);

    // The student sends nothing after its hello: the SFU's offer follows the welcome and the
    // ICE servers, with the instructor's video, and is answered as usual.
    let mut ada = join_asking_media_start(&s, "physics", "ada").await?;
    let offer = ada.wait_for(|m| m["type"] == "sfu_offer").await?;
    let order: Vec<&str> = ada
        .received
        .iter()
        .filter_map(|m| m["type"].as_str())
        .filter(|t| ["welcome", "media_config", "sfu_offer"].contains(t))
        .collect();
    assert_eq!(order, ["welcome", "media_config", "sfu_offer"]);
    assert!(
        !ada.received.iter().any(|m| m["type"] == "ack"),
        "no request, no ack"
    );
    let student = Peer::new();
    answer_and_receive_the_instructor(&mut ada, &student, &offer).await?;

    // Welcomed into the lobby: nothing starts (no `in_lobby` error either); let in, the client
    // asks with `media_start` as without the field.
    let lobby = TestServer::start().await;
    let mut early = join_asking_media_start(&lobby, "r", "early").await?;
    // A request the lobby allows: answered after anything the welcome set off in the room.
    early
        .ok(json!({"type": "set_media", "media": {"mic": false, "camera": false, "screen": false}}))
        .await?;
    assert!(
        !early
            .received
            .iter()
            .any(|m| m["type"] == "sfu_offer" || m["code"] == "in_lobby"),
        "{:?}",
        early.received
    );
    let mut instructor = lobby.join("r", "instructor", Role::Instructor).await;
    instructor.ok(json!({"type": "class_start"})).await?;
    early.wait_event("class_started").await?;
    early.ok(json!({"type": "media_start"})).await?;
    Ok(())
}

#[tokio::test]
async fn a_failed_media_command_is_not_taken_for_the_failure_of_the_pending_offer()
-> anyhow::Result<()> {
    // A page reports the size of a video just as the SFU stops it, and at once offers its
    // camera: the SFU refuses the view (`unknown_mid`), answers the offer. Only the view's
    // refusal is an error; the offer gets its answer and its ack. (Repeated: the refusal must
    // reach the room after the offer, which it mostly but not always does.)
    let s = TestServer::start_with(&[
        ("LECTERN_ROOM_AUTO_START", "true"),
        ("LECTERN_LIMITS_ABUSE_STRIKES", "1000"),
    ])
    .await;
    let mut grace = s.join("physics", "grace", Role::Instructor).await;
    let teacher = Peer::new();
    let answer = negotiate(&mut grace, teacher.offer(false)).await?;
    teacher.accept_answer(&answer);
    for round in 0..8u64 {
        let offer_id = 1000 + round;
        for _ in 0..4 {
            grace
                .send(&json!({"type": "media_view", "mid": "no-such-mid", "width": 320, "height": 180}))
                .await?;
        }
        let offer = teacher.offer(true);
        grace
            .send(&json!({"type": "media_offer", "sdp": offer, "request_id": offer_id}))
            .await?;
        let reply = grace
            .wait_for(|m| m["request_id"] == json!(offer_id))
            .await?;
        assert_eq!(
            reply["type"], "ack",
            "round {round}: the offer was refused: {reply}"
        );
        let answer = grace.wait_for(|m| m["type"] == "sfu_answer").await?;
        teacher.accept_answer(answer["sdp"].as_str().unwrap_or_default());
        for _ in 0..4 {
            let refused = grace.wait_for(|m| m["type"] == "error").await?;
            assert_eq!(refused["code"], "invalid_message", "{refused}");
            assert!(refused["request_id"].is_null(), "{refused}");
        }
    }
    Ok(())
}

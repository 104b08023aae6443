//! `lectern-bench soak`: hold one class for a long time and watch what drifts.
//!
//! The class: one instructor publishing VP8 + Opus (a `lectern-bots` bot), a chat connection
//! of the instructor's (a second instructor identity: the same `sub` would replace the bot's
//! connection), and `--students` students in the same room. `--media-students` of them are
//! webrtc-rs bots receiving the lecture; the others are chat-only WebSocket clients
//! ([`crate::client`]). Of those, `--chatters` send chat; the rest are listeners that never
//! send a frame (they answer pings, as a browser does), like most students of a real class.
//! The media bots too are silent on their WebSocket once signalling is done. So a server that
//! closes a connection for sending nothing shows up here as disconnects of listeners, media
//! students and the publisher, while chatters stay.
//!
//! Chat: `--chat-rate` messages per second in total, each from the instructor or a random
//! chatter; every chat-only client timestamps every delivery ([`client::Shared::with_live_latency`]).
//! A connection the server ends is counted (who, and why: the `closing` reason, the close code,
//! or the socket error) and, unless `--no-reconnect`, joins again after a second or two.
//!
//! Every `--interval-secs` one row: elapsed time, students connected, disconnects and
//! reconnects so far (and the new ones by who and why), server RSS and CPU (`/proc`), this
//! tool's CPU, the server's own WebSocket count (`/metrics`), chat sent and delivered with the
//! delivery latency p50/p99 over the interval, and per media student the packets received (and
//! how many the publisher sent), the loss (sequence gaps not repaired by NACK, over received +
//! gaps) and the students that received nothing. A summary and one JSON line end the run,
//! which stops by itself after `--minutes` (Ctrl-C ends it early, with the summary).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use lectern_bots::{Bot, Histogram, PublishOptions};
use lectern_proto::Role;
use serde::Serialize;
use tokio::sync::{Semaphore, mpsc, watch};

use crate::client::{self, ClientSpec, Shared};
use crate::media::{self, bot_options};
use crate::procfs::{self, CpuTimes, Proc};
use crate::report::Latency;
use crate::server::{Server, ServerArgs};
use crate::token::{self, TokenMinter};

/// Longest run the tool accepts (join tokens are minted per connection, valid two hours).
const MAX_MINUTES: f64 = 240.0;
const MAX_STUDENTS: usize = 5_000;
/// How often a media connection checks whether its socket or peer connection ended.
const WATCH_EVERY: Duration = Duration::from_secs(1);
/// A connection the server ended joins again after this, plus up to as much again at random
/// (so a mass disconnect does not come back as one burst).
const RECONNECT_DELAY: Duration = Duration::from_secs(1);
/// How long closing a bot may take at a disconnect or at the end.
const BOT_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long all connections may take to stop at the end.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, clap::Args)]
pub struct SoakArgs {
    /// Students in the class: chat-only WebSocket clients plus --media-students bots.
    #[arg(long, default_value_t = 300)]
    students: usize,
    /// How many of the students receive the lecture's media (webrtc-rs bots).
    #[arg(long, default_value_t = 100)]
    media_students: usize,
    /// How many chat-only students send chat [default: a tenth of them, at least one]. The
    /// other chat-only students never send a frame.
    #[arg(long)]
    chatters: Option<usize>,
    /// Chat messages per second in total, each from the instructor or a random chatter
    /// (0: no chat).
    #[arg(long, default_value_t = 1.0)]
    chat_rate: f64,
    /// How long to hold the class, in minutes.
    #[arg(long, default_value_t = 30.0)]
    minutes: f64,
    /// Seconds between two rows.
    #[arg(long, default_value_t = 60)]
    interval_secs: u64,
    /// Video bit rate of the instructor's bot in bits per second.
    #[arg(long, default_value_t = 1_500_000)]
    bitrate: u32,
    /// Video frames per second.
    #[arg(long, default_value_t = 30)]
    fps: u32,
    /// Chat-only clients joining (WebSocket handshake + hello) at the same time.
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,
    /// Media students joining (signalling + ICE + DTLS) at the same time.
    #[arg(long, default_value_t = 16)]
    media_connect_concurrency: usize,
    /// Leave a connection the server ended closed instead of joining again.
    #[arg(long)]
    no_reconnect: bool,
    #[command(flatten)]
    server: ServerArgs,
    /// Room id [default: a random `soak-…` name].
    #[arg(long)]
    room: Option<String>,
}

impl SoakArgs {
    fn validate(&self) -> anyhow::Result<()> {
        if !(1..=MAX_STUDENTS).contains(&self.students) {
            bail!("--students must be between 1 and {MAX_STUDENTS}");
        }
        if self.media_students > self.students {
            bail!("--media-students must be at most --students");
        }
        if self.chatters.is_some_and(|c| c > self.chat_only()) {
            bail!(
                "--chatters must be at most the chat-only students (--students − --media-students)"
            );
        }
        if !(self.chat_rate >= 0.0 && self.chat_rate <= 1_000.0) {
            bail!("--chat-rate must be between 0 and 1,000 messages per second");
        }
        if !(self.minutes > 0.0 && self.minutes <= MAX_MINUTES) {
            bail!("--minutes must be in (0, {MAX_MINUTES}]");
        }
        if !(1..=3600).contains(&self.interval_secs) {
            bail!("--interval-secs must be between 1 and 3,600");
        }
        if self.connect_concurrency == 0 || self.media_connect_concurrency == 0 {
            bail!("--connect-concurrency and --media-connect-concurrency must be at least 1");
        }
        if self.fps == 0 || self.bitrate == 0 {
            bail!("--fps and --bitrate must be positive");
        }
        Ok(())
    }

    fn chat_only(&self) -> usize {
        self.students - self.media_students
    }

    fn chatter_count(&self) -> usize {
        let chat_only = self.chat_only();
        self.chatters
            .unwrap_or_else(|| (chat_only / 10).max(1).min(chat_only))
    }

    /// Chat senders: the chatters and the instructor.
    fn sender_count(&self) -> usize {
        self.chatter_count() + 1
    }
}

/// Who a connection is, to count connections and disconnects by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
enum Who {
    /// A chat-only student who never sends a frame.
    Listener,
    /// A chat-only student who sends chat.
    Chatter,
    /// A student receiving media (a bot, silent on its WebSocket after signalling).
    MediaStudent,
    /// The instructor's publishing bot.
    Publisher,
    /// The instructor's chat connection.
    InstructorChat,
}

impl Who {
    const COUNT: usize = 5;

    fn name(self) -> &'static str {
        match self {
            Who::Listener => "listener",
            Who::Chatter => "chatter",
            Who::MediaStudent => "media student",
            Who::Publisher => "publisher",
            Who::InstructorChat => "instructor chat",
        }
    }
}

/// A connection the server ended.
#[derive(Debug, Clone, Serialize)]
struct Disconnect {
    /// Seconds since the class was held (negative: while students were still joining).
    at_s: f64,
    who: Who,
    why: String,
}

/// What every connection task updates and the sampler reads.
#[derive(Debug, Default)]
struct Tally {
    connected: [AtomicUsize; Who::COUNT],
    reconnects: AtomicU64,
    join_failures: AtomicU64,
    first_join_failure: Mutex<Option<String>>,
    disconnects: Mutex<Vec<Disconnect>>,
    chat_sent: AtomicU64,
    /// Chat sends skipped: the picked sender was disconnected or behind on writing.
    chat_skipped: AtomicU64,
    /// `error` replies to chat (e.g. rate limited), counted when a connection ends.
    chat_errors: AtomicU64,
    first_chat_error: Mutex<Option<String>>,
}

impl Tally {
    fn connected(&self, who: Who) -> usize {
        self.connected[who as usize].load(Ordering::Relaxed)
    }

    fn students_connected(&self) -> usize {
        self.connected(Who::Listener)
            + self.connected(Who::Chatter)
            + self.connected(Who::MediaStudent)
    }

    fn join_failed(&self, why: String) {
        self.join_failures.fetch_add(1, Ordering::Relaxed);
        lock(&self.first_join_failure).get_or_insert(why);
    }
}

/// What every connection task needs.
struct Ctx {
    url: String,
    minter: TokenMinter,
    shared: Arc<Shared>,
    ws_connecting: Arc<Semaphore>,
    media_connecting: Arc<Semaphore>,
    /// Never polled here, only cloned: a clone sees a stop sent before it was made.
    stop: watch::Receiver<bool>,
    reconnect: bool,
    publish: PublishOptions,
    tally: Tally,
    /// When the class is held (set once every student joined or the join deadline passed).
    held_since: Mutex<Option<Instant>>,
    joins_started: Instant,
}

impl Ctx {
    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    fn record_disconnect(&self, who: Who, why: String) {
        let now = Instant::now();
        let at_s = match *lock(&self.held_since) {
            Some(held) if now >= held => now.duration_since(held).as_secs_f64(),
            Some(held) => -held.duration_since(now).as_secs_f64(),
            None => -(now.duration_since(self.joins_started).as_secs_f64()),
        };
        lock(&self.tally.disconnects).push(Disconnect { at_s, who, why });
    }

    /// Wait before joining again; `false` if the run stopped meanwhile.
    async fn pause_before_reconnect(&self) -> bool {
        let jitter = RECONNECT_DELAY.mul_f64(rand::random::<f64>());
        let mut stop = self.stop.clone();
        tokio::select! {
            _ = tokio::time::sleep(RECONNECT_DELAY + jitter) => !self.stopping(),
            _ = stopped(&mut stop) => false,
        }
    }
}

/// Where the pacer finds a chat sender's queue while it is connected.
type SendSlot = Mutex<Option<mpsc::Sender<()>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

pub async fn run(args: SoakArgs) -> anyhow::Result<()> {
    args.validate()?;
    let per_sender = args.chat_rate / args.sender_count() as f64;
    let mut server = Server::start_or_attach(&args.server, args.students, per_sender).await?;
    let outcome = hold(&args, &mut server).await;
    server.shutdown().await;
    let summary = outcome?;
    summary.print();
    println!("{}", serde_json::to_string(&summary)?);
    Ok(())
}

/// One media connection (a student or the publisher) and what its ended bots counted.
#[derive(Default)]
struct MediaSlot {
    bot: Option<Bot>,
    /// Connections so far: a reconnect makes a new one.
    generation: u64,
    retired: MediaCounts,
}

#[derive(Debug, Clone, Copy, Default)]
struct MediaCounts {
    received: u64,
    /// Sequence gaps not (yet) filled by a retransmission.
    lost: u64,
    /// RTP packets sent (the publisher).
    published: u64,
}

impl MediaCounts {
    fn of(bot: &Bot) -> MediaCounts {
        let mut c = MediaCounts::default();
        for t in bot.received() {
            c.received += t.packets;
            c.lost += t.seq.lost();
        }
        let sent = bot.sent();
        c.published =
            sent.video_packets.load(Ordering::Relaxed) + sent.audio_packets.load(Ordering::Relaxed);
        c
    }

    fn plus(self, o: MediaCounts) -> MediaCounts {
        MediaCounts {
            received: self.received + o.received,
            lost: self.lost + o.lost,
            published: self.published + o.published,
        }
    }
}

impl MediaSlot {
    fn total(&self) -> MediaCounts {
        match &self.bot {
            Some(bot) => self.retired.plus(MediaCounts::of(bot)),
            None => self.retired,
        }
    }
}

async fn hold(args: &SoakArgs, server: &mut Server) -> anyhow::Result<SoakSummary> {
    let ticks = procfs::clock_ticks_per_second();
    let server_proc = server.pid().map(Proc::Pid);
    let room = args
        .room
        .clone()
        .unwrap_or_else(|| token::random_room("soak"));
    let (stop_tx, stop_rx) = watch::channel(false);
    let ctx = Arc::new(Ctx {
        url: server.ws_url(),
        minter: TokenMinter::new(server.secret(), room),
        shared: Arc::new(Shared::with_live_latency()),
        ws_connecting: Arc::new(Semaphore::new(args.connect_concurrency)),
        media_connecting: Arc::new(Semaphore::new(args.media_connect_concurrency)),
        stop: stop_rx,
        reconnect: !args.no_reconnect,
        publish: PublishOptions {
            video_bitrate: args.bitrate,
            fps: args.fps,
            ..PublishOptions::default()
        },
        tally: Tally::default(),
        held_since: Mutex::new(None),
        joins_started: Instant::now(),
    });
    let chatters = args.chatter_count();
    let listeners = args.chat_only() - chatters;
    eprintln!(
        "class: 1 instructor (publishing bot + chat connection), {} students: {} media, \
         {chatters} chatters, {listeners} listeners; chat {} msg/s",
        args.students, args.media_students, args.chat_rate
    );

    // The instructor first, so students find the lecture on.
    let publisher = Arc::new(Mutex::new(MediaSlot::default()));
    let mut tasks = vec![tokio::spawn(media_member(
        ctx.clone(),
        Who::Publisher,
        "soak-instructor".to_owned(),
        publisher.clone(),
    ))];
    wait_until(Duration::from_secs(90), || {
        ctx.tally.connected(Who::Publisher) == 1
    })
    .await
    .map_err(|()| {
        anyhow::anyhow!(
            "the instructor's bot did not connect its media: {}",
            lock(&ctx.tally.first_join_failure)
                .clone()
                .unwrap_or_else(|| "no error seen".to_owned())
        )
    })?;

    let mut senders: Vec<Arc<SendSlot>> = Vec::new();
    let instructor_chat = Arc::new(SendSlot::default());
    senders.push(instructor_chat.clone());
    tasks.push(tokio::spawn(ws_member(
        ctx.clone(),
        Who::InstructorChat,
        0,
        Some(instructor_chat),
    )));
    for i in 1..=args.chat_only() {
        let (who, sends) = if i <= chatters {
            let slot = Arc::new(SendSlot::default());
            senders.push(slot.clone());
            (Who::Chatter, Some(slot))
        } else {
            (Who::Listener, None)
        };
        tasks.push(tokio::spawn(ws_member(ctx.clone(), who, i, sends)));
    }
    let mut media_slots = Vec::with_capacity(args.media_students);
    for i in 0..args.media_students {
        let slot = Arc::new(Mutex::new(MediaSlot::default()));
        media_slots.push(slot.clone());
        tasks.push(tokio::spawn(media_member(
            ctx.clone(),
            Who::MediaStudent,
            format!("soak-m{i:04}"),
            slot,
        )));
    }

    let join_deadline = Duration::from_secs(60)
        + Duration::from_millis(50) * args.chat_only() as u32
        + Duration::from_millis(1_000) * args.media_students as u32;
    let everyone = || {
        ctx.tally.students_connected() == args.students
            && ctx.tally.connected(Who::InstructorChat) == 1
    };
    let all_joined = wait_until(join_deadline, everyone).await.is_ok();
    let joined = ctx.tally.students_connected();
    let join_s = ctx.joins_started.elapsed().as_secs_f64();
    if all_joined {
        eprintln!("all {joined} students joined in {join_s:.1} s; holding the class");
    } else {
        server.check_alive()?;
        let first = lock(&ctx.tally.first_join_failure).clone();
        if joined == 0 {
            let _ = stop_tx.send(true);
            bail!(
                "no student could join within {} s: {}",
                join_deadline.as_secs(),
                first.unwrap_or_else(|| "no error seen".to_owned())
            );
        }
        eprintln!(
            "only {joined} of {} students joined within {join_s:.0} s (first failure: {}); \
             holding the class, the others keep trying",
            args.students,
            first.unwrap_or_else(|| "none".to_owned())
        );
    }

    let held_since = Instant::now();
    *lock(&ctx.held_since) = Some(held_since);
    if args.chat_rate > 0.0 {
        tasks.push(tokio::spawn(pace(ctx.clone(), senders, args.chat_rate)));
    }

    let sampler = Sampler {
        ctx: &ctx,
        publisher: &publisher,
        media: &media_slots,
        server_proc,
        ticks,
    };
    print_header();
    let end = held_since + Duration::from_secs_f64(args.minutes * 60.0);
    let interval = Duration::from_secs(args.interval_secs);
    let first = sampler.take(server).await;
    let mut prev = first.clone();
    let mut rows = Vec::new();
    let mut interrupted = false;
    let mut outcome = Ok(());
    for k in 1u32.. {
        let due = (held_since + interval * k).min(end);
        tokio::select! {
            _ = tokio::time::sleep_until(due.into()) => {}
            _ = tokio::signal::ctrl_c() => {
                interrupted = true;
            }
        }
        if let Err(e) = server.check_alive() {
            outcome = Err(e);
            break;
        }
        let now = sampler.take(server).await;
        let row = Row::between(&prev, &now, held_since, &ctx.tally);
        row.print();
        rows.push(row);
        prev = now;
        if interrupted || due >= end {
            break;
        }
    }
    let last = prev;

    // Stop everything; what ends now is not counted as a disconnect.
    let _ = stop_tx.send(true);
    let stop_deadline = tokio::time::Instant::now() + STOP_TIMEOUT;
    for task in tasks {
        let abort = task.abort_handle();
        if tokio::time::timeout_at(stop_deadline, task).await.is_err() {
            abort.abort();
        }
    }
    outcome?;
    Ok(SoakSummary::new(
        args,
        &ctx,
        join_s,
        all_joined,
        interrupted,
        &first,
        &last,
        rows,
    ))
}

/// One chat-only connection (a student, or the instructor's chat), joined again when the
/// server ends it. With `sends`, the pacer finds its send queue there while it is connected;
/// without, it never sends a frame.
async fn ws_member(ctx: Arc<Ctx>, who: Who, index: usize, sends: Option<Arc<SendSlot>>) {
    let (sub, role) = match who {
        Who::InstructorChat => ("soak-instructor-chat".to_owned(), Role::Instructor),
        _ => (format!("soak-s{index:04}"), Role::Student),
    };
    let mut welcomed_before = false;
    while !ctx.stopping() {
        let token = match ctx.minter.mint(&sub, &sub, role) {
            Ok(token) => token,
            Err(e) => {
                ctx.tally.join_failed(format!("{e:#}"));
                return;
            }
        };
        let (send_tx, send_rx) = mpsc::channel(16);
        if let Some(slot) = &sends {
            *lock(slot) = Some(send_tx);
        } else {
            drop(send_tx);
        }
        let (welcomed_tx, mut welcomed_rx) = mpsc::unbounded_channel();
        let run = client::run(
            ClientSpec {
                index,
                url: ctx.url.clone(),
                token,
            },
            ctx.shared.clone(),
            ctx.ws_connecting.clone(),
            welcomed_tx,
            send_rx,
            ctx.stop.clone(),
        );
        tokio::pin!(run);
        // The welcome (or the join's failure) arrives while `run` goes on.
        let on_answer = |answer: Result<usize, String>| match answer {
            Ok(_) => {
                ctx.tally.connected[who as usize].fetch_add(1, Ordering::Relaxed);
                if welcomed_before {
                    ctx.tally.reconnects.fetch_add(1, Ordering::Relaxed);
                }
                true
            }
            Err(e) => {
                ctx.tally.join_failed(format!("{}: {e}", who.name()));
                false
            }
        };
        let mut answer = None;
        let report = loop {
            tokio::select! {
                report = &mut run => break report,
                Some(a) = welcomed_rx.recv(), if answer.is_none() => answer = Some(on_answer(a)),
            }
        };
        if answer.is_none()
            && let Ok(a) = welcomed_rx.try_recv()
        {
            answer = Some(on_answer(a));
        }
        let welcomed = answer == Some(true);
        if let Some(slot) = &sends {
            *lock(slot) = None;
        }
        if report.errors > 0 {
            ctx.tally
                .chat_errors
                .fetch_add(report.errors, Ordering::Relaxed);
            if let Some(e) = report.first_error {
                lock(&ctx.tally.first_chat_error).get_or_insert(e);
            }
        }
        if welcomed {
            welcomed_before = true;
            ctx.tally.connected[who as usize].fetch_sub(1, Ordering::Relaxed);
            if ctx.stopping() {
                return;
            }
            let why = report
                .ended
                .map_or_else(|| "ended".to_owned(), |e| e.label());
            ctx.record_disconnect(who, why);
            if !ctx.reconnect {
                return;
            }
        }
        if !ctx.pause_before_reconnect().await {
            return;
        }
    }
}

/// One media connection: the instructor's publishing bot or a receiving student, joined
/// again when its WebSocket or peer connection ends.
async fn media_member(ctx: Arc<Ctx>, who: Who, sub: String, slot: Arc<Mutex<MediaSlot>>) {
    let role = if who == Who::Publisher {
        Role::Instructor
    } else {
        Role::Student
    };
    let mut welcomed_before = false;
    while !ctx.stopping() {
        let joined = async {
            let _permit = ctx.media_connecting.acquire().await?;
            let options = bot_options(&ctx.minter, &ctx.url, &sub, role)?;
            let bot = if who == Who::Publisher {
                Bot::publish(options, ctx.publish.clone()).await?
            } else {
                Bot::subscribe(options).await?
            };
            bot.wait_connected(media::CONNECT_TIMEOUT).await?;
            Ok::<_, anyhow::Error>(bot)
        };
        let mut stop = ctx.stop.clone();
        let bot = tokio::select! {
            joined = tokio::time::timeout(media::CONNECT_TIMEOUT * 2, joined) => match joined {
                Ok(Ok(bot)) => bot,
                Ok(Err(e)) => {
                    ctx.tally.join_failed(format!("{}: {e:#}", who.name()));
                    if !ctx.pause_before_reconnect().await {
                        return;
                    }
                    continue;
                }
                Err(_) => {
                    ctx.tally.join_failed(format!("{}: join timed out", who.name()));
                    if !ctx.pause_before_reconnect().await {
                        return;
                    }
                    continue;
                }
            },
            _ = stopped(&mut stop) => return,
        };
        {
            let mut s = lock(&slot);
            s.bot = Some(bot);
            s.generation += 1;
        }
        ctx.tally.connected[who as usize].fetch_add(1, Ordering::Relaxed);
        if welcomed_before {
            ctx.tally.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        welcomed_before = true;

        let why = loop {
            tokio::select! {
                _ = tokio::time::sleep(WATCH_EVERY) => {}
                _ = stopped(&mut stop) => break None,
            }
            let s = lock(&slot);
            let Some(bot) = &s.bot else { break None };
            if let Some(why) = bot.signalling_ended() {
                break Some(why);
            }
            if bot.has_failed() {
                break Some("the peer connection failed or closed".to_owned());
            }
        };
        let bot = {
            let mut s = lock(&slot);
            let bot = s.bot.take();
            if let Some(bot) = &bot {
                s.retired = s.retired.plus(MediaCounts::of(bot));
            }
            bot
        };
        ctx.tally.connected[who as usize].fetch_sub(1, Ordering::Relaxed);
        if let Some(bot) = bot {
            let _ = tokio::time::timeout(BOT_CLOSE_TIMEOUT, bot.close()).await;
        }
        let Some(why) = why else { return };
        if ctx.stopping() {
            return;
        }
        ctx.record_disconnect(who, why);
        if !ctx.reconnect || !ctx.pause_before_reconnect().await {
            return;
        }
    }
}

/// Chat message k at `k / rate` seconds, from a sender picked at random, until the stop.
async fn pace(ctx: Arc<Ctx>, senders: Vec<Arc<SendSlot>>, rate: f64) {
    let start = Instant::now();
    let mut stop = ctx.stop.clone();
    for k in 0u64.. {
        let due = start + Duration::from_secs_f64(k as f64 / rate);
        tokio::select! {
            _ = tokio::time::sleep_until(due.into()) => {}
            _ = stopped(&mut stop) => return,
        }
        let picked = &senders[rand::random_range(0..senders.len())];
        let sent = lock(picked)
            .as_ref()
            .is_some_and(|tx| tx.try_send(()).is_ok());
        let counter = if sent {
            &ctx.tally.chat_sent
        } else {
            &ctx.tally.chat_skipped
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Poll `cond` every 100 ms for at most `limit`.
async fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> Result<(), ()> {
    let end = Instant::now() + limit;
    while !cond() {
        if Instant::now() >= end {
            return Err(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

struct Sampler<'a> {
    ctx: &'a Ctx,
    publisher: &'a Mutex<MediaSlot>,
    media: &'a [Arc<Mutex<MediaSlot>>],
    server_proc: Option<Proc>,
    ticks: u64,
}

/// Everything read at one moment; a row is the difference of two.
#[derive(Debug, Clone)]
struct Sample {
    at: Instant,
    server_cpu: Option<CpuTimes>,
    server_rss_kib: Option<u64>,
    server_ws: Option<f64>,
    bench_cpu: CpuTimes,
    latency: Histogram,
    chat_sent: u64,
    published: u64,
    /// Per media student: (connection generation, connected now, counts so far).
    media: Vec<(u64, bool, MediaCounts)>,
    disconnects_seen: usize,
    students: [usize; Who::COUNT],
    reconnects: u64,
}

impl Sampler<'_> {
    async fn take(&self, server: &Server) -> Sample {
        let server_ws = server
            .metrics()
            .await
            .ok()
            .and_then(|m| m.get("lectern_ws_connections"));
        let media = self
            .media
            .iter()
            .map(|slot| {
                let s = lock(slot);
                (s.generation, s.bot.is_some(), s.total())
            })
            .collect();
        let tally = &self.ctx.tally;
        Sample {
            at: Instant::now(),
            server_cpu: self.server_proc.and_then(|p| p.cpu_times(self.ticks)),
            server_rss_kib: self.server_proc.and_then(Proc::rss_kib),
            server_ws,
            bench_cpu: Proc::Myself.cpu_times(self.ticks).unwrap_or_default(),
            latency: self.ctx.shared.live_latency().unwrap_or_default(),
            chat_sent: tally.chat_sent.load(Ordering::Relaxed),
            published: lock(self.publisher).total().published,
            media,
            disconnects_seen: lock(&tally.disconnects).len(),
            students: std::array::from_fn(|i| tally.connected[i].load(Ordering::Relaxed)),
            reconnects: tally.reconnects.load(Ordering::Relaxed),
        }
    }
}

/// One interval.
#[derive(Debug, Clone, Serialize)]
struct Row {
    elapsed_s: f64,
    students_connected: usize,
    chat_only_connected: usize,
    media_connected: usize,
    instructor_connected: bool,
    disconnects: usize,
    reconnects: u64,
    /// This interval's disconnects, `who: why` → count.
    new_disconnects: BTreeMap<String, usize>,
    server_rss_mib: Option<f64>,
    server_cpu_pct: Option<f64>,
    bench_cpu_pct: f64,
    server_ws_connections: Option<f64>,
    chat_sent: u64,
    chat_deliveries: u64,
    chat_p50_ms: Option<f64>,
    chat_p99_ms: Option<f64>,
    /// RTP packets the publisher sent in the interval.
    media_published: u64,
    /// Packets received per media student connected at the end of the interval.
    media_per_student: Option<f64>,
    /// Sequence gaps opened (and not filled) ÷ (received + gaps).
    media_loss_pct: Option<f64>,
    media_received: u64,
    media_lost: u64,
    /// Media students connected the whole interval that received nothing in it.
    media_stalled: usize,
}

impl Row {
    fn between(a: &Sample, b: &Sample, held_since: Instant, tally: &Tally) -> Row {
        let wall = b.at.duration_since(a.at).as_secs_f64().max(1e-9);
        let latency = b.latency.since(&a.latency);
        let latency_ms = Latency::from_histogram(&latency);
        let mut new_disconnects = BTreeMap::new();
        for d in &lock(&tally.disconnects)[a.disconnects_seen..b.disconnects_seen] {
            *new_disconnects
                .entry(format!("{}: {}", d.who.name(), d.why))
                .or_insert(0) += 1;
        }
        let (mut received, mut lost, mut stalled) = (0u64, 0u64, 0usize);
        for ((g0, on0, c0), (g1, on1, c1)) in a.media.iter().zip(&b.media) {
            let got = c1.received.saturating_sub(c0.received);
            received += got;
            lost += c1.lost.saturating_sub(c0.lost);
            if *on0 && *on1 && g0 == g1 && got == 0 {
                stalled += 1;
            }
        }
        let media_connected = b.students[Who::MediaStudent as usize];
        let chat_only_connected =
            b.students[Who::Listener as usize] + b.students[Who::Chatter as usize];
        Row {
            elapsed_s: b.at.duration_since(held_since).as_secs_f64(),
            students_connected: chat_only_connected + media_connected,
            chat_only_connected,
            media_connected,
            instructor_connected: b.students[Who::Publisher as usize] == 1
                && b.students[Who::InstructorChat as usize] == 1,
            disconnects: b.disconnects_seen,
            reconnects: b.reconnects,
            new_disconnects,
            server_rss_mib: b.server_rss_kib.map(|k| k as f64 / 1024.0),
            server_cpu_pct: a
                .server_cpu
                .zip(b.server_cpu)
                .map(|(x, y)| y.since(x).total().as_secs_f64() / wall * 100.0),
            bench_cpu_pct: b.bench_cpu.since(a.bench_cpu).total().as_secs_f64() / wall * 100.0,
            server_ws_connections: b.server_ws,
            chat_sent: b.chat_sent - a.chat_sent,
            chat_deliveries: latency.count(),
            chat_p50_ms: latency_ms.map(|l| l.p50),
            chat_p99_ms: latency_ms.map(|l| l.p99),
            media_published: b.published.saturating_sub(a.published),
            media_per_student: (media_connected > 0)
                .then(|| received as f64 / media_connected as f64),
            media_loss_pct: (received + lost > 0)
                .then(|| lost as f64 * 100.0 / (received + lost) as f64),
            media_received: received,
            media_lost: lost,
            media_stalled: stalled,
        }
    }

    fn print(&self) {
        let opt = |v: Option<f64>, digits: usize| match v {
            Some(v) => format!("{v:.digits$}"),
            None => "n/a".to_owned(),
        };
        println!(
            "{:>6} {:>5} {:>5} {:>5} {:>5} {:>6} {:>8} {:>6} {:>6} {:>6} {:>5} {:>7} {:>7} {:>7} {:>8} {:>8} {:>6} {:>4}{}",
            clock(self.elapsed_s),
            self.students_connected,
            self.chat_only_connected,
            self.media_connected,
            self.disconnects,
            self.reconnects,
            opt(self.server_rss_mib, 1),
            opt(self.server_cpu_pct, 0),
            format!("{:.0}", self.bench_cpu_pct),
            opt(self.server_ws_connections, 0),
            self.chat_sent,
            self.chat_deliveries,
            opt(self.chat_p50_ms, 2),
            opt(self.chat_p99_ms, 2),
            opt(self.media_per_student, 0),
            self.media_published,
            opt(self.media_loss_pct, 3),
            self.media_stalled,
            if self.instructor_connected {
                ""
            } else {
                "  (instructor not connected)"
            }
        );
        for (why, n) in &self.new_disconnects {
            println!("{:>6} {n} x {why}", "+");
        }
    }
}

fn print_header() {
    println!(
        "columns: time held; students connected (chat-only, media); disconnects and reconnects \
         so far; server RSS; server and tool CPU (% of a core); the server's WebSocket count; \
         in the interval: chat sent, deliveries and their latency p50/p99, media packets per \
         student and published, loss (unrepaired gaps), media students that received nothing"
    );
    println!(
        "{:>6} {:>5} {:>5} {:>5} {:>5} {:>6} {:>8} {:>6} {:>6} {:>6} {:>5} {:>7} {:>7} {:>7} {:>8} {:>8} {:>6} {:>4}",
        "time",
        "stud",
        "chat",
        "media",
        "disc",
        "reconn",
        "RSS MiB",
        "srv%",
        "tool%",
        "srv ws",
        "sent",
        "deliv",
        "p50 ms",
        "p99 ms",
        "pkt/stud",
        "pub pkt",
        "loss %",
        "stall"
    );
}

/// `m:ss` (or `-m:ss`).
fn clock(seconds: f64) -> String {
    let sign = if seconds < 0.0 { "-" } else { "" };
    let s = seconds.abs().round() as u64;
    format!("{sign}{}:{:02}", s / 60, s % 60)
}

#[derive(Debug, Serialize)]
struct SoakSummary {
    students: usize,
    media_students: usize,
    chatters: usize,
    listeners: usize,
    chat_rate: f64,
    minutes_held: f64,
    interrupted: bool,
    join_s: f64,
    all_joined: bool,
    join_failures: u64,
    first_join_failure: Option<String>,
    disconnects: usize,
    reconnects: u64,
    /// `who: why` → count, over the whole run.
    disconnects_by: BTreeMap<String, usize>,
    first_disconnects: Vec<Disconnect>,
    students_connected_end: usize,
    server_rss_mib_start: Option<f64>,
    server_rss_mib_end: Option<f64>,
    server_rss_mib_max: Option<f64>,
    /// Least-squares slope of the rows' RSS.
    server_rss_mib_per_10_min: Option<f64>,
    server_cpu_pct_mean: Option<f64>,
    server_cpu_pct_max: Option<f64>,
    bench_cpu_pct_mean: f64,
    chat_sent: u64,
    chat_skipped: u64,
    chat_errors: u64,
    first_chat_error: Option<String>,
    chat_deliveries: u64,
    chat_latency_ms: Option<Latency>,
    chat_p99_ms_worst_interval: Option<f64>,
    media_packets_per_student_per_s: Option<f64>,
    media_published_per_s: f64,
    media_loss_pct: Option<f64>,
    /// Sum over rows of the media students that received nothing for a whole interval.
    media_stalled_intervals: usize,
    rows: Vec<Row>,
}

impl SoakSummary {
    #[allow(clippy::too_many_arguments)]
    fn new(
        args: &SoakArgs,
        ctx: &Ctx,
        join_s: f64,
        all_joined: bool,
        interrupted: bool,
        first: &Sample,
        last: &Sample,
        rows: Vec<Row>,
    ) -> SoakSummary {
        let tally = &ctx.tally;
        let disconnects = lock(&tally.disconnects).clone();
        let mut disconnects_by = BTreeMap::new();
        for d in &disconnects {
            *disconnects_by
                .entry(format!("{}: {}", d.who.name(), d.why))
                .or_insert(0) += 1;
        }
        let held_s = last.at.duration_since(first.at).as_secs_f64().max(1e-9);
        let rss: Vec<(f64, f64)> = rows
            .iter()
            .filter_map(|r| r.server_rss_mib.map(|m| (r.elapsed_s, m)))
            .collect();
        let cpu: Vec<f64> = rows.iter().filter_map(|r| r.server_cpu_pct).collect();
        let (received, lost) = rows.iter().fold((0, 0), |(r, l), row| {
            (r + row.media_received, l + row.media_lost)
        });
        let media_per_student: Vec<f64> = rows
            .iter()
            .zip(std::iter::once(0.0).chain(rows.iter().map(|r| r.elapsed_s)))
            .filter_map(|(r, t0)| {
                r.media_per_student
                    .map(|p| p / (r.elapsed_s - t0).max(1e-9))
            })
            .collect();
        let latency = last.latency.since(&first.latency);
        SoakSummary {
            students: args.students,
            media_students: args.media_students,
            chatters: args.chatter_count(),
            listeners: args.chat_only() - args.chatter_count(),
            chat_rate: args.chat_rate,
            minutes_held: held_s / 60.0,
            interrupted,
            join_s,
            all_joined,
            join_failures: tally.join_failures.load(Ordering::Relaxed),
            first_join_failure: lock(&tally.first_join_failure).clone(),
            disconnects: disconnects.len(),
            reconnects: tally.reconnects.load(Ordering::Relaxed),
            disconnects_by,
            first_disconnects: disconnects.iter().take(5).cloned().collect(),
            students_connected_end: rows.last().map_or(0, |r| r.students_connected),
            server_rss_mib_start: first.server_rss_kib.map(|k| k as f64 / 1024.0),
            server_rss_mib_end: last.server_rss_kib.map(|k| k as f64 / 1024.0),
            server_rss_mib_max: rss.iter().map(|&(_, m)| m).reduce(f64::max),
            server_rss_mib_per_10_min: slope(&rss).map(|per_s| per_s * 600.0),
            server_cpu_pct_mean: (!cpu.is_empty())
                .then(|| cpu.iter().sum::<f64>() / cpu.len() as f64),
            server_cpu_pct_max: cpu.iter().copied().reduce(f64::max),
            bench_cpu_pct_mean: last.bench_cpu.since(first.bench_cpu).total().as_secs_f64()
                / held_s
                * 100.0,
            chat_sent: tally.chat_sent.load(Ordering::Relaxed),
            chat_skipped: tally.chat_skipped.load(Ordering::Relaxed),
            chat_errors: tally.chat_errors.load(Ordering::Relaxed),
            first_chat_error: lock(&tally.first_chat_error).clone(),
            chat_deliveries: latency.count(),
            chat_latency_ms: Latency::from_histogram(&latency),
            chat_p99_ms_worst_interval: rows.iter().filter_map(|r| r.chat_p99_ms).reduce(f64::max),
            media_packets_per_student_per_s: (!media_per_student.is_empty())
                .then(|| media_per_student.iter().sum::<f64>() / media_per_student.len() as f64),
            media_published_per_s: last.published.saturating_sub(first.published) as f64 / held_s,
            media_loss_pct: (received + lost > 0)
                .then(|| lost as f64 * 100.0 / (received + lost) as f64),
            media_stalled_intervals: rows.iter().map(|r| r.media_stalled).sum(),
            rows,
        }
    }

    fn print(&self) {
        let opt = |v: Option<f64>, digits: usize| match v {
            Some(v) => format!("{v:.digits$}"),
            None => "n/a".to_owned(),
        };
        println!();
        println!(
            "soak summary: {:.1} min held{}, {} students ({} media, {} chatters, {} listeners), chat {} msg/s",
            self.minutes_held,
            if self.interrupted {
                " (interrupted)"
            } else {
                ""
            },
            self.students,
            self.media_students,
            self.chatters,
            self.listeners,
            self.chat_rate
        );
        println!(
            "  join            {} in {:.1} s; join failures {}{}",
            if self.all_joined {
                "all joined"
            } else {
                "NOT all joined"
            },
            self.join_s,
            self.join_failures,
            self.first_join_failure
                .as_ref()
                .map_or_else(String::new, |e| format!(" (first: {e})"))
        );
        println!(
            "  disconnects     {} (reconnects {}); students connected at the end: {} of {}",
            self.disconnects, self.reconnects, self.students_connected_end, self.students
        );
        for (why, n) in &self.disconnects_by {
            println!("                  {n} x {why}");
        }
        if let Some(d) = self.first_disconnects.first() {
            println!(
                "  first           at {} ({}: {})",
                clock(d.at_s),
                d.who.name(),
                d.why
            );
        }
        println!(
            "  server RSS      {} MiB when held, {} at the end, max {}; slope {} MiB per 10 min",
            opt(self.server_rss_mib_start, 1),
            opt(self.server_rss_mib_end, 1),
            opt(self.server_rss_mib_max, 1),
            opt(self.server_rss_mib_per_10_min, 2)
        );
        println!(
            "  server CPU      mean {}%, max {}% of a core; this tool {:.0}%",
            opt(self.server_cpu_pct_mean, 0),
            opt(self.server_cpu_pct_max, 0),
            self.bench_cpu_pct_mean
        );
        let latency = |f: fn(&Latency) -> f64| opt(self.chat_latency_ms.as_ref().map(f), 2);
        println!(
            "  chat            sent {} (skipped {}, errors {}), deliveries {}; latency p50 {} / p99 {} / max {} ms; worst interval p99 {} ms",
            self.chat_sent,
            self.chat_skipped,
            self.chat_errors,
            self.chat_deliveries,
            latency(|l| l.p50),
            latency(|l| l.p99),
            latency(|l| l.max),
            opt(self.chat_p99_ms_worst_interval, 2)
        );
        if let Some(e) = &self.first_chat_error {
            println!("  first chat error {e}");
        }
        println!(
            "  media           {} pkt/s per student (publisher sent {:.0} pkt/s), loss {}%, stalled student-intervals {}",
            opt(self.media_packets_per_student_per_s, 0),
            self.media_published_per_s,
            opt(self.media_loss_pct, 3),
            self.media_stalled_intervals
        );
    }
}

/// Least-squares slope of y over x, or `None` with fewer than three points (two rows of a
/// short run say more about the joins than about a trend).
fn slope(points: &[(f64, f64)]) -> Option<f64> {
    if points.len() < 3 {
        return None;
    }
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: SoakArgs,
    }

    fn parse(line: &[&str]) -> SoakArgs {
        Cli::parse_from(std::iter::once("soak").chain(line.iter().copied())).args
    }

    #[test]
    fn the_class_splits_into_media_chatters_and_listeners() {
        let args = parse(&[]);
        args.validate().expect("defaults are valid");
        assert_eq!((args.students, args.media_students), (300, 100));
        assert_eq!(args.chatter_count(), 20);
        assert_eq!(args.sender_count(), 21);
        let args = parse(&["--students", "60", "--media-students", "20"]);
        assert_eq!(args.chatter_count(), 4);
        let args = parse(&["--students", "5", "--media-students", "5"]);
        assert_eq!(args.chatter_count(), 0);
        let args = parse(&["--students", "3", "--media-students", "1"]);
        assert_eq!(args.chatter_count(), 1);
    }

    #[test]
    fn refuses_what_cannot_be_held() {
        for bad in [
            &["--media-students", "301"][..],
            &[
                "--students",
                "10",
                "--media-students",
                "5",
                "--chatters",
                "6",
            ],
            &["--minutes", "0"],
            &["--minutes", "241"],
            &["--interval-secs", "0"],
            &["--chat-rate=-1"],
        ] {
            assert!(parse(bad).validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn slope_of_a_line() {
        assert_eq!(
            slope(&[(0.0, 1.0), (60.0, 2.0), (120.0, 3.0)]),
            Some(1.0 / 60.0)
        );
        assert_eq!(slope(&[(5.0, 1.0), (6.0, 2.0)]), None);
    }

    #[test]
    fn clock_reads_minutes_and_seconds() {
        assert_eq!(clock(0.0), "0:00");
        assert_eq!(clock(61.4), "1:01");
        assert_eq!(clock(-47.0), "-0:47");
    }

    fn sample(media: Vec<(u64, bool, MediaCounts)>) -> Sample {
        Sample {
            at: Instant::now(),
            server_cpu: None,
            server_rss_kib: None,
            server_ws: None,
            bench_cpu: CpuTimes::default(),
            latency: Histogram::default(),
            chat_sent: 0,
            published: 0,
            media,
            disconnects_seen: 0,
            students: [0; Who::COUNT],
            reconnects: 0,
        }
    }

    #[test]
    fn a_row_counts_stalls_loss_and_new_disconnects() {
        let counts = |received, lost| MediaCounts {
            received,
            lost,
            published: 0,
        };
        let a = sample(vec![
            (1, true, counts(100, 0)),
            (1, true, counts(100, 0)),
            (1, true, counts(100, 0)),
            (1, false, counts(0, 0)),
        ]);
        let mut b = sample(vec![
            // Received 98 and lost 2.
            (1, true, counts(198, 2)),
            // Connected throughout, nothing received: stalled.
            (1, true, counts(100, 0)),
            // Reconnected meanwhile: not a stall.
            (2, true, counts(100, 0)),
            // Not connected at the start: not a stall.
            (1, true, counts(0, 0)),
        ]);
        b.students[Who::MediaStudent as usize] = 4;
        let tally = Tally::default();
        lock(&tally.disconnects).push(Disconnect {
            at_s: 47.0,
            who: Who::Listener,
            why: "close 1000".into(),
        });
        b.disconnects_seen = 1;
        let row = Row::between(&a, &b, a.at, &tally);
        assert_eq!((row.media_received, row.media_lost), (98, 2));
        assert_eq!(row.media_loss_pct, Some(2.0));
        assert_eq!(row.media_stalled, 1);
        assert_eq!(row.media_per_student, Some(24.5));
        assert_eq!(
            row.new_disconnects,
            BTreeMap::from([("listener: close 1000".to_owned(), 1)])
        );
        assert_eq!(row.chat_p50_ms, None);
    }
}

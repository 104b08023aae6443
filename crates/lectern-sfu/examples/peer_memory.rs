//! Heap memory per subscriber peer, counted by a counting allocator rather than read from RSS
//! (which is noisy on a busy machine and includes allocator slack): one publisher (camera and
//! microphone) and N subscribers in one room, on the SFU's sans-IO API with a simulated clock
//! (the media tests' in-memory browsers).
//!
//! ```text
//! cargo run --release -p lectern-sfu --example peer_memory -- --subscribers 10,50,200 --seconds 5
//! ```
//!
//! How the SFU's heap is told from the simulated browsers': the test harness (`Net` in
//! `tests/media/support.rs`) runs every call into the `Sfu` through `support::scope::in_sfu`,
//! which this example hooks to run the call in an allocation group of the `tracking-allocator`
//! crate (a global allocator that writes the group active at allocation into a small header in
//! front of each block, and reports it back when the block is freed). So each block counts for
//! the side that allocated it until it is freed, wherever it is freed: a datagram the SFU
//! allocates and the harness drops counts for the SFU until it is dropped. (A reallocation is a
//! new allocation by whoever grows the block.) The harness keeps every `MediaEvent` (offers
//! hold SDP text the real server sends and drops), so its list is cleared before each reading.
//!
//! `--exit-after-reading` ends the program at the first reading, without freeing anything:
//! run under `heaptrack`, the blocks live then show as leaked, with their call stacks.
//!
//! For each N, in a fresh `Net`: the publisher joins and sends for `--seconds` simulated
//! seconds (its buffers fill), and the SFU's live bytes are the base; then N subscribers join,
//! every one receives audio and video, the media flows for `--seconds` more, and the SFU's
//! live bytes again. KiB per subscriber = (live − base) / N / 1024. The live bytes the SFU
//! holds are also split by allocation size, to find the large structures.

#[path = "../tests/media/support.rs"]
#[allow(dead_code)]
mod support;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;

use str0m::media::MediaKind;
use support::Net;
use tracking_allocator::{
    AllocationGroupId, AllocationGroupToken, AllocationRegistry, AllocationTracker, Allocator,
};

#[global_allocator]
static GLOBAL: Allocator<std::alloc::System> = Allocator::system();

/// Size classes of live SFU allocations: `< 2^(i+4)` bytes for class `i`, the last one open.
const CLASSES: usize = 16;

/// Live bytes: `[0]` everything else (browsers, harness), `[1]` the SFU's.
static LIVE: [AtomicI64; 2] = [AtomicI64::new(0), AtomicI64::new(0)];
static CLASS_BYTES: [AtomicI64; CLASSES] = [const { AtomicI64::new(0) }; CLASSES];
static CLASS_COUNT: [AtomicI64; CLASSES] = [const { AtomicI64::new(0) }; CLASSES];
/// Live SFU blocks of at least [`LARGE`] bytes, by exact size: size to count.
static LARGE_BLOCKS: Mutex<BTreeMap<usize, i64>> = Mutex::new(BTreeMap::new());
const LARGE: usize = 16 * 1024;
/// The allocation group of SFU work (0 until registered).
static SFU_GROUP: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static SFU_TOKEN: RefCell<Option<AllocationGroupToken>> = const { RefCell::new(None) };
}

fn class(size: usize) -> usize {
    let bits = usize::BITS - (size | 15).leading_zeros();
    (bits as usize - 4).min(CLASSES - 1)
}

/// Counts the bytes the program asked for (not the allocator's header or slack).
struct Counter;

impl Counter {
    fn note(group: &AllocationGroupId, size: usize, sign: i64) {
        let sfu = group.as_usize().get() == SFU_GROUP.load(Ordering::Relaxed);
        LIVE[sfu as usize].fetch_add(sign * size as i64, Ordering::Relaxed);
        if sfu {
            let c = class(size);
            CLASS_BYTES[c].fetch_add(sign * size as i64, Ordering::Relaxed);
            CLASS_COUNT[c].fetch_add(sign, Ordering::Relaxed);
            // The tracker's own allocations are not tracked, so the map may allocate.
            if size >= LARGE
                && let Ok(mut large) = LARGE_BLOCKS.lock()
            {
                *large.entry(size).or_default() += sign;
            }
        }
    }
}

impl AllocationTracker for Counter {
    fn allocated(&self, _addr: usize, size: usize, _wrapped: usize, group: AllocationGroupId) {
        Counter::note(&group, size, 1);
    }

    fn deallocated(
        &self,
        _addr: usize,
        size: usize,
        _wrapped: usize,
        source: AllocationGroupId,
        _current: AllocationGroupId,
    ) {
        Counter::note(&source, size, -1);
    }
}

/// Runs SFU work in the SFU's allocation group (see `support::scope`).
fn run_as_sfu(work: &mut dyn FnMut()) {
    SFU_TOKEN.with(|token| {
        let mut token = token.borrow_mut();
        match token.as_mut() {
            Some(token) => {
                let _guard = token.enter();
                work();
            }
            None => work(),
        }
    })
}

fn start_counting() {
    let token = AllocationGroupToken::register().expect("an allocation group");
    SFU_GROUP.store(token.id().as_usize().get(), Ordering::Relaxed);
    SFU_TOKEN.with(|t| *t.borrow_mut() = Some(token));
    AllocationRegistry::set_global_tracker(Counter).expect("the only tracker");
    support::scope::HOOK
        .set(run_as_sfu)
        .expect("the only scope hook");
    AllocationRegistry::enable_tracking();
}

struct Args {
    subscribers: Vec<usize>,
    seconds: f64,
    exit_after_reading: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        subscribers: vec![10, 50, 200],
        seconds: 5.0,
        exit_after_reading: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--exit-after-reading" {
            args.exit_after_reading = true;
            continue;
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--subscribers" => {
                args.subscribers = value
                    .split(',')
                    .map(|n| {
                        n.trim()
                            .parse()
                            .map_err(|_| format!("--subscribers: not a number: {n}"))
                    })
                    .collect::<Result<_, _>>()?
            }
            "--seconds" => {
                args.seconds = value
                    .parse()
                    .map_err(|_| format!("--seconds: not a number: {value}"))?
            }
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    if args.subscribers.iter().any(|&n| n == 0 || n > 60_000) {
        return Err("--subscribers: each 1 to 60000".into());
    }
    if !(args.seconds > 0.0 && args.seconds <= 600.0) {
        return Err("--seconds: more than 0, at most 600".into());
    }
    Ok(args)
}

fn address(i: usize) -> String {
    format!(
        "10.{}.{}.{}:4000",
        1 + i / 62_500,
        (i / 250) % 250,
        2 + i % 250
    )
}

fn sfu_live() -> i64 {
    LIVE[1].load(Ordering::Relaxed)
}

fn classes() -> [(i64, i64); CLASSES] {
    std::array::from_fn(|i| {
        (
            CLASS_BYTES[i].load(Ordering::Relaxed),
            CLASS_COUNT[i].load(Ordering::Relaxed),
        )
    })
}

struct Reading {
    n: usize,
    base: i64,
    live: i64,
    browsers_per_peer: f64,
    classes: [(i64, i64); CLASSES],
    /// Large SFU blocks that came with the subscribers: size, count.
    large: Vec<(usize, i64)>,
}

fn large_blocks() -> BTreeMap<usize, i64> {
    LARGE_BLOCKS.lock().map(|l| l.clone()).unwrap_or_default()
}

fn measure(n: usize, seconds: Duration, exit_after: bool) -> Reading {
    let mut net = Net::new();
    net.join(
        "r1",
        "teacher",
        "10.0.0.2:4000",
        &[MediaKind::Audio, MediaKind::Video],
    );
    net.allow("teacher", true, true);
    net.client_mut("teacher").sending = true;
    net.run_for(seconds);
    net.events.clear();
    net.events.shrink_to_fit();
    let base = sfu_live();
    let base_classes = classes();
    let base_large = large_blocks();
    let browsers_base = LIVE[0].load(Ordering::Relaxed);

    for i in 0..n {
        net.join("r1", &format!("s{i}"), &address(i), &[]);
    }
    let everyone = |n: &Net| {
        n.clients.iter().skip(1).all(|c| {
            !c.frames(MediaKind::Video).is_empty() && !c.frames(MediaKind::Audio).is_empty()
        })
    };
    net.run_until(
        Duration::from_secs(30),
        "every subscriber receives audio and video",
        everyone,
    );
    net.run_for(seconds);
    net.events.clear();
    net.events.shrink_to_fit();
    let live = sfu_live();
    let now = classes();
    let large = large_blocks()
        .into_iter()
        .map(|(size, count)| (size, count - base_large.get(&size).copied().unwrap_or(0)))
        .filter(|&(_, count)| count != 0)
        .collect();
    let browsers = LIVE[0].load(Ordering::Relaxed) - browsers_base;
    if exit_after {
        // For heaptrack: what is live now shows as leaked, with where it was allocated.
        println!(
            "SFU KiB per subscriber {:.1}",
            (live - base) as f64 / n as f64 / 1024.0
        );
        std::process::exit(0);
    }
    drop(net);
    Reading {
        n,
        base,
        live,
        browsers_per_peer: browsers as f64 / n as f64 / 1024.0,
        classes: std::array::from_fn(|i| {
            (now[i].0 - base_classes[i].0, now[i].1 - base_classes[i].1)
        }),
        large,
    }
}

fn class_name(i: usize) -> String {
    let kib = |b: usize| {
        if b >= 1024 {
            format!("{} KiB", b / 1024)
        } else {
            format!("{b} B")
        }
    };
    if i == CLASSES - 1 {
        format!(">= {}", kib(1 << (i + 3)))
    } else if i == 0 {
        format!("< {}", kib(1 << (i + 4)))
    } else {
        format!("{} - {}", kib(1 << (i + 3)), kib(1 << (i + 4)))
    }
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("peer_memory: {e}");
            eprintln!(
                "usage: peer_memory [--subscribers N,N,...] [--seconds S] [--exit-after-reading]"
            );
            std::process::exit(2);
        }
    };
    start_counting();
    let seconds = Duration::from_secs_f64(args.seconds);
    let readings: Vec<Reading> = args
        .subscribers
        .iter()
        .map(|&n| measure(n, seconds, args.exit_after_reading))
        .collect();

    println!(
        "simulated seconds of media before each reading: {}",
        args.seconds
    );
    println!();
    println!(
        "| N | SFU live base (KiB) | SFU live with N (KiB) | SFU KiB per subscriber | browser KiB per peer |"
    );
    println!("|---|---|---|---|---|");
    for r in &readings {
        println!(
            "| {} | {:.0} | {:.0} | {:.1} | {:.1} |",
            r.n,
            r.base as f64 / 1024.0,
            r.live as f64 / 1024.0,
            (r.live - r.base) as f64 / r.n as f64 / 1024.0,
            r.browsers_per_peer,
        );
    }
    let Some(last) = readings.last() else {
        return;
    };
    println!();
    println!(
        "SFU live bytes per subscriber by allocation size (N = {}):",
        last.n
    );
    println!();
    println!("| allocation size | KiB per subscriber | blocks per subscriber |");
    println!("|---|---|---|");
    for (i, &(bytes, count)) in last.classes.iter().enumerate() {
        if bytes.abs() < 512 * last.n as i64 {
            continue;
        }
        println!(
            "| {} | {:.1} | {:.1} |",
            class_name(i),
            bytes as f64 / last.n as f64 / 1024.0,
            count as f64 / last.n as f64,
        );
    }
    println!();
    println!(
        "SFU blocks of {} KiB or more that came with the subscribers (N = {}):",
        LARGE / 1024,
        last.n
    );
    println!();
    println!("| block size (bytes) | blocks per subscriber |");
    println!("|---|---|");
    for &(size, count) in &last.large {
        if count.unsigned_abs() * 10 < last.n as u64 && size < 128 * 1024 {
            continue;
        }
        println!("| {size} | {:.2} |", count as f64 / last.n as f64);
    }
}

//! The cost of forwarding, counted in instructions: one publisher (camera and microphone) and
//! N subscribers in one room, on the SFU's sans-IO API with a simulated clock (the media tests'
//! in-memory browsers). Run it under callgrind, counting only inside the SFU's entry points,
//! twice with different lengths: the difference in instructions over the difference in
//! forwarded packets is what one more forwarded packet costs, without the set-up and without
//! the simulated browsers. `scripts/bench-forward.sh` does exactly that and prints the figure.
//!
//! ```text
//! cargo run --release -p lectern-sfu --example forward_cost -- --subscribers 50 --seconds 2
//! ```
//!
//! On its own it prints what it forwarded and the wall-clock time per forwarded packet (that
//! one is noisy on a shared machine; the instruction count is not).
//!
//! `--batch on` (the default) hands the SFU what arrives at one simulated instant (every 2 ms)
//! as one batch, as the media worker does with one read of its socket (`Sfu::begin_batch`);
//! `--batch off` hands it one datagram at a time, each packet sent to the subscribers as it is
//! forwarded (the SFU before batches). `subscriber_sends` is how many passes through the
//! subscribers' `Rtc`s sent them RTP.

#[path = "../tests/media/support.rs"]
#[allow(dead_code)]
mod support;

use std::time::{Duration, Instant};

use str0m::media::MediaKind;
use support::Net;

struct Args {
    subscribers: usize,
    seconds: f64,
    batch: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        subscribers: 50,
        seconds: 2.0,
        batch: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--subscribers" => {
                args.subscribers = value
                    .parse()
                    .map_err(|_| format!("--subscribers: not a number: {value}"))?
            }
            "--seconds" => {
                args.seconds = value
                    .parse()
                    .map_err(|_| format!("--seconds: not a number: {value}"))?
            }
            "--batch" => {
                args.batch = match value.as_str() {
                    "on" => true,
                    "off" => false,
                    _ => return Err(format!("--batch: on or off, not {value}")),
                }
            }
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    if args.subscribers == 0 || args.subscribers > 60_000 {
        return Err("--subscribers: 1 to 60000".into());
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

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("forward_cost: {e}");
            eprintln!("usage: forward_cost [--subscribers N] [--seconds S] [--batch on|off]");
            std::process::exit(2);
        }
    };
    let mut net = Net::new();
    net.batch = args.batch;
    net.join(
        "r1",
        "teacher",
        "10.0.0.2:4000",
        &[MediaKind::Audio, MediaKind::Video],
    );
    net.allow("teacher", true, true);
    net.client_mut("teacher").sending = true;
    net.run_for(Duration::from_millis(200));
    for i in 0..args.subscribers {
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

    let before = net.sfu.stats();
    let started = Instant::now();
    net.run_for(Duration::from_secs_f64(args.seconds));
    let wall = started.elapsed();
    let after = net.sfu.stats();

    let received = after.rtp_received - before.rtp_received;
    let forwarded = after.rtp_forwarded - before.rtp_forwarded;
    println!("subscribers {}", args.subscribers);
    println!("simulated_seconds {}", args.seconds);
    println!("rtp_received {received}");
    println!("rtp_forwarded {forwarded}");
    println!("rtp_forwarded_total {}", after.rtp_forwarded);
    let sends = after.subscriber_sends - before.subscriber_sends;
    println!("subscriber_sends {sends}");
    if sends > 0 {
        println!("packets_per_send {:.2}", forwarded as f64 / sends as f64);
    }
    // Wall clock of the whole window, simulated browsers included: an upper bound only.
    if forwarded > 0 {
        println!(
            "wall_ns_per_forwarded_packet_with_browsers {:.0}",
            wall.as_nanos() as f64 / forwarded as f64
        );
    }
}

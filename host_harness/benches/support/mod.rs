//! Timing shared by the benchmarks: paired runs in alternating order, wall and CPU time.
//!
//! On a shared 2-core machine a run's wall time drifts by several percent, and whichever side
//! runs second in a pair inherits the first side's allocator and cache state. So each pair
//! alternates which side goes first, the reported ratio is the median of the per-pair ratios
//! (drift cancels within a pair), and the CPU time all threads of the process spent is
//! reported beside it (it does not count time spent waiting for a core).

#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, Instant};

/// CPU time consumed so far by every thread of this process (from `/proc/self/task/*/schedstat`,
/// nanosecond resolution; zero where it is not available).
pub fn process_cpu_time() -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return Duration::ZERO };
    let nanos: u64 = tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()))
        .sum();
    Duration::from_nanos(nanos)
}

/// One timed run: wall and process CPU time.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub wall: Duration,
    pub cpu: Duration,
}

pub async fn measure<F: Future<Output = ()>>(run: F) -> Sample {
    let (cpu, wall) = (process_cpu_time(), Instant::now());
    run.await;
    Sample { wall: wall.elapsed(), cpu: process_cpu_time().saturating_sub(cpu) }
}

/// Medians of `runs` paired runs of a baseline and a candidate (after one warm-up each),
/// alternating which goes first.
#[derive(Debug, Clone, Copy)]
pub struct Comparison {
    pub baseline_ms: f64,
    pub candidate_ms: f64,
    /// Median of the per-pair wall-time ratios candidate / baseline.
    pub wall_ratio: f64,
    /// Median of the per-pair CPU-time ratios candidate / baseline.
    pub cpu_ratio: f64,
}

pub async fn compare<B, BF, C, CF>(runs: usize, mut baseline: B, mut candidate: C) -> Comparison
where
    B: FnMut() -> BF,
    BF: Future<Output = ()>,
    C: FnMut() -> CF,
    CF: Future<Output = ()>,
{
    baseline().await;
    candidate().await;
    let (mut b, mut c) = (Vec::new(), Vec::new());
    for i in 0..runs.max(1) {
        if i % 2 == 0 {
            b.push(measure(baseline()).await);
            c.push(measure(candidate()).await);
        } else {
            c.push(measure(candidate()).await);
            b.push(measure(baseline()).await);
        }
    }
    let ms = |v: &[Sample]| median(v.iter().map(|s| s.wall.as_secs_f64() * 1e3).collect());
    let ratio = |f: fn(&Sample) -> Duration| {
        median(b.iter().zip(&c).map(|(b, c)| f(c).as_secs_f64() / f(b).as_secs_f64().max(1e-9)).collect())
    };
    Comparison { baseline_ms: ms(&b), candidate_ms: ms(&c), wall_ratio: ratio(|s| s.wall), cpu_ratio: ratio(|s| s.cpu) }
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    v[v.len() / 2]
}

//! Percentiles and the printed table.

use std::fmt::Write as _;
use std::time::Duration;

/// Timings of one operation, sorted once when read.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    sorted: Vec<Duration>,
}

impl Samples {
    pub fn new(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        Self { sorted: samples }
    }

    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// The sample at `per_mille`/1000 of the way through, nearest rank.
    pub fn percentile(&self, per_mille: usize) -> Duration {
        let index = (self.sorted.len().saturating_sub(1) * per_mille).div_ceil(1000);
        self.sorted.get(index).copied().unwrap_or_default()
    }

    pub fn p50(&self) -> Duration {
        self.percentile(500)
    }

    pub fn p99(&self) -> Duration {
        self.percentile(990)
    }

    pub fn mean(&self) -> Duration {
        let total: Duration = self.sorted.iter().sum();
        u32::try_from(self.sorted.len())
            .ok()
            .filter(|n| *n > 0)
            .map_or(Duration::ZERO, |n| total / n)
    }
}

/// `a / b`, as a plain number.
pub fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-12)
}

/// How many times faster org-mesh took `ours` than the peer took `peer`,
/// said as "slower" when it was not, so that no row reads "0.9x faster".
pub fn times_faster(peer: Duration, ours: Duration) -> String {
    let r = ratio(peer, ours);
    if r >= 1.0 {
        format!("{r:.1}x faster")
    } else {
        format!("{:.1}x slower", 1.0 / r)
    }
}

/// A duration in the unit that keeps three significant digits readable.
pub fn human(d: Duration) -> String {
    let ns = d.as_secs_f64() * 1e9;
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.2} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// Rows of a Markdown table, printed in the order they were added.
#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<[String; 5]>,
}

impl Table {
    /// One comparison: what, org-mesh's figure, the peer's, the ratio in
    /// org-mesh's favour and the target it is held to.
    pub fn row(&mut self, what: &str, ours: &str, peer: &str, ratio: &str, target: &str) {
        self.rows.push([
            what.into(),
            ours.into(),
            peer.into(),
            ratio.into(),
            target.into(),
        ]);
    }

    pub fn render(&self) -> String {
        let mut out =
            String::from("| measure | org-mesh | peer | ratio | target |\n|---|---|---|---|---|\n");
        for row in &self.rows {
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_nearest_rank() {
        let samples = Samples::new((1..=100).rev().map(Duration::from_micros).collect());
        assert_eq!(samples.p50(), Duration::from_micros(51));
        assert_eq!(samples.p99(), Duration::from_micros(100));
        assert_eq!(samples.percentile(0), Duration::from_micros(1));
        assert_eq!(Samples::default().p99(), Duration::ZERO);
    }

    #[test]
    fn human_units() {
        assert_eq!(human(Duration::from_nanos(850)), "850 ns");
        assert_eq!(human(Duration::from_nanos(8_500)), "8.50 µs");
        assert_eq!(human(Duration::from_millis(12)), "12.00 ms");
    }

    #[test]
    fn a_ratio_under_one_reads_slower() {
        let ms = Duration::from_millis;
        assert_eq!(times_faster(ms(72), ms(8)), "9.0x faster");
        assert_eq!(times_faster(ms(72), ms(79)), "1.1x slower");
    }
}

//! Small statistics: a fixed-bucket delay histogram (1 µs buckets, so a p99 near
//! the 1 ms target is exact to the microsecond) and medians over repetitions.

/// Delays above this land in one overflow bucket and are reported as ">= 200 ms".
const MAX_US: usize = 200_000;

/// One-way delay histogram with 1 µs buckets.
#[derive(Debug, Clone)]
pub struct Histogram {
    buckets: Vec<u32>,
    overflow: u64,
    count: u64,
    /// Packets whose receive stamp preceded the send stamp (clock step): counted, not binned.
    negative: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            buckets: vec![0; MAX_US],
            overflow: 0,
            count: 0,
            negative: 0,
        }
    }
}

impl Histogram {
    pub fn record_ns(&mut self, delay_ns: i64) {
        if delay_ns < 0 {
            self.negative += 1;
            return;
        }
        self.count += 1;
        let us = usize::try_from(delay_ns / 1000).unwrap_or(usize::MAX);
        match self.buckets.get_mut(us) {
            Some(b) => *b = b.saturating_add(1),
            None => self.overflow += 1,
        }
    }

    /// Samples whose receive stamp preceded the send stamp (the clock stepped).
    pub fn negative(&self) -> u64 {
        self.negative
    }

    /// The delay in microseconds below which `q` (0..=1) of the samples lie;
    /// `None` without samples. Overflowed samples report as `MAX_US`.
    pub fn quantile_us(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (us, n) in self.buckets.iter().enumerate() {
            seen += u64::from(*n);
            if seen >= rank {
                return Some(us as u64);
            }
        }
        Some(MAX_US as u64)
    }
}

/// Median of the finite values; `None` when there are none. With an even count the
/// mean of the two middle values.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v.get(mid).copied()
    } else {
        Some((v[mid - 1] + v[mid]) / 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_exact_to_the_microsecond() {
        let mut h = Histogram::default();
        for us in 1..=1000i64 {
            h.record_ns(us * 1000 + 500);
        }
        assert_eq!(h.count, 1000);
        assert_eq!(h.quantile_us(0.5), Some(500));
        assert_eq!(h.quantile_us(0.99), Some(990));
        assert_eq!(h.quantile_us(1.0), Some(1000));
    }

    #[test]
    fn overflow_and_negative_samples_are_kept_apart() {
        let mut h = Histogram::default();
        h.record_ns(-5);
        h.record_ns(10_000_000_000);
        h.record_ns(3_000);
        assert_eq!(h.negative(), 1);
        assert_eq!(h.count, 2);
        assert_eq!(h.quantile_us(0.5), Some(3));
        assert_eq!(h.quantile_us(0.99), Some(200_000));
        assert_eq!(Histogram::default().quantile_us(0.5), None);
    }

    #[test]
    fn median_of_odd_even_and_empty_sets() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[f64::NAN, 7.0]), Some(7.0));
        assert_eq!(median(&[]), None);
    }
}

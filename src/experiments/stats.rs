//! The summaries the papers plot: mean, 1st and 99th percentiles, and
//! probability densities, over integer samples (keys per node, hops,
//! timeouts).

use serde::Serialize;

/// Mean and percentiles of a sample, as the papers' error bars show them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    /// How many values.
    pub n: usize,
    /// Arithmetic mean.
    pub mean: f64,
    /// 1st percentile (nearest rank).
    pub p1: f64,
    /// 99th percentile (nearest rank).
    pub p99: f64,
}

/// Counts of each value of an integer sample: the sample without keeping
/// every value, so a million lookups cost a few dozen counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    counts: Vec<u64>,
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Histogram {
        Histogram::default()
    }

    /// Counts one more `v`.
    pub fn add(&mut self, v: u64) {
        let i = v as usize;
        if i >= self.counts.len() {
            self.counts.resize(i + 1, 0);
        }
        self.counts[i] += 1;
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        if other.counts.len() > self.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
    }

    /// How many values were counted.
    pub fn len(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sum of the values counted.
    pub fn total(&self) -> u64 {
        self.counts
            .iter()
            .enumerate()
            .map(|(v, c)| v as u64 * c)
            .sum()
    }

    /// The smallest value v such that at least `q` of the sample is ≤ v
    /// (nearest rank: the 1st percentile of 100 values is the smallest).
    pub fn quantile(&self, q: f64) -> u64 {
        let n = self.len();
        if n == 0 {
            return 0;
        }
        let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
        let mut seen = 0;
        for (v, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return v as u64;
            }
        }
        (self.counts.len() - 1) as u64
    }

    /// Mean and percentiles.
    pub fn summary(&self) -> Summary {
        let n = self.len();
        Summary {
            n: n as usize,
            mean: if n == 0 {
                0.0
            } else {
                self.total() as f64 / n as f64
            },
            p1: self.quantile(0.01) as f64,
            p99: self.quantile(0.99) as f64,
        }
    }

    /// The probability of each value, from 0 to the largest counted.
    pub fn pdf(&self) -> Vec<(u64, f64)> {
        let n = self.len().max(1) as f64;
        self.counts
            .iter()
            .enumerate()
            .map(|(v, &c)| (v as u64, c as f64 / n))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut h = Histogram::new();
        for v in 1..=100 {
            h.add(v);
        }
        let s = h.summary();
        assert_eq!((s.n, s.p1, s.p99), (100, 1.0, 99.0));
        assert_eq!(s.mean, 50.5);
        assert_eq!(h.quantile(1.0), 100);
        let mut other = Histogram::new();
        other.add(0);
        h.merge(&other);
        assert_eq!(h.quantile(0.0), 0);
        assert_eq!(h.len(), 101);
        let pdf = h.pdf();
        assert!((pdf.iter().map(|p| p.1).sum::<f64>() - 1.0).abs() < 1e-12);
        assert_eq!(Histogram::new().summary().mean, 0.0);
    }
}

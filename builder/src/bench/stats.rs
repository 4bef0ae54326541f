//! Summaries of repeated samples.

/// The `p`-th percentile (0-100) of `samples` by linear interpolation between closest ranks;
/// 0 for no samples.
pub fn percentile(samples: &[f64], p: f64) -> f64 {
    let mut sorted: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
    if sorted.is_empty() {
        return 0.0;
    }
    sorted.sort_by(f64::total_cmp);
    let rank = (p.clamp(0.0, 100.0) / 100.0) * (sorted.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
}

pub fn median(samples: &[f64]) -> f64 {
    percentile(samples, 50.0)
}

/// The samples behind a median, in the order they were taken: `1530/1480/1500`.
pub fn each_ms(each: &[u64]) -> String {
    each.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join("/")
}

/// The median of whole milliseconds, rounded.
pub fn median_ms(samples: &[u64]) -> u64 {
    let samples: Vec<f64> = samples.iter().map(|&ms| ms as f64).collect();
    median(&samples).round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
        assert_eq!(median_ms(&[1747, 2170, 1701]), 1747);
    }

    #[test]
    fn percentiles_interpolate_and_clamp() {
        let xs = [10.0, 20.0, 30.0, 40.0, 50.0];
        assert_eq!(percentile(&xs, 0.0), 10.0);
        assert_eq!(percentile(&xs, 100.0), 50.0);
        assert_eq!(percentile(&xs, 90.0), 46.0);
        assert_eq!(percentile(&xs, 150.0), 50.0);
        assert_eq!(percentile(&[f64::NAN, 7.0], 50.0), 7.0);
    }
}

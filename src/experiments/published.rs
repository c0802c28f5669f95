//! What the papers published for each experiment, from `data/paper.json`
//! (compiled in): the table or figure each number comes from, and whether
//! it was printed (a table, a sentence) or read off a plot.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One published point; a figure may give only some of the three.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
pub struct Published {
    /// Where on the x axis.
    pub x: f64,
    /// The mean, if given.
    #[serde(default)]
    pub mean: Option<f64>,
    /// The 1st percentile, if given.
    #[serde(default)]
    pub p1: Option<f64>,
    /// The 99th percentile, if given.
    #[serde(default)]
    pub p99: Option<f64>,
}

/// An experiment's published numbers.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Paper {
    /// The paper, section and figure or table.
    pub source: String,
    /// "table", "stated" (in the text) or "read off the figure".
    pub kind: String,
    /// What the paper says about it, briefly.
    pub note: String,
    /// Points by measure name (as in [`super::Measure::name`]).
    pub measures: BTreeMap<String, Vec<Published>>,
    /// The paper's setup, as the flags of [`super::Figure::setup`] name it:
    /// numbers are compared only when a run used the same.
    #[serde(default)]
    pub setup: BTreeMap<String, String>,
}

/// The data file, compiled in.
const DATA: &str = include_str!("../../data/paper.json");

/// Every experiment's published numbers, by key (`load-balance`,
/// `load-balance-vnodes`, `path-length`, `failures`, `timeouts`, `churn`).
pub fn all() -> BTreeMap<String, Paper> {
    serde_json::from_str(DATA).expect("data/paper.json is valid (a unit test reads it)")
}

/// The published numbers for a figure made by `experiment` reproducing
/// `reproduces`.
pub fn for_figure(experiment: &str, reproduces: &str) -> Option<Paper> {
    let key = if reproduces.contains("Fig. 9") {
        format!("{experiment}-vnodes")
    } else {
        experiment.to_owned()
    };
    all().remove(&key)
}

impl Paper {
    /// How a run's setup differs from the paper's, flag by flag ("nodes
    /// 1000 (the paper: 10000)"); empty when the numbers compare.
    pub fn differences(&self, setup: &[(String, String)]) -> Vec<String> {
        self.setup
            .iter()
            .filter_map(|(k, theirs)| {
                let ours = setup.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
                (ours != Some(theirs.as_str()))
                    .then(|| format!("{k} {} (the paper: {theirs})", ours.unwrap_or("not set")))
            })
            .collect()
    }

    /// The published point of `measure` at `x`, if any.
    pub fn at(&self, measure: &str, x: f64) -> Option<Published> {
        self.measures
            .get(measure)?
            .iter()
            .copied()
            .find(|p| (p.x - x).abs() <= 1e-9 * x.abs().max(1.0))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_data_file_reads() {
        let all = super::all();
        assert!(all.len() >= 5);
        let t = &all["timeouts"];
        assert_eq!(t.at("path length", 0.5).unwrap().mean, Some(5.09));
        assert_eq!(t.at("timeouts", 0.3).unwrap().p99, Some(5.0));
    }
}

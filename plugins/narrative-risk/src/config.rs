//! The operator's configuration: the alert threshold, each signal's weight,
//! the windows, and phrases to add to the built-in cues.

use std::collections::BTreeMap;

use serde::Deserialize;

use org_mesh_plugin::types::PluginError;

use crate::signal::{Ask, Cue, Named, Phrased, Signal};
use crate::text::Phrase;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// A campaign whose risk score reaches this is reported.
    #[serde(rename = "riskScore")]
    pub risk_score: f64,
    /// Each signal's weight in the campaign's risk score, from 0 to 1.
    pub weights: BTreeMap<String, f64>,
    /// Suspect messages this close in time, about one target, belong to
    /// one campaign.
    pub window_days: f64,
    /// An account younger than this when it wrote is fresh.
    pub fresh_account_days: f64,
    /// Earlier ordinary messages (without pressure cues or privilege asks)
    /// in the twin that make an author established.
    pub established_messages: usize,
    /// Accounts created within this many days of each other form a cohort.
    pub cohort_days: f64,
    /// Two messages at least this similar (estimated Jaccard similarity of
    /// their four-character shingles) are near-duplicates.
    pub duplicate_similarity: f64,
    /// Shorter messages are never compared: "+1" is not a campaign.
    pub duplicate_min_words: usize,
    /// A day is a burst when its messages in a repository reach this many
    /// times the daily mean of the days before it.
    pub burst_factor: f64,
    /// And at least this many messages.
    pub burst_min_messages: usize,
    /// The days before that form the baseline.
    pub baseline_days: f64,
    /// A write grant this long after a campaign's last message joins it.
    pub grant_within_days: f64,
    /// At most this many campaigns are reported per evaluation; the rest
    /// are summed up in one storm finding, so that a flood of signals
    /// cannot flood the people who review them.
    pub max_campaigns: usize,
    /// Logins never treated as campaign participants (bots, mirrors).
    pub ignore_accounts: Vec<String>,
    /// Phrases added to the built-in cues, by cue name.
    pub cues: BTreeMap<String, Vec<String>>,
    /// Phrases added to the built-in privilege asks, by ask name.
    pub asks: BTreeMap<String, Vec<String>>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            risk_score: 0.6,
            weights: BTreeMap::new(),
            window_days: 30.0,
            fresh_account_days: 90.0,
            established_messages: 5,
            cohort_days: 14.0,
            duplicate_similarity: 0.5,
            duplicate_min_words: 5,
            burst_factor: 4.0,
            burst_min_messages: 5,
            baseline_days: 28.0,
            grant_within_days: 180.0,
            max_campaigns: 20,
            ignore_accounts: Vec::new(),
            cues: BTreeMap::new(),
            asks: BTreeMap::new(),
        }
    }
}

/// The configuration with its phrases compiled and weights resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    pub config: Config,
    pub weights: BTreeMap<Signal, f64>,
    pub cues: Vec<(Cue, Phrase)>,
    pub asks: Vec<(Ask, Phrase)>,
}

impl Settings {
    /// Parses and checks the JSON configuration, naming the field at fault.
    pub fn parse(json: &str) -> Result<Self, PluginError> {
        let json = if json.trim().is_empty() { "{}" } else { json };
        let config: Config = serde_json::from_str(json)
            .map_err(|e| PluginError::InvalidConfig(format!("config: {e}")))?;
        let invalid = |field: &str, problem: String| {
            Err(PluginError::InvalidConfig(format!("{field}: {problem}")))
        };
        if !(0.0..=1.0).contains(&config.risk_score) {
            return invalid(
                "riskScore",
                format!("{} is outside 0 to 1", config.risk_score),
            );
        }
        if !(0.0..=1.0).contains(&config.duplicate_similarity) {
            return invalid(
                "duplicate_similarity",
                format!("{} is outside 0 to 1", config.duplicate_similarity),
            );
        }
        for (field, days) in [
            ("window_days", config.window_days),
            ("fresh_account_days", config.fresh_account_days),
            ("cohort_days", config.cohort_days),
            ("baseline_days", config.baseline_days),
            ("grant_within_days", config.grant_within_days),
        ] {
            if !(days.is_finite() && days > 0.0) {
                return invalid(field, format!("{days} is not a positive number of days"));
            }
        }
        if !(config.burst_factor.is_finite() && config.burst_factor >= 1.0) {
            return invalid(
                "burst_factor",
                format!("{} is below 1", config.burst_factor),
            );
        }
        let mut weights: BTreeMap<Signal, f64> = Signal::ALL
            .iter()
            .map(|s| (*s, s.default_weight()))
            .collect();
        for (name, weight) in &config.weights {
            let Some(signal) = Signal::parse(name) else {
                return invalid(
                    &format!("weights.{name}"),
                    format!("is not a signal; signals are {}", Signal::names()),
                );
            };
            if !(0.0..=1.0).contains(weight) {
                return invalid(
                    &format!("weights.{name}"),
                    format!("{weight} is outside 0 to 1"),
                );
            }
            weights.insert(signal, *weight);
        }
        let cues = compile("cues", &config.cues)?;
        let asks = compile("asks", &config.asks)?;
        Ok(Self {
            config,
            weights,
            cues,
            asks,
        })
    }

    pub fn weight(&self, signal: Signal) -> f64 {
        self.weights.get(&signal).copied().unwrap_or_default()
    }
}

/// The built-in phrases of every kind, then the operator's, which must name
/// a kind and have words; errors name the field, as in `cues.urgency[2]`.
fn compile<K: Phrased>(
    field: &str,
    extra: &BTreeMap<String, Vec<String>>,
) -> Result<Vec<(K, Phrase)>, PluginError> {
    let mut out: Vec<(K, Phrase)> = Vec::new();
    for kind in K::ALL {
        for text in kind.phrases() {
            out.extend(Phrase::new(text).map(|p| (*kind, p)));
        }
    }
    for (name, phrases) in extra {
        let Some(kind) = K::parse(name) else {
            return Err(PluginError::InvalidConfig(format!(
                "{field}.{name}: is not a{} {}; they are {}",
                if K::WHAT.starts_with(['a', 'e', 'i', 'o', 'u']) {
                    "n"
                } else {
                    ""
                },
                K::WHAT,
                K::names()
            )));
        };
        for (i, text) in phrases.iter().enumerate() {
            let phrase = Phrase::new(text).ok_or_else(|| {
                PluginError::InvalidConfig(format!("{field}.{name}[{i}]: has no words"))
            })?;
            out.push((kind, phrase));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_takes_the_defaults() {
        let settings = Settings::parse("{}").unwrap();
        assert_eq!(settings.config.risk_score, 0.6);
        assert!(settings.cues.len() > 20 && settings.asks.len() > 20);
        assert_eq!(
            settings.weight(Signal::PrivilegeGrant),
            Signal::PrivilegeGrant.default_weight()
        );
        assert!(Settings::parse("").is_ok());
    }

    #[test]
    fn errors_name_the_field() {
        for (json, field) in [
            (r#"{"riskScore": 1.5}"#, "riskScore"),
            (r#"{"weights": {"vibes": 0.2}}"#, "weights.vibes"),
            (r#"{"weights": {"pressure": -1}}"#, "weights.pressure"),
            (r#"{"window_days": 0}"#, "window_days"),
            (r#"{"cues": {"urgency": ["  "]}}"#, "cues.urgency[0]"),
            (r#"{"asks": {"keys": ["x"]}}"#, "asks.keys"),
            (r#"{"risk_score": 0.5}"#, "risk_score"),
            (r#"{"burst_factor": 0.5}"#, "burst_factor"),
        ] {
            let result = Settings::parse(json);
            assert!(
                matches!(&result, Err(PluginError::InvalidConfig(m)) if m.contains(field)),
                "{json}: {result:?} should name {field}"
            );
        }
    }

    #[test]
    fn operator_phrases_are_added() {
        let settings = Settings::parse(r#"{"cues": {"urgency": ["by friday"]}}"#).unwrap();
        let text = crate::text::words("Ship it by Friday");
        assert!(
            settings
                .cues
                .iter()
                .any(|(c, p)| *c == Cue::Urgency && p.found_in(&text))
        );
    }
}

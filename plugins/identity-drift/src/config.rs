//! The operator's configuration: the branch protection baseline.

use org_mesh_plugin::types::PluginError;

#[derive(Debug, Clone, Default)]
pub struct Config {
    pub baseline: Baseline,
}

/// The weakest default-branch protection the organisation accepts; a field
/// left out is not checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Baseline {
    pub enforce_admins: Option<bool>,
    pub required_approving_review_count: Option<i64>,
    pub dismiss_stale_reviews: Option<bool>,
    pub require_code_owner_reviews: Option<bool>,
    pub required_status_checks_strict: Option<bool>,
    pub allow_force_pushes: Option<bool>,
    pub allow_deletions: Option<bool>,
    pub required_linear_history: Option<bool>,
    pub required_signatures: Option<bool>,
    pub required_conversation_resolution: Option<bool>,
}

/// Which way a baseline field is stronger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stronger {
    /// `true` is stronger (a requirement).
    True,
    /// `false` is stronger (a permission).
    False,
}

/// A baseline field and its demand.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Demand {
    Flag(bool, Stronger),
    AtLeast(i64),
}

impl Baseline {
    pub fn is_empty(&self) -> bool {
        self.fields().is_empty()
    }

    /// The fields the baseline sets, in declaration order.
    pub fn fields(&self) -> Vec<(&'static str, Demand)> {
        let flag = |v: Option<bool>, s| v.map(|v| Demand::Flag(v, s));
        let fields = [
            ("enforce_admins", flag(self.enforce_admins, Stronger::True)),
            (
                "required_approving_review_count",
                self.required_approving_review_count.map(Demand::AtLeast),
            ),
            (
                "dismiss_stale_reviews",
                flag(self.dismiss_stale_reviews, Stronger::True),
            ),
            (
                "require_code_owner_reviews",
                flag(self.require_code_owner_reviews, Stronger::True),
            ),
            (
                "required_status_checks_strict",
                flag(self.required_status_checks_strict, Stronger::True),
            ),
            (
                "allow_force_pushes",
                flag(self.allow_force_pushes, Stronger::False),
            ),
            (
                "allow_deletions",
                flag(self.allow_deletions, Stronger::False),
            ),
            (
                "required_linear_history",
                flag(self.required_linear_history, Stronger::True),
            ),
            (
                "required_signatures",
                flag(self.required_signatures, Stronger::True),
            ),
            (
                "required_conversation_resolution",
                flag(self.required_conversation_resolution, Stronger::True),
            ),
        ];
        fields
            .into_iter()
            .filter_map(|(name, demand)| demand.map(|d| (name, d)))
            .collect()
    }
}

impl Config {
    /// Parses the configuration, naming the field at fault. Read by hand
    /// rather than through serde so that a wrong type is reported as
    /// `baseline.enforce_admins` rather than as a column number.
    pub fn parse(json: &str) -> Result<Self, PluginError> {
        if json.trim().is_empty() {
            return Ok(Self::default());
        }
        let bad = |m: String| PluginError::InvalidConfig(m);
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| bad(format!("config: {e}")))?;
        let serde_json::Value::Object(top) = value else {
            return Err(bad("config: must be an object".into()));
        };
        let mut config = Self::default();
        for (name, value) in top {
            match (name.as_str(), value) {
                ("baseline", serde_json::Value::Object(fields)) => {
                    config.baseline = Baseline::from_fields(fields)?;
                }
                ("baseline", _) => return Err(bad("baseline: must be an object".into())),
                (other, _) => return Err(bad(format!("{other}: unknown field"))),
            }
        }
        Ok(config)
    }
}

impl Baseline {
    fn from_fields(
        fields: serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, PluginError> {
        let mut b = Self::default();
        for (name, value) in fields {
            let flag = || {
                value.as_bool().ok_or_else(|| {
                    PluginError::InvalidConfig(format!("baseline.{name}: {value} is not a boolean"))
                })
            };
            let slot = match name.as_str() {
                "required_approving_review_count" => {
                    let count =
                        value
                            .as_i64()
                            .filter(|n| (0..=6).contains(n))
                            .ok_or_else(|| {
                                PluginError::InvalidConfig(format!(
                                    "baseline.{name}: {value} is not a count from 0 to 6"
                                ))
                            })?;
                    b.required_approving_review_count = Some(count);
                    continue;
                }
                "enforce_admins" => &mut b.enforce_admins,
                "dismiss_stale_reviews" => &mut b.dismiss_stale_reviews,
                "require_code_owner_reviews" => &mut b.require_code_owner_reviews,
                "required_status_checks_strict" => &mut b.required_status_checks_strict,
                "allow_force_pushes" => &mut b.allow_force_pushes,
                "allow_deletions" => &mut b.allow_deletions,
                "required_linear_history" => &mut b.required_linear_history,
                "required_signatures" => &mut b.required_signatures,
                "required_conversation_resolution" => &mut b.required_conversation_resolution,
                _ => {
                    return Err(PluginError::InvalidConfig(format!(
                        "baseline.{name}: unknown field"
                    )));
                }
            };
            *slot = Some(flag()?);
        }
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_checks_no_baseline() {
        assert!(matches!(Config::parse(""), Ok(c) if c.baseline.is_empty()));
        assert!(matches!(Config::parse("{}"), Ok(c) if c.baseline.is_empty()));
    }

    #[test]
    fn errors_name_the_field() {
        for (json, field) in [
            (
                r#"{"baseline":{"enforce_admin":true}}"#,
                "baseline.enforce_admin: unknown",
            ),
            (
                r#"{"baseline":{"allow_deletions":"no"}}"#,
                "baseline.allow_deletions",
            ),
            (
                r#"{"baseline":{"required_approving_review_count":9}}"#,
                "baseline.required_approving_review_count",
            ),
            (r#"{"baseline":[]}"#, "baseline: must be an object"),
            (r#"{"rules":{}}"#, "rules: unknown field"),
        ] {
            let result = Config::parse(json);
            assert!(
                matches!(&result, Err(PluginError::InvalidConfig(m)) if m.starts_with(field)),
                "{json}: {result:?}"
            );
        }
    }

    #[test]
    fn baseline_fields_come_back_in_declaration_order() {
        let config = Config::parse(
            r#"{"baseline":{"allow_force_pushes":false,"required_approving_review_count":2,"enforce_admins":true}}"#,
        );
        let names: Vec<&str> = config
            .map(|c| c.baseline.fields().into_iter().map(|(n, _)| n).collect())
            .unwrap_or_default();
        assert_eq!(
            names,
            vec![
                "enforce_admins",
                "required_approving_review_count",
                "allow_force_pushes"
            ]
        );
    }
}

# Tests for drift.rego. The host runs every test_* rule here when it loads
# the folder and refuses the whole folder if one is not exactly true.
#
# Each test brings its own tuning, so that an operator editing
# drift-rules.yaml never breaks these tests, and its own `now`, so that
# expiry checks give the same answer on every day.
package orgmesh.drift_test

import rego.v1

import data.orgmesh.drift

_tuning := {
	"rules": {
		"account-unlinked": {"severity": "low", "auto_fix": true, "enabled": true},
		"account-without-mfa": {"severity": "medium", "auto_fix": false, "enabled": true},
		"idp-offboarded-has-access": {"severity": "high", "auto_fix": true, "enabled": true},
		"idp-offboarded-has-admin": {"severity": "critical", "auto_fix": true, "enabled": true},
		"org-2fa-not-required": {"auto_fix": true, "enabled": false},
	},
	"thresholds": {"auto_fix_min_score": 0.9},
	"suppressions": [
		{
			"rule": "account-unlinked",
			"subject": "Account(github:build-bot)",
			"reason": "service account, owned by platform team",
			"expires": "2030-01-01T00:00:00Z",
		},
		{
			"rule": "account-unlinked",
			"subject": "Account(github:old-bot)",
			"reason": "waiting for deletion",
			"expires": "2024-06-01T00:00:00Z",
		},
		{
			"rule": "default-branch-unprotected",
			"subject": "*",
			"reason": "branch protection rollout in progress",
			"expires": "2030-01-01T00:00:00Z",
		},
		{
			"rule": "default-branch-unprotected",
			"subject": "Repository(github:acme/site)",
			"reason": "static site, no review needed",
			"expires": "2030-01-01T00:00:00Z",
		},
	],
}

_finding := {
	"detector": "identity-drift",
	"rule": "account-unlinked",
	"subject": {"label": "Account", "key": "github:alice"},
	"key": "",
	"title": "GitHub account github:alice is linked to no person",
	"score": 0.95,
	"default_severity": "medium",
	"attributes": {},
	"evidence_count": 1,
	"has_remedy": true,
	"now": "2025-01-15T12:00:00Z",
}

_with(fields) := object.union(_finding, fields)

# --- severity --------------------------------------------------------------

test_severity_from_tuning if {
	drift.severity == "low" with input as _finding with data.tuning as _tuning
}

test_severity_defaults_to_detector_when_rule_not_tuned if {
	f := _with({"rule": "outside-collaborator-admin", "default_severity": "high"})
	drift.severity == "high" with input as f with data.tuning as _tuning
}

test_severity_defaults_to_detector_without_tuning_file if {
	drift.severity == "medium" with input as _finding with data.tuning as {}
}

test_severity_undefined_when_unratable if {
	f := _with({"rule": "something-new", "default_severity": "urgent"})
	not drift.severity with input as f with data.tuning as _tuning
}

test_offboarded_admin_escalates_to_critical if {
	f := _with({"rule": "idp-offboarded-has-access", "attributes": {"role": "admin"}})
	drift.severity == "critical" with input as f with data.tuning as _tuning
}

test_offboarded_owner_escalates_over_tuning if {
	calm := object.union(_tuning, {"rules": {"idp-offboarded-has-access": {"severity": "info"}}})
	f := _with({"rule": "idp-offboarded-has-access", "attributes": {"role": "Owner"}})
	drift.severity == "critical" with input as f with data.tuning as calm
}

test_offboarded_member_not_escalated if {
	f := _with({"rule": "idp-offboarded-has-access", "attributes": {"role": "member"}})
	drift.severity == "high" with input as f with data.tuning as _tuning
}

test_role_that_is_not_text_is_not_escalated if {
	f := _with({"rule": "idp-offboarded-has-access", "attributes": {"role": 3}})
	drift.severity == "high" with input as f with data.tuning as _tuning
}

test_admin_without_mfa_escalates_to_high if {
	f := _with({"rule": "account-without-mfa", "attributes": {"role": "admin"}})
	drift.severity == "high" with input as f with data.tuning as _tuning
}

test_escalation_never_lowers if {
	f := _with({
		"rule": "account-without-mfa",
		"default_severity": "critical",
		"attributes": {"role": "admin"},
	})
	drift.severity == "critical" with input as f with data.tuning as {}
}

# --- suppression -----------------------------------------------------------

test_suppression_active if {
	f := _with({"subject": {"label": "Account", "key": "github:build-bot"}})
	drift.suppressed with input as f with data.tuning as _tuning
	drift.suppress_reason == "service account, owned by platform team" with input as f
		with data.tuning as _tuning
}

test_suppression_expired if {
	f := _with({"subject": {"label": "Account", "key": "github:old-bot"}})
	drift.suppressed == false with input as f with data.tuning as _tuning
	not drift.suppress_reason with input as f with data.tuning as _tuning
}

test_suppression_ends_at_its_expiry if {
	f := _with({
		"subject": {"label": "Account", "key": "github:build-bot"},
		"now": "2030-01-01T00:00:00Z",
	})
	drift.suppressed == false with input as f with data.tuning as _tuning
}

test_suppression_other_subject_not_suppressed if {
	drift.suppressed == false with input as _finding with data.tuning as _tuning
}

test_suppression_other_rule_not_suppressed if {
	f := _with({"rule": "account-without-mfa", "subject": {"label": "Account", "key": "github:build-bot"}})
	drift.suppressed == false with input as f with data.tuning as _tuning
}

test_suppression_wildcard_subject_and_reasons_joined if {
	f := _with({
		"rule": "default-branch-unprotected",
		"subject": {"label": "Repository", "key": "github:acme/site"},
	})
	drift.suppressed with input as f with data.tuning as _tuning
	drift.suppress_reason == "branch protection rollout in progress; static site, no review needed" with input as f
		with data.tuning as _tuning
}

test_disabled_rule_is_suppressed if {
	f := _with({"rule": "org-2fa-not-required"})
	drift.suppressed with input as f with data.tuning as _tuning
	drift.suppress_reason == "rule org-2fa-not-required is disabled in the tuning file" with input as f
		with data.tuning as _tuning
}

test_not_suppressed_without_tuning if {
	drift.suppressed == false with input as _finding with data.tuning as {}
}

# --- unattended fixes ------------------------------------------------------

test_auto_fix_allowed if {
	drift.auto_fix with input as _finding with data.tuning as _tuning
}

test_auto_fix_at_exact_threshold if {
	drift.auto_fix with input as _with({"score": 0.9}) with data.tuning as _tuning
}

test_auto_fix_refused_below_threshold if {
	drift.auto_fix == false with input as _with({"score": 0.89}) with data.tuning as _tuning
}

test_auto_fix_refused_for_critical_by_tuning if {
	f := _with({"rule": "idp-offboarded-has-admin"})
	drift.auto_fix == false with input as f with data.tuning as _tuning
}

test_auto_fix_refused_for_critical_by_escalation if {
	f := _with({"rule": "idp-offboarded-has-access", "attributes": {"role": "owner"}})
	drift.auto_fix == false with input as f with data.tuning as _tuning
}

test_auto_fix_allowed_for_same_rule_when_not_critical if {
	f := _with({"rule": "idp-offboarded-has-access", "attributes": {"role": "member"}})
	drift.auto_fix with input as f with data.tuning as _tuning
}

test_auto_fix_refused_when_rule_not_allowed if {
	f := _with({"rule": "account-without-mfa"})
	drift.auto_fix == false with input as f with data.tuning as _tuning
}

test_auto_fix_refused_when_rule_not_tuned if {
	f := _with({"rule": "outside-collaborator-admin"})
	drift.auto_fix == false with input as f with data.tuning as _tuning
}

test_auto_fix_refused_without_threshold if {
	no_threshold := object.remove(_tuning, ["thresholds"])
	drift.auto_fix == false with input as _finding with data.tuning as no_threshold
}

test_auto_fix_refused_without_remedy if {
	drift.auto_fix == false with input as _with({"has_remedy": false}) with data.tuning as _tuning
}

test_auto_fix_refused_when_suppressed if {
	f := _with({"subject": {"label": "Account", "key": "github:build-bot"}})
	drift.auto_fix == false with input as f with data.tuning as _tuning
}

test_auto_fix_refused_for_disabled_rule if {
	f := _with({"rule": "org-2fa-not-required"})
	drift.auto_fix == false with input as f with data.tuning as _tuning
}

test_auto_fix_refused_when_unratable if {
	untuned := {
		"rules": {"account-unlinked": {"auto_fix": true, "enabled": true}},
		"thresholds": {"auto_fix_min_score": 0.9},
	}
	f := _with({"default_severity": "urgent"})
	drift.auto_fix == false with input as f with data.tuning as untuned
}

_campaign(granted) := {
	"detector": "narrative",
	"rule": "narrative-campaign",
	"subject": {"label": "Repository", "key": "github:acme/compressor"},
	"key": "github:acme/compressor/issue-comment/1",
	"title": "3 low-footprint accounts pressed acme/compressor",
	"score": 0.95,
	"default_severity": "high",
	"attributes": {"risk_score": 0.95, "privilege_granted": granted},
	"evidence_count": 6,
	"has_remedy": true,
	"now": "2026-12-04T00:00:00Z",
}

_auto_tuning := {
	"rules": {"narrative-campaign": {"severity": "high", "auto_fix": true, "enabled": true}},
	"thresholds": {"auto_fix_min_score": 0.5},
	"suppressions": [],
}

test_campaign_followed_by_a_grant_is_critical if {
	drift.severity == "critical" with input as _campaign(true) with data.tuning as _auto_tuning
	drift.severity == "high" with input as _campaign(false) with data.tuning as _auto_tuning
}

test_narrative_findings_never_fix_themselves if {
	not drift.auto_fix with input as _campaign(false) with data.tuning as _auto_tuning
}

# Tests for approval.rego; the host runs them whenever it loads the folder.
package orgmesh.approval_test

import rego.v1

import data.orgmesh.approval

_input(kind, severity, auto_fix, suppressed) := {
	"action": {
		"executor": "github-fix",
		"kind": kind,
		"target": {"label": "Repository", "key": "github:acme/site"},
		"parameters": {},
	},
	"finding": {
		"rule": "branch-protection-below-baseline",
		"fingerprint": "f1",
		"subject": {"label": "Repository", "key": "github:acme/site"},
		"severity": severity,
		"score": 1,
		"auto_fix": auto_fix,
		"suppressed": suppressed,
	},
	"now": "2026-12-04T00:00:00Z",
}

test_suppressed_findings_are_never_fixed if {
	d := approval.decision with input as _input("github.restore-branch-protection", "medium", true, true)
	d.mode == "deny"
}

test_critical_needs_two_admins if {
	d := approval.decision with input as _input("github.remove-org-member", "critical", false, false)
	d == {"mode": "approve", "approvers": 2, "role": "admin", "expires_in_secs": 14400}
}

test_auto_fix_runs_unattended if {
	d := approval.decision with input as _input("github.restore-branch-protection", "medium", true, false)
	d.mode == "auto"
}

test_removing_access_is_always_reviewed if {
	d := approval.decision with input as _input("github.remove-org-member", "high", true, false)
	d == {"mode": "approve", "approvers": 1, "role": "approver", "expires_in_secs": 86400}
}

test_undecided_auto_fix_needs_a_person if {
	d := approval.decision with input as _input("github.restore-branch-protection", "medium", null, false)
	d.mode == "approve"
}

test_campaign_responses_always_need_an_admin if {
	base := _input("github.campaign-response", "high", true, false)
	i := object.union(base, {"finding": object.union(base.finding, {"rule": "narrative-campaign"})})
	d := approval.decision with input as i
	d.mode == "approve"
	d.role == "admin"
}

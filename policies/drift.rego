# Decides, for one drift finding, how severe it is, whether an operator has
# suppressed it, and whether its fix may run without a person.
#
# input: one finding as the host hands it over:
#   detector, rule, subject {label, key}, key, title, score,
#   default_severity, attributes {...}, evidence_count, has_remedy,
#   now (RFC 3339 date-time of the decision)
# data.tuning: drift-rules.yaml, already checked by the host, so every
#   severity is one of the five names and every expiry parses.
#
# The host reads four rules. `severity` deliberately has no default: a
# finding this policy cannot rate must come back undefined so the host
# can tell "not rated" from any rating.
package orgmesh.drift

import rego.v1

_levels := ["info", "low", "medium", "high", "critical"]

_rank := {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}

_settings := data.tuning.rules[input.rule]

# Tuning may re-rate a rule; otherwise the detector's suggestion stands.
# The test is in the body and the value in the head because regorus 0.14.1's
# bytecode engine leaves `s := _settings.severity` in a body undefined when
# the rule has no tuned severity, instead of taking the `else`.
_tuned := _settings.severity if {
	_settings.severity
} else := input.default_severity

# Some attributes make a finding worse than its rule's usual rating. These
# floors apply over the tuning: tuning can calm a noisy rule, but cannot
# calm the cases that are dangerous whatever the rule.
_floors contains "critical" if {
	# A person who has left yet still holds admin or owner rights can do
	# everything they could before they left.
	input.rule in {"idp-offboarded-has-access", "idp-offboarded-has-admin"}
	_privileged
}

_floors contains "high" if {
	# An admin without MFA is one phished password away from the whole org.
	input.rule == "account-without-mfa"
	_privileged
}

_floors contains "critical" if {
	# Pressure on maintainers followed by write access on the same
	# repository is the shape of a supply-chain takeover: review it first.
	_narrative
	input.attributes.privilege_granted == true
}

# Narrative findings are about what people wrote; none of them is ever
# acted on without a person, whatever the tuning says.
_narrative if startswith(input.rule, "narrative-")

# Attributes come from detectors, any of which may send a role that is not
# text; such a finding is simply not escalated.
_privileged if {
	is_string(input.attributes.role)
	lower(input.attributes.role) in {"admin", "owner"}
}

severity := _levels[max(ranks)] if {
	base := _rank[_tuned]
	ranks := {base} | {_rank[f] | some f in _floors}
}

# --- suppression -----------------------------------------------------------

default suppressed := false

suppressed if count(_suppress_reasons) > 0

suppress_reason := concat("; ", sort(_suppress_reasons)) if count(_suppress_reasons) > 0

_suppress_reasons contains s.reason if {
	some s in data.tuning.suppressions
	s.rule == input.rule
	_subject_matches(s.subject)
	_now_ns < time.parse_rfc3339_ns(s.expires)
}

_suppress_reasons contains sprintf("rule %s is disabled in the tuning file", [input.rule]) if {
	_settings.enabled == false
}

_subject_matches(pattern) if pattern == "*"

_subject_matches(pattern) if {
	pattern == sprintf("%s(%s)", [input.subject.label, input.subject.key])
}

# The host always sends `now`; the clock is only a fallback for callers
# that do not, at the cost of answers that change from run to run.
_now_ns := time.parse_rfc3339_ns(input.now) if {
	input.now
} else := time.now_ns()

# --- unattended fixes ------------------------------------------------------

default auto_fix := false

# Every condition must hold; anything unknown (no tuning for the rule, no
# threshold, no rating) leaves the fix to a person. A disabled rule needs
# no check of its own: its findings are suppressed.
auto_fix if {
	not _narrative
	_settings.auto_fix == true
	input.has_remedy == true
	not suppressed
	severity != "critical"
	input.score >= data.tuning.thresholds.auto_fix_min_score
}

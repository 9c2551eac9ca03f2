# Decides who must approve a proposed fix before an executor runs it.
#
# input:
#   action:  executor, kind (e.g. github.remove-org-member), target
#            {label, key}, parameters {...}
#   finding: rule, fingerprint, subject {label, key}, severity, score,
#            auto_fix and suppressed as the drift policy decided them
#   now:     RFC 3339 date-time of the question
#
# The host reads `decision`, one of
#   {"mode": "auto"}
#   {"mode": "approve", "approvers": N, "role": "approver" | "admin",
#    "expires_in_secs": S}
#   {"mode": "deny", "reason": "..."}
# and runs nothing when it is undefined or of any other shape.
package orgmesh.approval

import rego.v1

# Fixes that take a person's access away are always reviewed, however
# confident the detector is: a wrong identity link would lock out the
# wrong person.
_always_reviewed := {
	"github.remove-org-member",
	"github.convert-to-outside-collaborator",
	"gitlab.block-user",
	"gitlab.remove-member",
}

decision := {"mode": "deny", "reason": "the finding is suppressed"} if {
	input.finding.suppressed == true
} else := {"mode": "approve", "approvers": 2, "role": "admin", "expires_in_secs": 14400} if {
	# Critical findings are the ones attackers make; two admins look.
	input.finding.severity == "critical"
} else := {"mode": "approve", "approvers": 1, "role": "admin", "expires_in_secs": 86400} if {
	# A response to a narrative campaign speaks to people about people:
	# an admin decides, never the detector alone.
	startswith(input.finding.rule, "narrative-")
} else := {"mode": "auto"} if {
	input.finding.auto_fix == true
	not input.action.kind in _always_reviewed
} else := {"mode": "approve", "approvers": 1, "role": "approver", "expires_in_secs": 86400}

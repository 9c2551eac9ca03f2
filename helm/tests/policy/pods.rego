# Checks over the chart's rendered manifests: how every pod runs.
#
# input:
#   manifests       every rendered Kubernetes object, parsed
#   config          org-mesh.yaml from the config ConfigMap, parsed
#   secret_values   the secret values the render was given
#   profile         "development" or "production"
#
# `deny` collects one message per problem; the chart test wants it empty.
package orgmesh.chart

import rego.v1

_workload_kinds := {"Deployment", "StatefulSet", "DaemonSet", "Job"}

workloads contains m if {
	some m in input.manifests
	m.kind in _workload_kinds
}

# [workload, pod spec, container, "container" or "init container"]
_containers contains [m, m.spec.template.spec, c, "container"] if {
	some m in workloads
	some c in m.spec.template.spec.containers
}

_containers contains [m, m.spec.template.spec, c, "init container"] if {
	some m in workloads
	some c in object.get(m.spec.template.spec, "initContainers", [])
}

_where(m, c, what) := sprintf("%s/%s %s %s", [m.kind, m.metadata.name, what, c.name])

# A container setting, or the pod's when the container leaves it unset, as
# Kubernetes resolves them.
_effective(spec, c, key) := v if {
	v := c.securityContext[key]
} else := v if {
	v := spec.securityContext[key]
}

deny contains sprintf("%s: runAsNonRoot must be true", [_where(m, c, what)]) if {
	some [m, spec, c, what] in _containers
	not _effective(spec, c, "runAsNonRoot") == true
}

deny contains sprintf("%s: runs as user 0", [_where(m, c, what)]) if {
	some [m, spec, c, what] in _containers
	_effective(spec, c, "runAsUser") == 0
}

deny contains sprintf("%s: readOnlyRootFilesystem must be true", [_where(m, c, what)]) if {
	some [m, _, c, what] in _containers
	not c.securityContext.readOnlyRootFilesystem == true
}

deny contains sprintf("%s: allowPrivilegeEscalation must be false", [_where(m, c, what)]) if {
	some [m, _, c, what] in _containers
	not c.securityContext.allowPrivilegeEscalation == false
}

deny contains sprintf("%s: privileged", [_where(m, c, what)]) if {
	some [m, _, c, what] in _containers
	c.securityContext.privileged == true
}

deny contains sprintf("%s: capabilities must drop ALL", [_where(m, c, what)]) if {
	some [m, _, c, what] in _containers
	not "ALL" in object.get(c, ["securityContext", "capabilities", "drop"], [])
}

deny contains sprintf("%s: adds capabilities %v", [_where(m, c, what), added]) if {
	some [m, _, c, what] in _containers
	added := object.get(c, ["securityContext", "capabilities", "add"], [])
	count(added) > 0
}

deny contains sprintf("%s: seccompProfile must be RuntimeDefault", [_where(m, c, what)]) if {
	some [m, spec, c, what] in _containers
	not _effective(spec, c, "seccompProfile").type == "RuntimeDefault"
}

deny contains sprintf("%s: resources.%s is not set", [_where(m, c, what), field]) if {
	some [m, _, c, what] in _containers
	some field in ["requests.cpu", "requests.memory", "limits.memory"]
	[group, name] := split(field, ".")
	not c.resources[group][name]
}

deny contains sprintf("%s: no %s", [_where(m, c, "container"), probe]) if {
	some [m, _, c, "container"] in _containers
	some probe in ["startupProbe", "livenessProbe", "readinessProbe"]
	not c[probe]
}

# Liveness must not depend on the backends: a Neo4j outage would otherwise
# restart every replica instead of only taking them out of the Service.
deny contains sprintf("%s: livenessProbe must ask /healthz, not %v", [_where(m, c, "container"), path]) if {
	some [m, _, c, "container"] in _containers
	path := c.livenessProbe.httpGet.path
	path != "/healthz"
}

deny contains sprintf("%s: readinessProbe must ask /readyz, not %v", [_where(m, c, "container"), path]) if {
	some [m, _, c, "container"] in _containers
	path := c.readinessProbe.httpGet.path
	path != "/readyz"
}

deny contains sprintf("%s/%s: %s", [m.kind, m.metadata.name, problem]) if {
	some m in workloads
	spec := m.spec.template.spec
	some [field, problem] in [
		["hostNetwork", "uses the host's network"],
		["hostPID", "shares the host's process namespace"],
		["hostIPC", "shares the host's IPC namespace"],
	]
	spec[field] == true
}

deny contains sprintf("%s/%s: mounts the host path %s", [m.kind, m.metadata.name, v.hostPath.path]) if {
	some m in workloads
	some v in object.get(m.spec.template.spec, "volumes", [])
	v.hostPath
}

deny contains sprintf("%s/%s: automountServiceAccountToken must be false; org-mesh never calls the Kubernetes API", [m.kind, m.metadata.name]) if {
	some m in workloads
	not m.spec.template.spec.automountServiceAccountToken == false
}

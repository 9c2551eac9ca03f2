# The ServiceMonitor, PrometheusRule and Grafana dashboard. kubernetes-validate
# has no schemas for the monitoring.coreos.com kinds, so their shape is
# checked here instead: only fields of the monitoring.coreos.com/v1 kinds
# that the chart means to use, wired to the chart's own Service. Whether the
# metric names exist is checked in Rust against org-mesh's sources.
package orgmesh.chart

import rego.v1

_of_kind(kind) := {m | some m in input.manifests; m.kind == kind}

_service := m if {
	some m in _of_kind("Service")
}

deny contains sprintf("%s %s: apiVersion %s, want monitoring.coreos.com/v1", [m.kind, m.metadata.name, m.apiVersion]) if {
	some m in input.manifests
	m.kind in {"ServiceMonitor", "PrometheusRule"}
	m.apiVersion != "monitoring.coreos.com/v1"
}

_unknown(object, allowed) := {k | some k, _ in object; not k in allowed}

# --- ServiceMonitor ---------------------------------------------------------

deny contains sprintf("ServiceMonitor %s: unexpected fields %v", [m.metadata.name, bad]) if {
	some m in _of_kind("ServiceMonitor")
	bad := _unknown(m.spec, {"selector", "namespaceSelector", "endpoints", "jobLabel", "targetLabels", "podTargetLabels"})
	count(bad) > 0
}

deny contains sprintf("ServiceMonitor %s endpoint: unexpected fields %v", [m.metadata.name, bad]) if {
	some m in _of_kind("ServiceMonitor")
	some e in m.spec.endpoints
	bad := _unknown(e, {"port", "path", "scheme", "interval", "scrapeTimeout", "honorLabels", "relabelings", "metricRelabelings"})
	count(bad) > 0
}

deny contains sprintf("ServiceMonitor %s: its selector does not match Service %s's labels", [m.metadata.name, _service.metadata.name]) if {
	some m in _of_kind("ServiceMonitor")
	some key, value in m.spec.selector.matchLabels
	_service.metadata.labels[key] != value
}

deny contains sprintf("ServiceMonitor %s: endpoint port %v is not a named port of Service %s", [m.metadata.name, e.port, _service.metadata.name]) if {
	some m in _of_kind("ServiceMonitor")
	some e in m.spec.endpoints
	not e.port in {p.name | some p in _service.spec.ports}
}

deny contains sprintf("ServiceMonitor %s: scrapes %v, not /metrics", [m.metadata.name, e.path]) if {
	some m in _of_kind("ServiceMonitor")
	some e in m.spec.endpoints
	e.path != "/metrics"
}

deny contains sprintf("ServiceMonitor %s: does not look in its own namespace %s", [m.metadata.name, m.metadata.namespace]) if {
	some m in _of_kind("ServiceMonitor")
	not m.metadata.namespace in m.spec.namespaceSelector.matchNames
}

# --- PrometheusRule ---------------------------------------------------------

_rules contains [m, g, r] if {
	some m in _of_kind("PrometheusRule")
	some g in m.spec.groups
	some r in g.rules
}

_duration := `^([0-9]+(ms|s|m|h|d|w|y))+$`

deny contains sprintf("PrometheusRule %s: unexpected spec fields %v", [m.metadata.name, bad]) if {
	some m in _of_kind("PrometheusRule")
	bad := _unknown(m.spec, {"groups"})
	count(bad) > 0
}

deny contains sprintf("PrometheusRule %s group %v: unexpected fields %v", [m.metadata.name, g.name, bad]) if {
	some m in _of_kind("PrometheusRule")
	some g in m.spec.groups
	bad := _unknown(g, {"name", "interval", "rules"})
	count(bad) > 0
}

deny contains sprintf("PrometheusRule %s group %v: unexpected fields %v in rule %v", [m.metadata.name, g.name, bad, r.alert]) if {
	some [m, g, r] in _rules
	bad := _unknown(r, {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"})
	count(bad) > 0
}

deny contains sprintf("PrometheusRule %s: a rule without alert and expr in group %v", [m.metadata.name, g.name]) if {
	some [m, g, r] in _rules
	not _alert_and_expr(r)
}

_alert_and_expr(r) if {
	is_string(r.alert)
	is_string(r.expr)
	r.alert != ""
	r.expr != ""
}

deny contains sprintf("alert %v: for %v is not a Prometheus duration", [r.alert, wait]) if {
	some [_, _, r] in _rules
	wait := r["for"]
	not regex.match(_duration, wait)
}

deny contains sprintf("alert %v: no %s annotation", [r.alert, key]) if {
	some [_, _, r] in _rules
	some key in ["summary", "description", "runbook_url"]
	not r.annotations[key]
}

deny contains sprintf("alert %v: severity %v is not one of critical, warning, info", [r.alert, object.get(r, ["labels", "severity"], null)]) if {
	some [_, _, r] in _rules
	not r.labels.severity in {"critical", "warning", "info"}
}

deny contains sprintf("alert %v: its runbook_url should end in #%s, the runbook section named after it", [r.alert, lower(r.alert)]) if {
	some [_, _, r] in _rules
	not endswith(r.annotations.runbook_url, sprintf("#%s", [lower(r.alert)]))
}

deny contains sprintf("alert %v is defined %d times", [name, n]) if {
	some [_, _, r] in _rules
	name := r.alert
	n := count([1 | some [_, _, other] in _rules; other.alert == name])
	n > 1
}

# Series from two releases in one Prometheus must not mix in one alert.
deny contains sprintf("alert %v: expr does not select this release's series (namespace and job)", [r.alert]) if {
	some [m, _, r] in _rules
	some needle in [sprintf("namespace=%q", [m.metadata.namespace]), "job="]
	not contains(r.expr, needle)
}

# --- Grafana dashboard ------------------------------------------------------

_dashboards contains [m, key, text] if {
	some m in _of_kind("ConfigMap")
	m.metadata.labels.grafana_dashboard == "1"
	some key, text in m.data
}

deny contains sprintf("dashboard ConfigMap %s: %s is not a .json file", [m.metadata.name, key]) if {
	some [m, key, _] in _dashboards
	not endswith(key, ".json")
}

deny contains sprintf("dashboard ConfigMap %s: %s has no panels", [m.metadata.name, key]) if {
	some [m, key, text] in _dashboards
	count(object.get(json.unmarshal(text), "panels", [])) == 0
}

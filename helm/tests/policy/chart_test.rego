# Tests of the chart checks themselves: each starts from a small pod that
# passes, breaks one thing, and expects the check to name it. The chart test
# runs every test_* rule here before trusting an empty deny set.
package orgmesh.chart_test

import rego.v1

import data.orgmesh.chart

_labels := {"app.kubernetes.io/component": "conductor", "app.kubernetes.io/name": "org-mesh"}

_container := {
	"name": "org-mesh",
	"ports": [{"name": "http", "containerPort": 8080}],
	"env": [{"name": "ORG_MESH_LOG_FORMAT", "value": "json"}],
	"securityContext": {
		"runAsNonRoot": true,
		"readOnlyRootFilesystem": true,
		"allowPrivilegeEscalation": false,
		"capabilities": {"drop": ["ALL"]},
	},
	"resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "1Gi"}},
	"startupProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
	"livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
	"readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}},
	"volumeMounts": [
		{"name": "policies", "mountPath": "/etc/org-mesh/policies", "readOnly": true},
		{"name": "plugins", "mountPath": "/opt/plugins", "readOnly": true},
		{"name": "secrets", "mountPath": "/var/run/secrets/org-mesh", "readOnly": true},
		{"name": "state", "mountPath": "/var/lib/org-mesh"},
	],
}

_volumes := [
	{"name": "policies", "configMap": {"name": "policies"}},
	{"name": "plugins", "emptyDir": {}},
	{"name": "secrets", "projected": {"sources": [{"secret": {"name": "own", "items": [{"key": "neo4j-password", "path": "neo4j/password"}]}}]}},
	{"name": "state", "emptyDir": {}},
]

_deployment(container, volumes, annotations) := {
	"kind": "Deployment",
	"metadata": {"name": "conductor", "labels": _labels},
	"spec": {"replicas": 1, "template": {
		"metadata": {"labels": _labels, "annotations": annotations},
		"spec": {
			"automountServiceAccountToken": false,
			"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
			"containers": [container],
			"volumes": volumes,
		},
	}},
}

_config := {
	"state_dir": "/var/lib/org-mesh",
	"graph": {"backend": "embedded", "neo4j": {"password": {"file": "/var/run/secrets/org-mesh/neo4j/password"}}},
	"cache": {"backend": "memory"},
	"plugins": {"dirs": ["/opt/plugins"]},
	"policies": {"dir": "/etc/org-mesh/policies"},
	"serve": {"listen": "0.0.0.0:8080", "tokens": []},
	"connectors": [],
}

_secret := {"kind": "Secret", "metadata": {"name": "own"}, "data": {"neo4j-password": "eA=="}}

_input_with(container, volumes, annotations, config, extra) := {
	"manifests": array.concat([_deployment(container, volumes, annotations), _secret], extra),
	"config": config,
	"secret_values": ["s3cret"],
	"profile": "development",
}

_good := _input_with(_container, _volumes, {"checksum/config": "abc"}, _config, [])

_denied(input_doc, fragment) if {
	some message in chart.deny with input as input_doc
	contains(message, fragment)
}

test_the_good_pod_passes if {
	count(chart.deny) == 0 with input as _good
}

test_root_user_is_denied if {
	c := object.union(_container, {"securityContext": object.union(_container.securityContext, {"runAsUser": 0})})
	_denied(_input_with(c, _volumes, {"checksum/config": "abc"}, _config, []), "runs as user 0")
}

test_writable_root_is_denied if {
	c := object.union(_container, {"securityContext": object.union(_container.securityContext, {"readOnlyRootFilesystem": false})})
	_denied(_input_with(c, _volumes, {"checksum/config": "abc"}, _config, []), "readOnlyRootFilesystem")
}

test_capabilities_not_dropped_are_denied if {
	c := object.union(_container, {"securityContext": object.union(_container.securityContext, {"capabilities": {"drop": ["NET_RAW"]}})})
	_denied(_input_with(c, _volumes, {"checksum/config": "abc"}, _config, []), "drop ALL")
}

test_missing_probe_is_denied if {
	c := object.remove(_container, ["readinessProbe"])
	_denied(_input_with(c, _volumes, {"checksum/config": "abc"}, _config, []), "no readinessProbe")
}

test_missing_memory_limit_is_denied if {
	c := object.union(object.remove(_container, ["resources"]), {"resources": {"requests": {"cpu": "1", "memory": "1Gi"}}})
	_denied(_input_with(c, _volumes, {"checksum/config": "abc"}, _config, []), "limits.memory")
}

test_policy_checksum_annotation_is_denied if {
	_denied(_input_with(_container, _volumes, {"checksum/config": "abc", "checksum/policies": "def"}, _config, []), "reload in place")
}

test_missing_config_checksum_is_denied if {
	_denied(_input_with(_container, _volumes, {}, _config, []), "checksum/config")
}

test_secret_in_a_configmap_is_denied if {
	leak := {"kind": "ConfigMap", "metadata": {"name": "leaky"}, "data": {"org-mesh.yaml": "password: s3cret"}}
	_denied(_input_with(_container, _volumes, {"checksum/config": "abc"}, _config, [leak]), "ConfigMap leaky holds a secret value")
}

test_inline_secret_in_the_config_is_denied if {
	config := object.union(_config, {"graph": {"neo4j": {"password": "hunter2"}}})
	_denied(_input_with(_container, _volumes, {"checksum/config": "abc"}, config, []), "must be {file: PATH} or {env: NAME}")
}

test_secret_file_nothing_mounts_is_denied if {
	config := object.union(_config, {"graph": {"neo4j": {"password": {"file": "/elsewhere/password"}}}})
	_denied(_input_with(_container, _volumes, {"checksum/config": "abc"}, config, []), "which no mounted Secret provides")
}

test_read_only_state_dir_is_denied if {
	mounts := [object.union(m, {"readOnly": m.name == "state"}) | some m in _container.volumeMounts]
	c := object.union(_container, {"volumeMounts": mounts})
	_denied(_input_with(c, _volumes, {"checksum/config": "abc"}, _config, []), "state_dir")
}

test_policies_by_subpath_are_denied if {
	mounts := [_subpath(m) | some m in _container.volumeMounts]
	c := object.union(_container, {"volumeMounts": mounts})
	_denied(_input_with(c, _volumes, {"checksum/config": "abc"}, _config, []), "subPath")
}

_subpath(m) := object.union(m, {"subPath": "drift.rego"}) if {
	m.name == "policies"
} else := m

test_loopback_listener_is_denied if {
	config := object.union(_config, {"serve": {"listen": "127.0.0.1:8080"}})
	_denied(_input_with(_container, _volumes, {"checksum/config": "abc"}, config, []), "loopback")
}

test_production_without_autoscaler_is_denied if {
	doc := object.union(_good, {"profile": "production"})
	_denied(doc, "production renders no HorizontalPodAutoscaler")
}

test_rule_without_runbook_is_denied if {
	rule := {
		"kind": "PrometheusRule",
		"apiVersion": "monitoring.coreos.com/v1",
		"metadata": {"name": "r", "namespace": "ns"},
		"spec": {"groups": [{"name": "g", "rules": [{
			"alert": "SomethingBroke",
			"expr": "up{namespace=\"ns\", job=\"j\"} == 0",
			"for": "5 minutes",
			"labels": {"severity": "page"},
			"annotations": {"summary": "s", "description": "d"},
		}]}]},
	}
	doc := _input_with(_container, _volumes, {"checksum/config": "abc"}, _config, [rule])
	_denied(doc, "no runbook_url annotation")
	_denied(doc, "is not a Prometheus duration")
	_denied(doc, "severity page")
}

test_service_monitor_on_a_missing_port_is_denied if {
	service := {"kind": "Service", "metadata": {"name": "svc", "labels": _labels}, "spec": {"selector": _labels, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}
	monitor := {
		"kind": "ServiceMonitor",
		"apiVersion": "monitoring.coreos.com/v1",
		"metadata": {"name": "m", "namespace": "ns"},
		"spec": {"selector": {"matchLabels": _labels}, "namespaceSelector": {"matchNames": ["ns"]}, "endpoints": [{"port": "metrics", "path": "/metrics"}]},
	}
	_denied(_input_with(_container, _volumes, {"checksum/config": "abc"}, _config, [service, monitor]), "endpoint port metrics")
}

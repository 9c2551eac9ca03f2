# What each global.env must deliver. Same input as pods.rego; profile says
# which environment the render asked for.
package orgmesh.chart

import rego.v1

_kinds := {m.kind | some m in input.manifests}

_env(name) := v if {
	some e in _main.env
	e.name == name
	v := e.value
}

_hpa := m if {
	some m in input.manifests
	m.kind == "HorizontalPodAutoscaler"
}

deny contains sprintf("production renders no %s", [kind]) if {
	input.profile == "production"
	some kind in ["HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy", "ServiceMonitor", "PrometheusRule"]
	not kind in _kinds
}

deny contains "production renders no Grafana dashboard ConfigMap" if {
	input.profile == "production"
	not _dashboard
}

_dashboard if {
	some m in input.manifests
	m.kind == "ConfigMap"
	m.metadata.labels.grafana_dashboard == "1"
}

deny contains sprintf("production must keep the twin in Neo4j and share state through Redis, not graph %v and cache %v", [input.config.graph.backend, input.config.cache.backend]) if {
	input.profile == "production"
	not [input.config.graph.backend, input.config.cache.backend] == ["neo4j", "redis"]
}

deny contains "production must log JSON (ORG_MESH_LOG_FORMAT=json)" if {
	input.profile == "production"
	not _env("ORG_MESH_LOG_FORMAT") == "json"
}

deny contains sprintf("the HorizontalPodAutoscaler must scale on CPU at 70%%, not %v", [metric]) if {
	input.profile == "production"
	some metric in _hpa.spec.metrics
	not [metric.resource.name, metric.resource.target.averageUtilization] == ["cpu", 70]
}

deny contains sprintf("the HorizontalPodAutoscaler must scale from 2 to 10 replicas by default, not %v to %v", [_hpa.spec.minReplicas, _hpa.spec.maxReplicas]) if {
	input.profile == "production"
	not [_hpa.spec.minReplicas, _hpa.spec.maxReplicas] == [2, 10]
}

deny contains sprintf("the HorizontalPodAutoscaler scales %v/%v, not the conductor", [_hpa.spec.scaleTargetRef.kind, _hpa.spec.scaleTargetRef.name]) if {
	not [_hpa.spec.scaleTargetRef.kind, _hpa.spec.scaleTargetRef.name] == ["Deployment", _conductor.metadata.name]
}

# With an autoscaler, a replica count in the Deployment would be reset by
# every helm upgrade, fighting the autoscaler.
deny contains "the Deployment sets replicas although an autoscaler owns them" if {
	_hpa
	_conductor.spec.replicas
}

deny contains sprintf("development must run one replica, not %v", [_conductor.spec.replicas]) if {
	input.profile == "development"
	not _conductor.spec.replicas == 1
}

deny contains "development must not autoscale" if {
	input.profile == "development"
	_hpa
}

deny contains sprintf("development defaults to the embedded graph and the memory cache, not graph %v and cache %v", [input.config.graph.backend, input.config.cache.backend]) if {
	input.profile == "development"
	not [input.config.graph.backend, input.config.cache.backend] == ["embedded", "memory"]
}

# Checks that the rendered org-mesh.yaml and the pod that reads it agree,
# that secrets stay out of ConfigMaps, and that policies reload in place.
# Same input as pods.rego.
package orgmesh.chart

import rego.v1

_conductor := m if {
	some m in workloads
	m.metadata.labels["app.kubernetes.io/component"] == "conductor"
}

_pod := _conductor.spec.template.spec

_main := c if {
	some c in _pod.containers
	c.name == "org-mesh"
}

_volume(name) := v if {
	some v in _pod.volumes
	v.name == name
}

_mounts contains [mount, volume] if {
	some mount in _main.volumeMounts
	volume := _volume(mount.name)
}

deny contains "no conductor Deployment, or no container named org-mesh in it" if {
	not _main
}

# --- secrets ----------------------------------------------------------------

deny contains sprintf("ConfigMap %s holds a secret value given to the chart (key %s)", [m.metadata.name, key]) if {
	some m in input.manifests
	m.kind == "ConfigMap"
	some key, text in m.data
	some secret in input.secret_values
	contains(text, secret)
}

deny contains sprintf("%s/%s: a secret value given to the chart is in the pod template", [m.kind, m.metadata.name]) if {
	some m in workloads
	some secret in input.secret_values
	contains(json.marshal(m.spec.template), secret)
}

# Every place org-mesh reads a secret from, with where it is in the file.
# (Values are bound in the bodies: a head that names a missing field would
# not simply be undefined in regorus.)
_secret_fields contains ["graph.neo4j.password", source] if {
	source := input.config.graph.neo4j.password
}

_secret_fields contains ["cache.redis.password", source] if {
	source := input.config.cache.redis.password
}

_secret_fields contains [at, source] if {
	some t in input.config.serve.tokens
	source := t.secret
	at := sprintf("serve.tokens.%s.secret", [t.name])
}

_secret_fields contains [at, source] if {
	some c in input.config.connectors
	source := c.webhook.secret
	at := sprintf("connectors.%s.webhook.secret", [c.name])
}

_secret_fields contains [at, source] if {
	some c in input.config.connectors
	source := c.scim.token
	at := sprintf("connectors.%s.scim.token", [c.name])
}

_secret_fields contains [at, source] if {
	some kind in ["connectors", "detectors", "executors"]
	some i in object.get(input.config, kind, [])
	some name, source in i.grants.secrets
	at := sprintf("%s.%s.grants.secrets.%s", [kind, i.name, name])
}

deny contains sprintf("org-mesh.yaml %s must be {file: PATH} or {env: NAME}, not %v", [at, source]) if {
	some [at, source] in _secret_fields
	not _is_source(source)
}

_is_source(s) if {
	is_object(s)
	count(object.keys(s)) == 1
	some key in ["file", "env"]
	is_string(s[key])
}

# A {file: PATH} the pod cannot read would stop org-mesh at start: each must
# be an item of a Secret projected into a mounted volume.
_secret_files contains sprintf("%s/%s", [trim_suffix(mount.mountPath, "/"), item.path]) if {
	some [mount, volume] in _mounts
	some source in volume.projected.sources
	some item in source.secret.items
}

_secret_files contains sprintf("%s/%s", [trim_suffix(mount.mountPath, "/"), key]) if {
	some [mount, volume] in _mounts
	volume.secret
	not volume.secret.items
	# Keys are unknown without items; accept any file under the mount.
	some [_, source] in _secret_fields
	startswith(source.file, concat("", [trim_suffix(mount.mountPath, "/"), "/"]))
	key := trim_prefix(source.file, concat("", [trim_suffix(mount.mountPath, "/"), "/"]))
}

deny contains sprintf("org-mesh.yaml %s names %s, which no mounted Secret provides", [at, source.file]) if {
	some [at, source] in _secret_fields
	source.file
	not source.file in _secret_files
}

deny contains sprintf("org-mesh.yaml %s reads variable %s, which the container does not set", [at, source.env]) if {
	some [at, source] in _secret_fields
	source.env
	not source.env in {e.name | some e in object.get(_main, "env", [])}
}

deny contains sprintf("the pod reads key %s of Secret %s, which the chart's Secret lacks", [item.key, source.secret.name]) if {
	some volume in _pod.volumes
	some source in volume.projected.sources
	some own in input.manifests
	own.kind == "Secret"
	own.metadata.name == source.secret.name
	some item in source.secret.items
	not own.data[item.key]
}

# --- folders ----------------------------------------------------------------

_mounted(path) := [mount, volume] if {
	some [mount, volume] in _mounts
	trim_suffix(mount.mountPath, "/") == trim_suffix(path, "/")
}

deny contains sprintf("state_dir %s is not a writable volume: a read-only root cannot hold the plugin cache or the twin", [input.config.state_dir]) if {
	not _writable(input.config.state_dir)
}

_writable(path) if {
	[mount, volume] := _mounted(path)
	not mount.readOnly == true
	_persistent_or_scratch(volume)
}

_persistent_or_scratch(v) if v.emptyDir
_persistent_or_scratch(v) if v.persistentVolumeClaim

deny contains sprintf("policies.dir %s is not mounted from the policy ConfigMap", [input.config.policies.dir]) if {
	[_, volume] := _mounted(input.config.policies.dir)
	not volume.configMap
}

deny contains sprintf("policies.dir %s is not mounted", [input.config.policies.dir]) if {
	not _mounted(input.config.policies.dir)
}

deny contains sprintf("plugins.dirs %s is neither mounted nor holds mounted plugin folders", [dir]) if {
	some dir in input.config.plugins.dirs
	not _mounted(dir)
	not _holds_mounts(dir)
}

_holds_mounts(dir) if {
	some [mount, _] in _mounts
	startswith(mount.mountPath, concat("", [trim_suffix(dir, "/"), "/"]))
}

# A file mounted by subPath is copied once and never updated: a ConfigMap
# mounted that way would never reload, a Secret never rotate.
deny contains sprintf("volume %s is mounted by subPath %s; it would never see an update", [mount.name, mount.subPath]) if {
	some [mount, volume] in _mounts
	mount.subPath
	_updatable(volume)
}

_updatable(v) if v.configMap
_updatable(v) if v.secret
_updatable(v) if v.projected

# --- reload and restarts ----------------------------------------------------

_annotations := object.get(_conductor.spec.template.metadata, "annotations", {})

# org-mesh reloads policies in place; a checksum of them on the pod template
# would roll every pod on each policy edit instead.
deny contains sprintf("pod template annotation %s looks like a checksum of the policies; they reload in place", [key]) if {
	some key, _ in _annotations
	contains(lower(key), "polic")
}

# The configuration file is read once, at start: without its checksum on
# the pod template, a changed file would wait for the next restart.
deny contains "the pod template has no checksum/config annotation; a changed org-mesh.yaml would not roll the pods" if {
	not _annotations["checksum/config"]
}

# --- the HTTP port ----------------------------------------------------------

_http_port := p.containerPort if {
	some p in _main.ports
	p.name == "http"
}

deny contains sprintf("serve.listen %s is not on the container's http port %v", [input.config.serve.listen, _http_port]) if {
	not endswith(input.config.serve.listen, sprintf(":%v", [_http_port]))
}

deny contains sprintf("serve.listen %s binds loopback only; the kubelet's probes and the Service could not reach it", [input.config.serve.listen]) if {
	some prefix in ["127.", "localhost:", "[::1]:"]
	startswith(input.config.serve.listen, prefix)
}

_pod_labels := _conductor.spec.template.metadata.labels

_matches(selector) if {
	every key, value in selector {
		_pod_labels[key] == value
	}
}

deny contains sprintf("Service %s: its selector does not match the conductor's pods", [m.metadata.name]) if {
	some m in input.manifests
	m.kind == "Service"
	not _matches(m.spec.selector)
}

deny contains sprintf("PodDisruptionBudget %s: its selector does not match the conductor's pods", [m.metadata.name]) if {
	some m in input.manifests
	m.kind == "PodDisruptionBudget"
	not _matches(m.spec.selector.matchLabels)
}

deny contains sprintf("NetworkPolicy %s: its podSelector does not match the conductor's pods", [m.metadata.name]) if {
	some m in input.manifests
	m.kind == "NetworkPolicy"
	not _matches(m.spec.podSelector.matchLabels)
}

deny contains sprintf("Service %s: targetPort %v is not a port of the org-mesh container", [m.metadata.name, p.targetPort]) if {
	some m in input.manifests
	m.kind == "Service"
	some p in m.spec.ports
	not p.targetPort in {q | some port in _main.ports; some q in [port.name, port.containerPort]}
}

{{/*
Names, labels and the defaults that depend on global.env. Every template
takes its decisions from here, so development and production differ in one
place.
*/}}

{{- define "org-mesh.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "org-mesh.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The Deployment's name: the conductor runs `org-mesh serve`. */}}
{{- define "org-mesh.conductor" -}}
{{- printf "%s-conductor" (include "org-mesh.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "org-mesh.selectorLabels" -}}
app.kubernetes.io/name: {{ include "org-mesh.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: conductor
{{- end -}}

{{- define "org-mesh.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "org-mesh.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: org-mesh
{{- end -}}

{{- define "org-mesh.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "org-mesh.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "org-mesh.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "org-mesh.pluginImage" -}}
{{- $p := .Values.plugins.image -}}
{{- $repository := default .Values.image.repository $p.repository -}}
{{- $digest := ternary $p.digest .Values.image.digest (ne $p.repository "") -}}
{{- $tag := ternary (default .Chart.AppVersion $p.tag) (default .Chart.AppVersion .Values.image.tag) (ne $p.repository "") -}}
{{- if $digest -}}
{{- printf "%s@%s" $repository $digest -}}
{{- else -}}
{{- printf "%s:%s" $repository $tag -}}
{{- end -}}
{{- end -}}

{{/* "true" in production, "" otherwise: usable in if and default. */}}
{{- define "org-mesh.production" -}}
{{- if eq .Values.global.env "production" }}true{{ end -}}
{{- end -}}

{{/* A null value means "what global.env says"; $default is that. */}}
{{- define "org-mesh.orEnv" -}}
{{- $value := index . 0 -}}
{{- $default := index . 1 -}}
{{- if kindIs "invalid" $value }}{{ if $default }}true{{ end }}{{ else }}{{ if $value }}true{{ end }}{{ end -}}
{{- end -}}

{{- define "org-mesh.graphBackend" -}}
{{- default (ternary "neo4j" "embedded" (eq .Values.global.env "production")) .Values.graph.backend -}}
{{- end -}}

{{- define "org-mesh.cacheBackend" -}}
{{- default (ternary "redis" "memory" (eq .Values.global.env "production")) .Values.cache.backend -}}
{{- end -}}

{{- define "org-mesh.autoscaling" -}}
{{- include "org-mesh.orEnv" (list .Values.autoscaling.enabled (include "org-mesh.production" .)) -}}
{{- end -}}

{{/* Replicas when autoscaling is off. */}}
{{- define "org-mesh.replicas" -}}
{{- if kindIs "invalid" .Values.replicaCount -}}
{{- ternary .Values.autoscaling.minReplicas 1 (eq .Values.global.env "production") -}}
{{- else -}}
{{- .Values.replicaCount -}}
{{- end -}}
{{- end -}}

{{/* "true" when more than one pod may serve at once. */}}
{{- define "org-mesh.multiReplica" -}}
{{- if include "org-mesh.autoscaling" . }}true{{ else if gt (int (include "org-mesh.replicas" .)) 1 }}true{{ end -}}
{{- end -}}

{{- define "org-mesh.logFormat" -}}
{{- default (ternary "json" "text" (eq .Values.global.env "production")) .Values.logging.format -}}
{{- end -}}

{{- define "org-mesh.logFilter" -}}
{{- default (ternary "info" "info,org_mesh=debug" (eq .Values.global.env "production")) .Values.logging.filter -}}
{{- end -}}

{{/* Where the secrets volume is mounted; the config file names files in it. */}}
{{- define "org-mesh.secretsDir" -}}/var/run/secrets/org-mesh{{- end -}}

{{- define "org-mesh.secretName" -}}
{{- printf "%s-secrets" (include "org-mesh.fullname" .) -}}
{{- end -}}

{{- define "org-mesh.policiesConfigMap" -}}
{{- default (printf "%s-policies" (include "org-mesh.fullname" .)) .Values.policies.existingConfigMap -}}
{{- end -}}

{{/*
Every secret the pod reads, as a list of {path, key, value, existingSecret,
existingSecretKey, what}: path is the file under the secrets folder, key the
entry in the chart's own Secret when the value comes from values. "what"
names the value for error messages.
*/}}
{{- define "org-mesh.secretFiles" -}}
{{- $files := list -}}
{{- if eq (include "org-mesh.graphBackend" .) "neo4j" -}}
{{- $files = append $files (dict "path" "neo4j/password" "key" "neo4j-password" "value" .Values.neo4j.password "existingSecret" .Values.neo4j.existingSecret "existingSecretKey" .Values.neo4j.existingSecretKey "what" "neo4j.password" "required" true) -}}
{{- end -}}
{{- if and (eq (include "org-mesh.cacheBackend" .) "redis") (or .Values.redis.password .Values.redis.existingSecret) -}}
{{- $files = append $files (dict "path" "redis/password" "key" "redis-password" "value" .Values.redis.password "existingSecret" .Values.redis.existingSecret "existingSecretKey" .Values.redis.existingSecretKey "what" "redis.password" "required" true) -}}
{{- end -}}
{{- range .Values.apiTokens -}}
{{- $files = append $files (dict "path" (printf "api/%s" .name) "key" (printf "api-token-%s" .name) "value" (default "" .value) "existingSecret" (default "" .existingSecret) "existingSecretKey" (default "" .existingSecretKey) "what" (printf "apiTokens[%s]" .name) "required" true) -}}
{{- end -}}
{{- range .Values.connectors -}}
{{- $name := .name -}}
{{- if and .webhook (hasKey .webhook "secret") (not (include "org-mesh.isSource" .webhook.secret)) -}}
{{- $s := .webhook.secret -}}
{{- $files = append $files (dict "path" (printf "webhook/%s" $name) "key" (printf "webhook-%s" $name) "value" (default "" $s.value) "existingSecret" (default "" $s.existingSecret) "existingSecretKey" (default "" $s.existingSecretKey) "what" (printf "connectors[%s].webhook.secret" $name) "required" true) -}}
{{- end -}}
{{- if and .scim (hasKey .scim "token") (not (include "org-mesh.isSource" .scim.token)) -}}
{{- $s := .scim.token -}}
{{- $files = append $files (dict "path" (printf "scim/%s" $name) "key" (printf "scim-%s" $name) "value" (default "" $s.value) "existingSecret" (default "" $s.existingSecret) "existingSecretKey" (default "" $s.existingSecretKey) "what" (printf "connectors[%s].scim.token" $name) "required" true) -}}
{{- end -}}
{{- end -}}
{{- range $name, $s := .Values.pluginSecrets -}}
{{- $files = append $files (dict "path" (printf "plugin/%s" $name) "key" (printf "plugin-%s" $name) "value" (default "" $s.value) "existingSecret" (default "" $s.existingSecret) "existingSecretKey" (default "" $s.existingSecretKey) "what" (printf "pluginSecrets.%s" $name) "required" true) -}}
{{- end -}}
{{- toJson (dict "files" $files) -}}
{{- end -}}

{{/* "true" when a secret is already an org-mesh source ({env} or {file}). */}}
{{- define "org-mesh.isSource" -}}
{{- if and (kindIs "map" .) (or (hasKey . "env") (hasKey . "file")) }}true{{ end -}}
{{- end -}}

{{/*
Refusals the schema cannot express because they span several values. Each
message names the values to change.
*/}}
{{- define "org-mesh.validate" -}}
{{- $graph := include "org-mesh.graphBackend" . -}}
{{- $cache := include "org-mesh.cacheBackend" . -}}
{{- if eq .Values.global.env "production" -}}
{{- if ne $graph "neo4j" -}}
{{- fail (printf "global.env=production keeps the twin in Neo4j, shared by every replica: graph.backend is %q, set it to neo4j (or leave it empty)" $graph) -}}
{{- end -}}
{{- if ne $cache "redis" -}}
{{- fail (printf "global.env=production shares state through Redis: cache.backend is %q, set it to redis (or leave it empty)" $cache) -}}
{{- end -}}
{{- end -}}
{{- if and (eq $graph "neo4j") (not .Values.neo4j.uri) -}}
{{- fail "graph.backend neo4j needs the server's address: set neo4j.uri (bolt://HOST:7687)" -}}
{{- end -}}
{{- if and (eq $cache "redis") (not .Values.redis.url) -}}
{{- fail "cache.backend redis needs the server's address: set redis.url (redis://HOST:6379/0)" -}}
{{- end -}}
{{- if include "org-mesh.multiReplica" . -}}
{{- if eq $graph "embedded" -}}
{{- fail "the embedded graph keeps the twin in one pod's state folder, so it runs one replica: set graph.backend=neo4j, or replicaCount=1 and autoscaling.enabled=false" -}}
{{- end -}}
{{- if eq $cache "memory" -}}
{{- fail "the memory cache de-duplicates webhooks and queues changes inside one pod, so it runs one replica: set cache.backend=redis, or replicaCount=1 and autoscaling.enabled=false" -}}
{{- end -}}
{{- if .Values.persistence.enabled -}}
{{- fail "persistence.enabled keeps the state folder on one ReadWriteOnce volume, for one replica: turn it off, or set replicaCount=1 and autoscaling.enabled=false" -}}
{{- end -}}
{{- end -}}
{{- if and (include "org-mesh.autoscaling" .) (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) -}}
{{- fail (printf "autoscaling.minReplicas (%d) is above autoscaling.maxReplicas (%d)" (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) -}}
{{- end -}}
{{- range (include "org-mesh.secretFiles" . | fromJson).files -}}
{{- if and .value .existingSecret -}}
{{- fail (printf "%s: give either a value or existingSecret, not both" .what) -}}
{{- end -}}
{{- if and .required (not .value) (not .existingSecret) -}}
{{- fail (printf "%s: set a value or an existingSecret (with existingSecretKey); org-mesh refuses to start without it" .what) -}}
{{- end -}}
{{- if and .existingSecret (not .existingSecretKey) -}}
{{- fail (printf "%s: existingSecret %s needs existingSecretKey, the key inside it" .what .existingSecret) -}}
{{- end -}}
{{- end -}}
{{- if and (eq .Values.plugins.source "configMap") (not .Values.plugins.configMaps) -}}
{{- fail "plugins.source configMap needs plugins.configMaps: one {name, configMap} per plugin" -}}
{{- end -}}
{{- if and (eq .Values.plugins.source "volume") (not .Values.plugins.volume) -}}
{{- fail "plugins.source volume needs plugins.volume, a volume source such as {persistentVolumeClaim: {claimName: NAME}}" -}}
{{- end -}}
{{- if and (not .Values.policies.includeDefaults) (not .Values.policies.files) (not .Values.policies.existingConfigMap) -}}
{{- fail "policies: with includeDefaults false, give policies.files or policies.existingConfigMap; org-mesh needs at least one .rego file" -}}
{{- end -}}
{{- if and .Values.ingress.enabled (not .Values.ingress.host) -}}
{{- fail "ingress.enabled needs ingress.host" -}}
{{- end -}}
{{- end -}}

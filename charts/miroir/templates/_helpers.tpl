{{/* Names and labels. */}}
{{- define "miroir.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "miroir.fullname" -}}
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

{{- define "miroir.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "miroir.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "miroir.selectorLabels" -}}
app.kubernetes.io/name: {{ include "miroir.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "miroir.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* More than one orchestrator pod at any time (fixed replicas or an autoscaler). */}}
{{- define "miroir.multiPod" -}}
{{- if or (gt (int .Values.miroir.replicas) 1) .Values.miroir.hpa.enabled -}}true{{- end -}}
{{- end -}}

{{- define "miroir.secretName" -}}
{{- default (printf "%s-keys" (include "miroir.fullname" .)) .Values.secrets.existingSecret -}}
{{- end -}}

{{/* The Meilisearch nodes: those listed in values, then the chart's own StatefulSet pods. */}}
{{- define "miroir.nodes" -}}
{{- $nodes := concat (list) .Values.nodes -}}
{{- if .Values.meilisearch.enabled -}}
{{- $full := include "miroir.fullname" . -}}
{{- $groups := int .Values.meilisearch.replicaGroups -}}
{{- range $i := until (int .Values.meilisearch.replicas) -}}
{{- $pod := printf "%s-meili-%d" $full $i -}}
{{- $address := printf "http://%s.%s-meili.%s.svc.cluster.local:7700" $pod $full $.Release.Namespace -}}
{{- $nodes = append $nodes (dict "id" $pod "address" $address "replica_group" (printf "g%d" (mod $i $groups))) -}}
{{- end -}}
{{- end -}}
{{- toJson $nodes -}}
{{- end -}}

{{/* Miroir's configuration file, rendered from values; `config` is merged over it. */}}
{{- define "miroir.config" -}}
{{- $store := dict "backend" .Values.taskStore.backend -}}
{{- if eq .Values.taskStore.backend "sqlite" -}}
{{- $_ := set $store "path" "/data/miroir.db" -}}
{{- end -}}
{{- $replicas := int .Values.miroir.replicas -}}
{{- if .Values.miroir.hpa.enabled -}}
{{- $replicas = int .Values.miroir.hpa.maxReplicas -}}
{{- end -}}
{{- $cfg := dict
  "server" (dict "bind" "0.0.0.0" "port" 7700)
  "nodes" (include "miroir.nodes" . | fromJsonArray)
  "replicas" $replicas
  "task_store" $store
  "telemetry" (dict "log_format" "json")
  "plugins" (dict "dir" "/usr/lib/miroir/plugins")
-}}
{{- range $feature := list "multi_search" "vector_search" "shadow" "cdc" -}}
{{- $_ := set $cfg $feature (deepCopy (index $.Values $feature)) -}}
{{- end -}}
{{- if .Values.search_ui.enabled -}}
{{- $_ := set $cfg "search_ui" (deepCopy .Values.search_ui) -}}
{{- end -}}
{{- $merged := mustMergeOverwrite $cfg (deepCopy .Values.config) -}}
{{- toYaml $merged -}}
{{- end -}}

{{- define "miroir.metricsPort" -}}
{{- $metrics := default dict .Values.config.metrics -}}
{{- default 9090 $metrics.port -}}
{{- end -}}

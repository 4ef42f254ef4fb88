{{/*
Chart name, truncated to 63 characters.
*/}}
{{- define "openshell-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: <release>-<chart> unless the release name already contains the chart name.
*/}}
{{- define "openshell-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart label value.
*/}}
{{- define "openshell-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every object.
*/}}
{{- define "openshell-operator.labels" -}}
helm.sh/chart: {{ include "openshell-operator.chart" . }}
{{ include "openshell-operator.instanceLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: openshell-operator
{{- end }}

{{/*
Labels naming this release.
*/}}
{{- define "openshell-operator.instanceLabels" -}}
app.kubernetes.io/name: {{ include "openshell-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Selector labels of the manager pods.
*/}}
{{- define "openshell-operator.selectorLabels" -}}
{{ include "openshell-operator.instanceLabels" . }}
app.kubernetes.io/component: controller-manager
{{- end }}

{{/*
ServiceAccount name.
*/}}
{{- define "openshell-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "openshell-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Manager image: repository@digest, else repository:tag (tag defaults to the appVersion).
*/}}
{{- define "openshell-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Leader election Lease name: leaderElection.id, else <fullname>.openshell.dev (unique per release).
*/}}
{{- define "openshell-operator.leaderElectionID" -}}
{{- default (printf "%s.openshell.dev" (include "openshell-operator.fullname" .)) .Values.leaderElection.id }}
{{- end }}

{{/*
Cluster resource namespaces as a JSON list: manager.clusterResourceNamespaces, else the release
namespace plus the namespaces of the chart's own GatewayConnection's Secrets.
*/}}
{{- define "openshell-operator.clusterResourceNamespaces" -}}
{{- $ns := .Values.manager.clusterResourceNamespaces }}
{{- if not $ns }}
{{- $ns = list .Release.Namespace }}
{{- if .Values.gateway.create }}
{{- $ns = append $ns .Values.gateway.tls.secretNamespace }}
{{- if .Values.gateway.auth.tokenSecretName }}
{{- $ns = append $ns (default .Values.gateway.tls.secretNamespace .Values.gateway.auth.tokenSecretNamespace) }}
{{- end }}
{{- end }}
{{- end }}
{{- $ns | uniq | toJson }}
{{- end }}

{{/*
Namespaces the manager needs Roles in when manager.watchNamespaces is set, as a JSON list: the
watched ones and the cluster resource namespaces.
*/}}
{{- define "openshell-operator.roleNamespaces" -}}
{{- concat .Values.manager.watchNamespaces (include "openshell-operator.clusterResourceNamespaces" . | fromJsonArray) | uniq | toJson }}
{{- end }}

{{/*
Checks of value combinations the schema cannot express.
*/}}
{{- define "openshell-operator.validate" -}}
{{- if and (gt (int .Values.replicas) 1) (not .Values.leaderElection.enabled) }}
{{- fail "replicas > 1 needs leaderElection.enabled=true: without it every replica reconciles" }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.enabled) }}
{{- fail "metrics.serviceMonitor.enabled needs metrics.enabled=true" }}
{{- end }}
{{- if and .Values.metrics.enabled (eq (int .Values.metrics.port) (int .Values.healthProbe.port)) }}
{{- fail "metrics.port and healthProbe.port must differ" }}
{{- end }}
{{- if and .Values.gateway.create (hasPrefix "http://" .Values.gateway.endpoint) }}
{{- fail "gateway.endpoint must not be plaintext http://; use host:port or https://host:port" }}
{{- end }}
{{- end }}

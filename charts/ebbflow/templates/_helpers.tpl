{{/* The chart name, or nameOverride. */}}
{{- define "ebbflow.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The full name: fullnameOverride, else release-chart (the release name alone when it
contains the chart name); 63 characters at most, as DNS labels are. */}}
{{- define "ebbflow.fullname" -}}
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

{{- define "ebbflow.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "ebbflow.labels" -}}
helm.sh/chart: {{ include "ebbflow.chart" . }}
{{ include "ebbflow.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ebbflow
{{- end }}

{{/* Selector labels of the operator's pods. */}}
{{- define "ebbflow.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ebbflow.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ebbflow.operatorSelectorLabels" -}}
{{ include "ebbflow.selectorLabels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "ebbflow.interceptorSelectorLabels" -}}
{{ include "ebbflow.selectorLabels" . }}
app.kubernetes.io/component: interceptor
{{- end }}

{{- define "ebbflow.interceptorName" -}}
{{- printf "%s-interceptor" (include "ebbflow.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The operator's ServiceAccount. */}}
{{- define "ebbflow.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ebbflow.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "ebbflow.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The container hardening both Deployments share. */}}
{{- define "ebbflow.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "ebbflow.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end }}

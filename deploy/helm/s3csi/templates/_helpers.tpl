{{/* The driver's name everywhere a Kubernetes object is named after it. */}}
{{- define "s3csi.name" -}}
{{- default "s3csi" .Values.nameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object, so that `helm uninstall` and `kubectl get -l` find them all. */}}
{{- define "s3csi.labels" -}}
app.kubernetes.io/name: s3csi
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Selector labels of one component (controller or node). */}}
{{- define "s3csi.selector" -}}
app.kubernetes.io/name: s3csi
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "s3csi.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* The ConfigMap holding the custom CA, if any. */}}
{{- define "s3csi.caConfigMap" -}}
{{- if .Values.tls.caCertData -}}
{{ include "s3csi.name" . }}-ca
{{- else -}}
{{ .Values.tls.caCertConfigMap }}
{{- end -}}
{{- end -}}

{{/* Environment every s3csi container shares: S3 settings, log level, API server, CA. */}}
{{- define "s3csi.commonEnv" -}}
- name: AWS_ENDPOINT_URL
  value: {{ .Values.s3.endpointUrl | quote }}
- name: AWS_REGION
  value: {{ .Values.s3.region | quote }}
- name: S3CSI_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
{{- if include "s3csi.caConfigMap" . }}
- name: AWS_CA_BUNDLE
  value: /etc/s3csi/ca/ca-bundle.crt
{{- end }}
{{- with .Values.kubernetesApi }}
{{- if .host }}
- name: KUBERNETES_SERVICE_HOST
  value: {{ .host | quote }}
- name: KUBERNETES_SERVICE_PORT
  value: {{ .port | toString | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Driver-level credentials from the Secret, optional so that the SDK chain may apply. */}}
{{- define "s3csi.credentialsEnv" -}}
{{- $s := .Values.s3CredentialSecret -}}
{{- range $env, $key := dict "AWS_ACCESS_KEY_ID" $s.accessKeyId "AWS_SECRET_ACCESS_KEY" $s.secretAccessKey "AWS_SESSION_TOKEN" $s.sessionToken }}
- name: {{ $env }}
  valueFrom:
    secretKeyRef:
      name: {{ $s.name }}
      key: {{ $key }}
      optional: true
{{- end }}
{{- end -}}

{{- define "s3csi.caVolumeMount" -}}
{{- if include "s3csi.caConfigMap" . }}
- name: custom-ca
  mountPath: /etc/s3csi/ca
  readOnly: true
{{- end }}
{{- end -}}

{{- define "s3csi.caVolume" -}}
{{- if include "s3csi.caConfigMap" . }}
- name: custom-ca
  configMap:
    name: {{ include "s3csi.caConfigMap" . }}
    items:
      - key: ca-bundle.crt
        path: ca-bundle.crt
{{- end }}
{{- end -}}

{{/* Restricted container security: what the controller-side containers and sidecars get. */}}
{{- define "s3csi.restricted" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end -}}

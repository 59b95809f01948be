{{/* Chart name, truncated for label values. */}}
{{- define "tidal.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Name prefix of every object: the release name, or release-chart when the release name lacks "tidal". */}}
{{- define "tidal.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "tidal.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "tidal.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tidal
{{- with .Values.global.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "component" "operator"). */}}
{{- define "tidal.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tidal.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Labels of one component's objects. */}}
{{- define "tidal.componentLabels" -}}
{{ include "tidal.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Object name of one component, e.g. tidal-operator. */}}
{{- define "tidal.componentName" -}}
{{- printf "%s-%s" (include "tidal.fullname" .root) .component -}}
{{- end -}}

{{/* ServiceAccount name of one component: (dict "root" $ "component" "operator" "values" .Values.operator). */}}
{{- define "tidal.serviceAccountName" -}}
{{- if .values.serviceAccount.create -}}
{{- default (include "tidal.componentName" .) .values.serviceAccount.name -}}
{{- else -}}
{{- required (printf "%s.serviceAccount.name is required when %s.serviceAccount.create is false" .key .key) .values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Image of one component: (dict "root" $ "image" "tidal-operator" "values" .Values.operator). */}}
{{- define "tidal.image" -}}
{{- $g := .root.Values.global.image -}}
{{- $repo := default (printf "%s/%s" (trimSuffix "/" $g.registry) .image) .values.image.repository -}}
{{- $tag := .values.image.tag | default $g.tag | default .root.Chart.AppVersion -}}
{{- printf "%s:%s" $repo $tag -}}
{{- end -}}

{{/* The DNS name of a component's Service. */}}
{{- define "tidal.serviceHost" -}}
{{- printf "%s.%s.svc" (include "tidal.componentName" .) .root.Release.Namespace -}}
{{- end -}}

{{/*
The pod template shared by every deployable:
(dict "root" $ "component" "operator" "key" "operator" "image" "tidal-operator" "values" .Values.operator
      "args" (list ...) "ports" (list (dict "name" "metrics" "port" 8080)) "volumes" list "mounts" list)
*/}}
{{- define "tidal.podTemplate" -}}
{{- $root := .root -}}
{{- $v := .values -}}
metadata:
  labels:
    {{- include "tidal.selectorLabels" . | nindent 4 }}
    {{- with $v.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with $v.podAnnotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  serviceAccountName: {{ include "tidal.serviceAccountName" . }}
  automountServiceAccountToken: true
  {{- with $root.Values.global.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  securityContext:
    {{- toYaml ($v.podSecurityContext | default $root.Values.podSecurityContext) | nindent 4 }}
  containers:
    - name: {{ .component }}
      image: {{ include "tidal.image" . }}
      imagePullPolicy: {{ $root.Values.global.image.pullPolicy }}
      args:
        {{- range .args }}
        - {{ . | quote }}
        {{- end }}
        {{- range $v.extraArgs }}
        - {{ . | quote }}
        {{- end }}
      env:
        - name: POD_NAMESPACE
          valueFrom:
            fieldRef:
              fieldPath: metadata.namespace
        - name: POD_NAME
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        - name: SERVICE_ACCOUNT_NAME
          valueFrom:
            fieldRef:
              fieldPath: spec.serviceAccountName
        {{- with .env }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
        {{- with $v.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      ports:
        {{- range .ports }}
        - name: {{ .name }}
          containerPort: {{ .port }}
          protocol: TCP
        {{- end }}
      {{- if .probePort }}
      livenessProbe:
        httpGet:
          path: /healthz
          port: {{ .probePort }}
        initialDelaySeconds: 10
        periodSeconds: 20
      readinessProbe:
        httpGet:
          path: /readyz
          port: {{ .probePort }}
        periodSeconds: 10
      {{- end }}
      securityContext:
        {{- toYaml ($v.securityContext | default $root.Values.securityContext) | nindent 8 }}
      resources:
        {{- toYaml $v.resources | nindent 8 }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
        {{- with .mounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
  volumes:
    - name: tmp
      emptyDir: {}
    {{- with .volumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with $v.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}

{{/* A ServiceAccount: (dict "root" $ "component" ... "key" ... "values" ...). */}}
{{- define "tidal.serviceAccount" -}}
{{- if .values.serviceAccount.create }}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "tidal.serviceAccountName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "tidal.componentLabels" . | nindent 4 }}
  {{- with .values.serviceAccount.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- end -}}

{{/* A PodDisruptionBudget: (dict "root" $ "component" ... "values" ...). */}}
{{- define "tidal.pdb" -}}
{{- if .values.podDisruptionBudget.enabled }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "tidal.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "tidal.componentLabels" . | nindent 4 }}
spec:
  {{- if hasKey .values.podDisruptionBudget "minAvailable" }}
  minAvailable: {{ .values.podDisruptionBudget.minAvailable }}
  {{- else }}
  maxUnavailable: {{ .values.podDisruptionBudget.maxUnavailable }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "tidal.selectorLabels" . | nindent 6 }}
{{- end }}
{{- end -}}

{{/* Lease RBAC for leader election in the release namespace. */}}
{{/* "true" when the operator shards objects between its replicas on Leases: more than one replica and
leaderElect (one writer per object). */}}
{{- define "tidal.operatorSharded" -}}
{{- if and .Values.operator.leaderElect (gt (int .Values.operator.replicas) 1) }}true{{ end -}}
{{- end -}}

{{- define "tidal.leaseRules" -}}
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["create"]
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  resourceNames: [{{ .lease | quote }}]
  verbs: ["get", "update", "patch"]
{{- end -}}

{{/* A ServiceMonitor for one component's metrics port. */}}
{{- define "tidal.serviceMonitor" -}}
{{- $sm := .root.Values.serviceMonitor -}}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "tidal.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "tidal.componentLabels" . | nindent 4 }}
    {{- with $sm.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels:
      {{- include "tidal.selectorLabels" . | nindent 6 }}
  namespaceSelector:
    matchNames: [{{ .root.Release.Namespace | quote }}]
  endpoints:
    - port: metrics
      path: /metrics
      interval: {{ $sm.interval }}
      scrapeTimeout: {{ $sm.scrapeTimeout }}
{{- end -}}

{{/* The metrics adapter's serving certificate Secret. */}}
{{- define "tidal.adapterTLSSecret" -}}
{{- if and (eq .values.tls.mode "secret") .values.tls.secretName -}}
{{- .values.tls.secretName -}}
{{- else -}}
{{- printf "%s-tls" (include "tidal.componentName" .) -}}
{{- end -}}
{{- end -}}

{{/* The Secret with the operator's client certificate for the adapter's sample stream: (dict "root" $ "values" .Values.metricsAdapter).
The helm and certManager modes name it <fullname>-operator-stream-tls. */}}
{{- define "tidal.operatorStreamSecret" -}}
{{- if eq .values.tls.mode "secret" -}}
{{- $_ := required "metricsAdapter.tls.caBundle (base64 PEM) is required with tls.mode secret" .values.tls.caBundle -}}
{{- required "metricsAdapter.tls.clientSecretName (the operator's client certificate for the sample stream) is required with tls.mode secret" .values.tls.clientSecretName -}}
{{- else -}}
{{- printf "%s-operator-stream-tls" (include "tidal.fullname" .root) -}}
{{- end -}}
{{- end -}}

{{/*
Base64 tls.crt and tls.key (as YAML) of a leaf certificate in tls.mode helm: the existing Secret's when the CA was
kept and the Secret has both, else newly signed by the CA.
(dict "ns" namespace "name" secret "kept" bool "ca" $ca "cn" commonName "hosts" (list ...) "days" validity)
*/}}
{{- define "tidal.leafData" -}}
{{- $old := lookup "v1" "Secret" .ns .name -}}
{{- if and .kept $old (index $old "data") (index $old.data "tls.crt") (index $old.data "tls.key") -}}
crt: {{ index $old.data "tls.crt" }}
key: {{ index $old.data "tls.key" }}
{{- else -}}
{{- $cert := genSignedCert .cn nil .hosts (int .days) .ca -}}
crt: {{ $cert.Cert | b64enc }}
key: {{ $cert.Key | b64enc }}
{{- end -}}
{{- end -}}

{{/* Where the triggerAuthFiles Secret is mounted: the root of ClusterTriggerAuthentication spec.filePath. */}}
{{- define "tidal.authFilesDir" -}}
/var/run/tidal/auth-files
{{- end }}

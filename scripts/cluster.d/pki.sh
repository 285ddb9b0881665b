# shellcheck shell=bash
# Certificates, tokens and kubeconfigs of the test cluster, made with openssl
# on first `up` and kept in the state directory until `down`. ECDSA P-256
# keys: generated in milliseconds, accepted by every component.
# Uses from scripts/cluster: PKI, NODE_NAME, API_URL, and writes
# ADMIN_KUBECONFIG and KUBELET_KUBECONFIG.

_pki_key() { openssl ecparam -name prime256v1 -genkey -noout -out "$1" 2>/dev/null && chmod 0600 "$1"; }

# _pki_cert <name> <subject> <subjectAltName or ""> : signs <name>.crt with the CA.
_pki_cert() {
  local name="$1" subj="$2" san="$3" ext
  _pki_key "$PKI/$name.key" || return 1
  ext="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth"
  [ -z "$san" ] || ext+=$'\n'"subjectAltName=$san"
  openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null &&
    openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
      -CAcreateserial -days 30 -sha256 -extfile <(printf '%s\n' "$ext") \
      -out "$PKI/$name.crt" 2>/dev/null &&
    rm -f "$PKI/$name.csr"
}

# _kubeconfig <file> <user> <token>
_kubeconfig() {
  local ca
  ca=$(base64 -w0 <"$PKI/ca.crt")
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: s3csi-test
  cluster: {server: "$API_URL", certificate-authority-data: "$ca"}
users:
- name: $2
  user: {token: "$3"}
contexts:
- name: s3csi-test
  context: {cluster: s3csi-test, user: $2}
current-context: s3csi-test
EOF
  chmod 0600 "$1"
}

# Makes whatever is missing; a complete set is left as is (`up` twice).
pki_ensure() {
  ADMIN_KUBECONFIG="$PKI/admin.kubeconfig"
  KUBELET_KUBECONFIG="$PKI/kubelet.kubeconfig"
  [ "$(cat "$PKI/done" 2>/dev/null)" = "$NODE_NAME" ] && return 0
  rm -rf "$PKI" && mkdir -p "$PKI" && chmod 0700 "$PKI"
  _pki_key "$PKI/ca.key" &&
    openssl req -x509 -new -key "$PKI/ca.key" -subj "/CN=s3csi-test-ca" -days 30 -sha256 \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -out "$PKI/ca.crt" 2>/dev/null || return 1
  _pki_cert apiserver "/CN=kube-apiserver" \
    "IP:127.0.0.1,IP:$SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local" ||
    return 1
  _pki_cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "" || return 1
  _pki_cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME" \
    "DNS:$NODE_NAME,DNS:localhost,IP:127.0.0.1" || return 1
  _pki_key "$PKI/sa.key" && openssl ec -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null ||
    return 1
  local admin node
  admin=$(openssl rand -hex 24) node=$(openssl rand -hex 24)
  printf '%s,admin,admin,system:masters\n%s,system:node:%s,node-%s,system:nodes\n' \
    "$admin" "$node" "$NODE_NAME" "$NODE_NAME" >"$PKI/tokens.csv"
  chmod 0600 "$PKI/tokens.csv"
  _kubeconfig "$ADMIN_KUBECONFIG" admin "$admin"
  _kubeconfig "$KUBELET_KUBECONFIG" "system:node:$NODE_NAME" "$node"
  echo "$NODE_NAME" >"$PKI/done"
}

#!/usr/bin/env bash
# Makes a box's TLS identity: a private key and a certificate signing request whose CN is the
# device id (the broker's ACL holds the box to hawkeye/{CN}/), and, given the city's CA, signs it.
#
#   deploy/fleet/device-cert.sh DEVICE_ID OUT_DIR              key + CSR (on the box; the key stays there)
#   deploy/fleet/device-cert.sh DEVICE_ID OUT_DIR CA.crt CA.key   also sign it (at the CA) for DAYS (default 825)
#
# Writes OUT_DIR/DEVICE_ID.key (0600), OUT_DIR/DEVICE_ID.csr and, when signing, OUT_DIR/DEVICE_ID.crt.
# In hawkeye.toml: [mqtt] url = "mqtts://…", ca_file = "ca.crt", client_cert = "DEVICE_ID.crt",
# client_key = "DEVICE_ID.key", and [device] id = "DEVICE_ID".
set -euo pipefail
if [ $# -ne 2 ] && [ $# -ne 4 ]; then
  sed -n '2,12p' "$0" >&2
  exit 2
fi
id=$1 out=$2
if ! [[ $id =~ ^[A-Za-z0-9_-]+$ ]]; then
  echo "device id $id: only letters, digits, '-' and '_' (it is a topic level and the certificate CN)" >&2
  exit 2
fi
mkdir -p "$out"
if [ ! -f "$out/$id.key" ]; then
  (umask 077; openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$out/$id.key")
fi
openssl req -new -key "$out/$id.key" -subj "/CN=$id" -out "$out/$id.csr"
if [ $# -eq 4 ]; then
  ext=$(mktemp)
  trap 'rm -f "$ext"' EXIT
  printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n' > "$ext"
  openssl x509 -req -in "$out/$id.csr" -CA "$3" -CAkey "$4" -CAcreateserial -days "${DAYS:-825}" \
    -extfile "$ext" -out "$out/$id.crt" 2>/dev/null
  echo "$out/$id.crt: CN=$id, signed by $(openssl x509 -in "$3" -noout -subject)"
fi

#!/usr/bin/env bash
# Creates the secret files compose.yaml reads, under ./secrets/ (or the directory given), each
# only if missing: random passwords, postern's database URL, internal token (and nginx's include
# line carrying it) and secret key, and a
# self-signed TLS certificate for nginx and Dovecot (replace secrets/tls/*.pem with your own).
# The directory is 0700; the files 0644, because each is mounted alone into a container whose
# process (postern: uid 10001) is not their owner.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-secrets}
mkdir -p "$dir/tls"
chmod 0700 "$dir"

make() { # name, command printing the value
  local file=$dir/$1
  shift
  if [[ ! -s $file ]]; then
    "$@" > "$file.tmp"
    chmod 0644 "$file.tmp"
    mv "$file.tmp" "$file"
  fi
}
random() { openssl rand -hex 24 | tr -d '\n'; }

make mariadb_root_password random
make mariadb_postern_password random
make postern_db_url sh -c "printf 'mysql://postern:%s@mariadb:3306/mailcow' \"\$(cat '$dir/mariadb_postern_password')\""
make postern_internal_token random
# nginx's verify call sends the token: deploy/nginx/postern-sogo.conf includes this one line.
make nginx_postern_auth.conf sh -c "printf 'proxy_set_header Authorization \"Bearer %s\";\\n' \"\$(cat '$dir/postern_internal_token')\""
make postern_secret_key sh -c 'openssl rand -base64 32 | tr -d "\n"'
make keycloak_admin_password random
if [[ ! -s $dir/tls/cert.pem || ! -s $dir/tls/key.pem ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 \
    -subj "/CN=${POSTERN_MAIL_HOST:-mail.example.org}" -addext "subjectAltName=DNS:${POSTERN_MAIL_HOST:-mail.example.org}" \
    -keyout "$dir/tls/key.pem" -out "$dir/tls/cert.pem" 2>/dev/null
  chmod 0644 "$dir/tls/key.pem" "$dir/tls/cert.pem"
fi
echo "secrets in $dir/"

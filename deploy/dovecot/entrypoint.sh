#!/bin/sh
# Fills what the shipped configuration leaves to the operator from the container's environment
# and secret files, then starts Dovecot:
# - POSTERN_INTERNAL_TOKEN from POSTERN_INTERNAL_TOKEN_FILE (the Lua reads it from the
#   environment, through import_environment);
# - the SQL userdb's connect line from DOVECOT_DB_HOST, DOVECOT_DB_PORT, DOVECOT_DB_NAME,
#   DOVECOT_DB_USER and DOVECOT_DB_PASSWORD_FILE, into a copy of the shipped
#   dovecot-postern-userdb-sql.conf.ext (mode 0600, owned by root).
set -eu
if [ -n "${POSTERN_INTERNAL_TOKEN_FILE:-}" ]; then
  POSTERN_INTERNAL_TOKEN=$(cat "$POSTERN_INTERNAL_TOKEN_FILE")
  export POSTERN_INTERNAL_TOKEN
fi
: "${POSTERN_AUTH_URL:?POSTERN_AUTH_URL must name postern's internal listener by IP, e.g. http://172.30.82.10:9082/}"
password=$(cat "${DOVECOT_DB_PASSWORD_FILE:?DOVECOT_DB_PASSWORD_FILE must name the userdb password file}")
case "$password" in *' '* | *'"'*) echo "the database password must not contain spaces or quotes" >&2; exit 1 ;; esac
connect="host=${DOVECOT_DB_HOST:-mariadb} port=${DOVECOT_DB_PORT:-3306} dbname=${DOVECOT_DB_NAME:-mailcow} user=${DOVECOT_DB_USER:-dovecot} password=$password"
userdb=/etc/dovecot/dovecot-postern-userdb-sql.conf.ext
umask 077
grep -q '^connect = ' "$userdb.in" || { echo "$userdb.in has no connect line" >&2; exit 1; }
awk -v line="connect = \"$connect\"" '/^connect = /{ print line; next } { print }' "$userdb.in" > "$userdb"
exec "$@"

#!/bin/sh
# Makes SOGo's configuration for a stack where MariaDB and Dovecot are hosts of their own, then
# starts sogod (the arguments):
# - /etc/sogo/sogo.conf from the shipped keys ($SOGO_CONF_SNIPPET, default
#   /etc/sogo/sogo.conf.snippet, i.e. deploy/sogo/sogo.conf.snippet): its database URLs
#   (mysql://sogo:CHANGE-ME@127.0.0.1:3306/mailcow/...) get SOGO_DB_USER, the password in
#   SOGO_DB_PASSWORD_FILE, SOGO_DB_HOST (host:port) and SOGO_DB_NAME; its IMAP and Sieve
#   servers get SOGO_IMAP_HOST, with STARTTLS when SOGO_IMAP_TLS=YES. Nothing else changes.
# - the user source's view `_sogo_static_view`, when missing (mailcow's own init_db makes and
#   keeps it; an existing one is left alone).
# SOGO_SETUP_ONLY=1 stops before starting sogod (the suite runs this script so).
set -eu
snippet=${SOGO_CONF_SNIPPET:-/etc/sogo/sogo.conf.snippet}
conf=${SOGO_CONF:-/etc/sogo/sogo.conf}
db_host=${SOGO_DB_HOST:-mariadb:3306}
db_name=${SOGO_DB_NAME:-mailcow}
db_user=${SOGO_DB_USER:-sogo}
imap_host=${SOGO_IMAP_HOST:-dovecot}
case "${SOGO_IMAP_TLS:-NO}" in
  YES) tls='/?tls=YES' ;;
  NO) tls='' ;;
  *) echo "SOGO_IMAP_TLS must be YES or NO" >&2; exit 1 ;;
esac
password=$(cat "${SOGO_DB_PASSWORD_FILE:?SOGO_DB_PASSWORD_FILE must name the database password file}")
# The password goes into URLs and a sed replacement: only characters that need no escaping.
case "$password" in *[!A-Za-z0-9._~-]*) echo "SOGo's database password may hold only letters, digits and . _ ~ -" >&2; exit 1 ;; esac
for value in "$db_host" "$db_name" "$db_user" "$imap_host"; do
  case "$value" in '' | *[!A-Za-z0-9.:_-]*) echo "SOGO_DB_HOST, SOGO_DB_NAME, SOGO_DB_USER and SOGO_IMAP_HOST may hold only letters, digits and . : _ -" >&2; exit 1 ;; esac
done

db_url='mysql://sogo:CHANGE-ME@127\.0\.0\.1:3306/mailcow/'
imap_url='imap://127\.0\.0\.1:143'
sieve_url='sieve://127\.0\.0\.1:4190'
# Any other loopback database or IMAP address would stay pointing at SOGo's own container.
if sed -e "s#$db_url##g" -e "s#$imap_url##" -e "s#$sieve_url##" "$snippet" |
  grep -q -e 'CHANGE-ME' -e '127\.0\.0\.1:3306' -e 'imap://127\.0\.0\.1' -e 'sieve://127\.0\.0\.1'; then
  echo "$snippet has a database or IMAP address this script does not know" >&2
  exit 1
fi
umask 077
sed -e "s#$db_url#mysql://$db_user:$password@$db_host/$db_name/#g" \
  -e "s#$imap_url#imap://$imap_host:143$tls#" \
  -e "s#$sieve_url#sieve://$imap_host:4190$tls#" \
  "$snippet" > "$conf.tmp"
mv "$conf.tmp" "$conf"

# The same view test/support/webmail-upstream.ts gives the suite's sogod (see the snippet).
MYSQL_PWD=$password mariadb --host="${db_host%:*}" --port="${db_host##*:}" --user="$db_user" "$db_name" -e "
  CREATE VIEW IF NOT EXISTS _sogo_static_view AS
    SELECT username AS c_uid, domain, username AS c_name, '' AS c_password, name AS c_cn, username AS mail
      FROM mailbox WHERE active = 1 AND kind NOT IN ('location', 'thing', 'group')"

[ "${SOGO_SETUP_ONLY:-}" = 1 ] && exit 0
exec "$@"

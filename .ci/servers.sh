#!/usr/bin/env bash
# Installs (when missing), starts and prepares the database servers the
# integration tests load from: PostgreSQL and MariaDB, from Debian packages.
# Creates the user `dht` (password in DHT_TEST_DB_PASSWORD) owning the
# database `dht_test` on each, and prints `export ...` lines for the tests:
#   eval "$(.ci/servers.sh)"
# Idempotent; needs root. Progress goes to stderr.
set -euo pipefail
log() { echo "servers: $*" >&2; }

PASSWORD="${DHT_TEST_DB_PASSWORD:-dht-test-pw}"
need=()
command -v pg_ctlcluster >/dev/null 2>&1 || need+=(postgresql)
{ command -v mariadbd >/dev/null 2>&1 || command -v mysqld >/dev/null 2>&1; } || need+=(mariadb-server mariadb-client)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi

# PostgreSQL: run as the postgres user (pg_ctlcluster switches to it).
ver=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -qx "$ver main"; then
  log "creating PostgreSQL $ver cluster"
  pg_createcluster "$ver" main >&2
fi
if ! pg_lsclusters -h | awk '$1=="'"$ver"'" && $2=="main" {print $4}' | grep -qx online; then
  log "starting PostgreSQL $ver"
  pg_ctlcluster "$ver" main start >&2
fi
pg_port=$(pg_lsclusters -h | awk '$1=="'"$ver"'" && $2=="main" {print $3}')
for _ in $(seq 1 30); do
  su postgres -c "psql -p $pg_port -tAc 'select 1'" >/dev/null 2>&1 && break
  sleep 1
done
su postgres -c "psql -p $pg_port -v ON_ERROR_STOP=1 -q" >&2 <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'dht') THEN
    CREATE ROLE dht LOGIN PASSWORD '$PASSWORD';
  ELSE
    ALTER ROLE dht LOGIN PASSWORD '$PASSWORD';
  END IF;
END \$\$;
SELECT 'CREATE DATABASE dht_test OWNER dht' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'dht_test')\gexec
SQL

# MariaDB: start without systemd when needed.
if ! mysqladmin ping --silent >/dev/null 2>&1; then
  log "starting MariaDB"
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  if ! service mariadb start >&2 2>&1; then
    (mysqld_safe --user=mysql >/tmp/dht-mysqld.log 2>&1 &)
  fi
  for _ in $(seq 1 60); do
    mysqladmin ping --silent >/dev/null 2>&1 && break
    sleep 1
  done
fi
mysql -uroot >&2 <<SQL
CREATE DATABASE IF NOT EXISTS dht_test CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
CREATE USER IF NOT EXISTS 'dht'@'localhost' IDENTIFIED BY '$PASSWORD';
CREATE USER IF NOT EXISTS 'dht'@'127.0.0.1' IDENTIFIED BY '$PASSWORD';
ALTER USER 'dht'@'localhost' IDENTIFIED BY '$PASSWORD';
ALTER USER 'dht'@'127.0.0.1' IDENTIFIED BY '$PASSWORD';
GRANT ALL ON dht_test.* TO 'dht'@'localhost';
GRANT ALL ON dht_test.* TO 'dht'@'127.0.0.1';
FLUSH PRIVILEGES;
SQL
my_port=$(mysql -uroot -N -e "SELECT @@port")

echo "export DHT_TEST_PG_URL=postgres://dht@127.0.0.1:$pg_port/dht_test"
echo "export DHT_TEST_MYSQL_URL=mysql://dht@127.0.0.1:$my_port/dht_test"
echo "export DHT_TEST_DB_PASSWORD='$PASSWORD'"
log "PostgreSQL on $pg_port, MariaDB on $my_port"

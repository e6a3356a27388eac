#!/usr/bin/env bash
# Bring up the real services the tests use: MariaDB, ZooKeeper and a MediaWiki loaded with the
# ltgwiki dump; on request also Prometheus and a Prometheus Pushgateway (the metrics tests).
# Usage: scripts/services.sh start|stop|status [mariadb|zookeeper|mediawiki|prometheus|
# pushgateway ...] (no names = the first three; the test fixtures start the other two when a
# test needs them).  Idempotent: a service that already answers is left as it is, so a second
# `start` returns in well under a second.  State lives in var/services/ (gitignored).
#
# Environment: ADDLINK_SHARED (default <repo>/../shared), ADDLINK_SERVICES_DIR (default
# <repo>/var/services), ADDLINK_MW_PORT (8089), ADDLINK_ZK_PORT (2181), ADDLINK_PROM_PORT
# (9090), ADDLINK_PUSHGATEWAY_PORT (9091), ADDLINK_PROM_SCRAPE_INTERVAL (1s: the tests wait
# for scrapes; a production Prometheus scrapes every 15 s or more).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${ADDLINK_SERVICES_DIR:-$REPO/var/services}
SHARED=${ADDLINK_SHARED:-$REPO/../shared}
MW_PORT=${ADDLINK_MW_PORT:-8089}
ZK_PORT=${ADDLINK_ZK_PORT:-2181}
PROM_PORT=${ADDLINK_PROM_PORT:-9090}
PG_PORT=${ADDLINK_PUSHGATEWAY_PORT:-9091}
PROM_SCRAPE=${ADDLINK_PROM_SCRAPE_INTERVAL:-1s}
MW_DUMP=${ADDLINK_MW_DUMP:-$SHARED/data/dumps/ltgwiki-20170901-pages-articles.xml.bz2}
MW_HOME=/usr/share/mediawiki
MW_DIR=$STATE/mediawiki
MW_CONF=$MW_DIR/conf/LocalSettings.php
MW_DBNAME=ltgwiki
# Bump when the install/import recipe below changes: forces a fresh import.
MW_RECIPE=3
ALL=(mariadb zookeeper mediawiki prometheus pushgateway)
DEFAULT=(mariadb zookeeper mediawiki)  # `start` without names (make services)

log() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else die "need root (or sudo) to run: $*"
    fi
}

apt_install() {
    log "apt-get install $*"
    local opts=(-y -q --no-install-recommends)
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install "${opts[@]}" "$@" >/dev/null; then
        as_root apt-get update -q >/dev/null
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install "${opts[@]}" "$@" >/dev/null \
            || die "apt-get install $* failed"
    fi
}

# wait_for SECONDS DESCRIPTION COMMAND...: poll COMMAND every 0.2 s.
wait_for() {
    local limit=$1 what=$2; shift 2
    local end=$((SECONDS + limit))
    until "$@"; do
        ((SECONDS < end)) || return 1
        sleep 0.2
    done
}

pid_alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# Stop the whole process group whose leader's pid is in pidfile $1.
stop_group() {
    local pidfile=$1 name=$2 pid
    if ! pid_alive "$pidfile"; then
        rm -f "$pidfile"; log "$name: not running (not started by this script)"; return 0
    fi
    pid=$(cat "$pidfile")
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    local end=$((SECONDS + 10))
    while kill -0 -- "-$pid" 2>/dev/null && ((SECONDS < end)); do sleep 0.2; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    rm -f "$pidfile"
    log "$name: stopped"
}

# ---------------------------------------------------------------- MariaDB
mariadb_up() {
    command -v mysqladmin >/dev/null &&
        mysqladmin --protocol=tcp -h127.0.0.1 -P3306 -uroot --connect-timeout=2 ping >/dev/null 2>&1
}

start_mariadb() {
    if mariadb_up; then log "mariadb: up on 127.0.0.1:3306"; return 0; fi
    [[ -x /usr/sbin/mariadbd ]] || apt_install mariadb-server
    local dir=$STATE/mariadb
    mkdir -p "$dir"
    if as_root mysqladmin -uroot ping >/dev/null 2>&1; then
        log "mariadb: running (socket) but TCP root login fails; enabling it"
    else
        as_root install -d -o mysql -g mysql /run/mysqld
        if [[ ! -d /var/lib/mysql/mysql ]]; then
            as_root mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
        fi
        as_root start-stop-daemon --start --background --make-pidfile \
            --pidfile "$dir/mariadb.pid" --exec /usr/sbin/mariadbd -- \
            --user=mysql --bind-address=127.0.0.1 --port=3306 9>&- \
            || die "mariadb: start-stop-daemon failed"
        wait_for 30 mariadb as_root mysqladmin -uroot ping >/dev/null 2>&1 \
            || die "mariadb: no answer on its socket after 30 s"
    fi
    # Debian's root@localhost authenticates by unix socket only; allow TCP with no password.
    as_root mysql -uroot <<'SQL' || die "mariadb: could not enable TCP root login"
ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('');
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
FLUSH PRIVILEGES;
SQL
    mariadb_up || die "mariadb: started but root cannot log in over TCP"
    log "mariadb: started on 127.0.0.1:3306"
}

stop_mariadb() {
    local pidfile=$STATE/mariadb/mariadb.pid
    if pid_alive "$pidfile"; then
        as_root mysqladmin -uroot shutdown || kill "$(cat "$pidfile")"
        rm -f "$pidfile"; log "mariadb: stopped"
    else
        log "mariadb: left alone (not started by this script)"
    fi
}

status_mariadb() { if mariadb_up; then echo "mariadb: up 127.0.0.1:3306"; else echo "mariadb: down"; fi; }

# -------------------------------------------------------------- ZooKeeper
# Four-letter-word command to ZooKeeper over bash's /dev/tcp (no netcat needed).
zk_cmd() {
    timeout 3 bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$ZK_PORT"' && printf %s "$0" >&3 && cat <&3' \
        "$1" 2>/dev/null
}
zk_up() { [[ $(zk_cmd ruok) == imok ]]; }

start_zookeeper() {
    if zk_up; then log "zookeeper: up on 127.0.0.1:$ZK_PORT"; return 0; fi
    [[ -f /usr/share/java/zookeeper.jar ]] || apt_install zookeeper
    command -v java >/dev/null || apt_install default-jre-headless
    local dir=$STATE/zookeeper
    mkdir -p "$dir/data"
    cat >"$dir/zoo.cfg" <<EOF
dataDir=$dir/data
clientPort=$ZK_PORT
clientPortAddress=127.0.0.1
tickTime=2000
maxSessionTimeout=60000
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr,stat,envi
EOF
    setsid bash -c 'echo $$ >"$0"; exec java -Xmx256m -cp /usr/share/java/zookeeper.jar \
        org.apache.zookeeper.server.quorum.QuorumPeerMain "$1"' \
        "$dir/zookeeper.pid" "$dir/zoo.cfg" >"$dir/zookeeper.log" 2>&1 </dev/null 9>&- &
    wait_for 30 zookeeper zk_up || die "zookeeper: no 'imok' after 30 s (see $dir/zookeeper.log)"
    log "zookeeper: started on 127.0.0.1:$ZK_PORT"
}

stop_zookeeper() { stop_group "$STATE/zookeeper/zookeeper.pid" zookeeper; }

status_zookeeper() {
    if zk_up; then echo "zookeeper: up 127.0.0.1:$ZK_PORT ($(zk_cmd srvr | head -n1))"
    else echo "zookeeper: down"; fi
}

# -------------------------------------------------------------- MediaWiki
MW_API=http://127.0.0.1:$MW_PORT/api.php

mw_siteinfo() {
    curl -fsS --max-time 5 "$MW_API?action=query&meta=siteinfo&format=json&formatversion=2" 2>/dev/null
}
mw_up() { local doc; doc=$(mw_siteinfo) && [[ $doc == *"\"wikiid\":\"$MW_DBNAME\""* ]]; }
mw_port_busy() { curl -s --max-time 2 -o /dev/null "http://127.0.0.1:$MW_PORT/"; }

mw_stamp() {
    printf 'recipe=%s dump=%s mw=%s\n' "$MW_RECIPE" "$(sha256sum <"$MW_DUMP" | cut -d' ' -f1)" \
        "$(dpkg-query -W -f='${Version}' mediawiki 2>/dev/null || echo unknown)"
}

mw_maint() { MW_CONFIG_FILE=$MW_CONF php "$MW_HOME/maintenance/$1.php" "${@:2}"; }

mw_install() {
    local t0=$SECONDS t
    log "mediawiki: installing into $MW_DIR and importing $(basename "$MW_DUMP")"
    rm -rf "$MW_DIR/data" "$MW_DIR/conf" "$MW_DIR/stamp"
    mkdir -p "$MW_DIR/data" "$MW_DIR/conf" "$MW_DIR/cache"
    php "$MW_HOME/maintenance/install.php" --dbtype sqlite --dbpath "$MW_DIR/data" \
        --dbname "$MW_DBNAME" --server "http://127.0.0.1:$MW_PORT" --scriptpath "" --lang ltg \
        --pass "addlink-admin-password" --confpath "$MW_DIR/conf" "Vikipedeja" Admin \
        >"$MW_DIR/install.log" 2>&1 || die "mediawiki: install.php failed (see $MW_DIR/install.log)"
    cat >>"$MW_CONF" <<EOF

# ---- addlink test settings (scripts/services.sh) ----
\$wgShowExceptionDetails = true;
\$wgCacheDirectory = "$MW_DIR/cache";
# Jobs run only from maintenance/runJobs.php, never inside web requests.
\$wgJobRunRate = 0;
# Imported modules, parser functions and references of the ltgwiki dump.
wfLoadExtension( 'Scribunto' );
wfLoadExtension( 'ParserFunctions' );
wfLoadExtension( 'Cite' );
# SQLite without fsync: 5x faster import; safe against process crashes (a throwaway test wiki).
\$wgDBservers = [ [
	'type' => 'sqlite', 'dbname' => \$wgDBname, 'host' => '', 'user' => '', 'password' => '',
	'load' => 1, 'flags' => DBO_DEFAULT, 'variables' => [ 'synchronous' => 'OFF' ],
] ];
# Anonymous API edits from the tests, without throttling.
\$wgGroupPermissions['*']['edit'] = true;
\$wgGroupPermissions['*']['createpage'] = true;
\$wgGroupPermissions['*']['noratelimit'] = true;
\$wgGroupPermissions['*']['applychangetags'] = true;
\$wgRateLimits = [];
# The tag GrowthExperiments puts on Add-a-Link edits: defined, active and addable through
# action=edit&tags=newcomer%20task%20add%20link (like GrowthExperiments' software tags).
\$wgHooks['ListDefinedTags'][] = static function ( &\$tags ) {
	\$tags[] = 'newcomer task add link';
};
\$wgHooks['ChangeTagsListActive'][] = static function ( &\$tags ) {
	\$tags[] = 'newcomer task add link';
};
\$wgHooks['ChangeTagsAllowedAdd'][] = static function ( &\$allowed, \$addTags, \$user ) {
	\$allowed[] = 'newcomer task add link';
};
EOF
    t=$SECONDS
    bzcat "$MW_DUMP" | mw_maint importDump --no-updates >"$MW_DIR/import.log" 2>&1 \
        || die "mediawiki: importDump failed (see $MW_DIR/import.log)"
    log "mediawiki: importDump --no-updates took $((SECONDS - t)) s"
    # Link tables (templates, categories, links, page props) in two parallel halves by page id.
    t=$SECONDS
    local max half
    max=$(sqlite3 "$MW_DIR/data/$MW_DBNAME.sqlite" 'SELECT MAX(page_id) FROM page')
    half=$((max / 2))
    mw_maint refreshLinks --e "$half" >"$MW_DIR/refresh1.log" 2>&1 &
    local p1=$!
    mw_maint refreshLinks $((half + 1)) >"$MW_DIR/refresh2.log" 2>&1 \
        || die "mediawiki: refreshLinks failed (see $MW_DIR/refresh2.log)"
    wait "$p1" || die "mediawiki: refreshLinks failed (see $MW_DIR/refresh1.log)"
    log "mediawiki: refreshLinks took $((SECONDS - t)) s"
    t=$SECONDS
    {
        mw_maint rebuildtextindex
        mw_maint initSiteStats --update
        mw_maint runJobs
    } >"$MW_DIR/post.log" 2>&1 || die "mediawiki: post-import step failed (see $MW_DIR/post.log)"
    log "mediawiki: rebuildtextindex+initSiteStats+runJobs took $((SECONDS - t)) s"
    mw_stamp >"$MW_DIR/stamp"
    log "mediawiki: install+import took $((SECONDS - t0)) s in total"
}

start_mediawiki() {
    [[ -f $MW_DUMP ]] || die "mediawiki: dump not found: $MW_DUMP (set ADDLINK_SHARED)"
    local need=()
    [[ -f $MW_HOME/maintenance/install.php ]] || need+=(mediawiki)
    local mods; mods=$(php -m 2>/dev/null || true)
    [[ $mods == *pdo_sqlite* ]] || need+=(php-sqlite3)
    command -v php >/dev/null || need+=(php-cli)
    command -v sqlite3 >/dev/null || need+=(sqlite3)
    command -v curl >/dev/null || need+=(curl)
    ((${#need[@]} == 0)) || apt_install "${need[@]}" php-cli
    mkdir -p "$MW_DIR"
    # Only a server this checkout started (its pid file) is reused: another checkout's wiki
    # answers the same siteinfo but holds that checkout's bot password and test pages, and
    # the tests would fail against it for no reason they could name.
    if ! [[ -f $MW_DIR/stamp && -f $MW_CONF && "$(cat "$MW_DIR/stamp")" == "$(mw_stamp)" ]]; then
        stop_group "$MW_DIR/php.pid" mediawiki >/dev/null 2>&1
        mw_install
    fi
    if mw_port_busy; then
        pid_alive "$MW_DIR/php.pid" && mw_up && { log "mediawiki: up at $MW_API"; return 0; }
        mw_up && die "mediawiki: port $MW_PORT is served by a MediaWiki this checkout did not" \
            "start (another checkout's: stop it with that checkout's scripts/services.sh stop" \
            "mediawiki, or set ADDLINK_MW_PORT)"
        die "mediawiki: port $MW_PORT is taken by something else (set ADDLINK_MW_PORT)"
    fi
    # Own process group (setsid): stopping must also stop the PHP_CLI_SERVER_WORKERS children.
    # OPcache is off for the CLI by default; without it every request compiles MediaWiki
    # again (a 50-page query: 160 ms instead of 20 ms), and the wiki, not addlink, would be
    # what the runner benchmarks measure.
    MW_CONFIG_FILE=$MW_CONF PHP_CLI_SERVER_WORKERS=4 setsid bash -c \
        'echo $$ >"$0"; exec php -d opcache.enable_cli=1 -S "127.0.0.1:$1" -t "$2"' \
        "$MW_DIR/php.pid" "$MW_PORT" "$MW_HOME" >"$MW_DIR/php-server.log" 2>&1 </dev/null 9>&- &
    wait_for 30 mediawiki mw_up \
        || die "mediawiki: api.php did not answer after 30 s (see $MW_DIR/php-server.log)"
    log "mediawiki: serving $MW_API"
}

stop_mediawiki() { stop_group "$MW_DIR/php.pid" mediawiki; }

status_mediawiki() {
    if mw_up; then echo "mediawiki: up $MW_API"; else echo "mediawiki: down"; fi
}

# ---------------------------------------------------- Prometheus Pushgateway
PG_URL=http://127.0.0.1:$PG_PORT
PG_DIR=$STATE/pushgateway

# Ready, and a Pushgateway (its /api/v1/status names its build), not something else.
pg_up() {
    curl -fsS --max-time 3 "$PG_URL/-/ready" >/dev/null 2>&1 &&
        curl -fsS --max-time 3 "$PG_URL/api/v1/status" 2>/dev/null | grep -q '"build_information"'
}

start_pushgateway() {
    if pg_up; then log "pushgateway: up at $PG_URL"; return 0; fi
    command -v prometheus-pushgateway >/dev/null || apt_install prometheus-pushgateway
    command -v curl >/dev/null || apt_install curl
    if curl -s --max-time 2 -o /dev/null "$PG_URL/"; then
        die "pushgateway: port $PG_PORT is taken by something else (set ADDLINK_PUSHGATEWAY_PORT)"
    fi
    mkdir -p "$PG_DIR"
    # Persistence: pushed groups survive a restart, as a production Pushgateway's do.
    setsid bash -c 'echo $$ >"$0"; exec prometheus-pushgateway --web.listen-address="$1" \
        --persistence.file="$2" --persistence.interval=1m' \
        "$PG_DIR/pushgateway.pid" "127.0.0.1:$PG_PORT" "$PG_DIR/metrics.store" \
        >"$PG_DIR/pushgateway.log" 2>&1 </dev/null 9>&- &
    wait_for 30 pushgateway pg_up || die "pushgateway: no answer after 30 s (see $PG_DIR/pushgateway.log)"
    log "pushgateway: started at $PG_URL"
}

stop_pushgateway() { stop_group "$PG_DIR/pushgateway.pid" pushgateway; }

status_pushgateway() { if pg_up; then echo "pushgateway: up $PG_URL"; else echo "pushgateway: down"; fi; }

# --------------------------------------------------------------- Prometheus
PROM_URL=http://127.0.0.1:$PROM_PORT
PROM_DIR=$STATE/prometheus

# Ready, and ours: its configuration scrapes this Pushgateway.
prom_up() {
    curl -fsS --max-time 3 "$PROM_URL/-/ready" >/dev/null 2>&1 &&
        curl -fsS --max-time 3 "$PROM_URL/api/v1/status/config" 2>/dev/null |
            grep -q "127.0.0.1:$PG_PORT"
}

start_prometheus() {
    if prom_up; then log "prometheus: up at $PROM_URL"; return 0; fi
    command -v prometheus >/dev/null || apt_install prometheus
    command -v curl >/dev/null || apt_install curl
    if curl -s --max-time 2 -o /dev/null "$PROM_URL/"; then
        die "prometheus: port $PROM_PORT is taken by something else (set ADDLINK_PROM_PORT)"
    fi
    mkdir -p "$PROM_DIR/data"
    # Scrapes only the Pushgateway; honor_labels keeps the pushed job/wiki/shard labels.
    cat >"$PROM_DIR/prometheus.yml" <<EOF
global:
  scrape_interval: $PROM_SCRAPE
  evaluation_interval: $PROM_SCRAPE
scrape_configs:
  - job_name: pushgateway
    honor_labels: true
    static_configs:
      - targets: ["127.0.0.1:$PG_PORT"]
EOF
    setsid bash -c 'echo $$ >"$0"; exec prometheus --config.file="$1" \
        --storage.tsdb.path="$2" --storage.tsdb.retention.time=2d --web.listen-address="$3"' \
        "$PROM_DIR/prometheus.pid" "$PROM_DIR/prometheus.yml" "$PROM_DIR/data" \
        "127.0.0.1:$PROM_PORT" >"$PROM_DIR/prometheus.log" 2>&1 </dev/null 9>&- &
    wait_for 60 prometheus prom_up || die "prometheus: not ready after 60 s (see $PROM_DIR/prometheus.log)"
    log "prometheus: started at $PROM_URL (scraping $PG_URL every $PROM_SCRAPE)"
}

stop_prometheus() { stop_group "$PROM_DIR/prometheus.pid" prometheus; }

status_prometheus() { if prom_up; then echo "prometheus: up $PROM_URL"; else echo "prometheus: down"; fi; }

# ------------------------------------------------------------------- main
usage() { die "usage: $0 start|stop|status [${ALL[*]}]"; }

(($# >= 1)) || usage
action=$1; shift
names=("$@")
((${#names[@]})) || names=("${DEFAULT[@]}")
for n in "${names[@]}"; do
    [[ " ${ALL[*]} " == *" $n "* ]] || die "unknown service '$n' (known: ${ALL[*]})"
done
case $action in
    start|stop|status) ;;
    *) usage ;;
esac
mkdir -p "$STATE"
if [[ $action != status ]]; then
    # One start/stop at a time (parallel test sessions must not both import the wiki).
    exec 9>"$STATE/.lock"
    flock -w 900 9 || die "another services.sh $action held $STATE/.lock for 15 minutes"
fi
for n in "${names[@]}"; do "${action}_$n"; done

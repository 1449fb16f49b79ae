# Sourced by the outage and load scripts: a PostgreSQL cluster and a Redis
# of the script's own, on spare ports under a work directory, so a script
# can stop and start them without touching the machine's servers.
#
#   own_postgres_start WORK PORT   initdb (first time) and start; creates database `bench`
#   own_postgres_stop WORK         fast shutdown;  own_postgres_resume WORK PORT  start again
#   own_redis_start WORK PORT      own_redis_stop PORT
#   own_services_cleanup WORK PG_PORT REDIS_PORT   (for an EXIT trap)
OWN_PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)

own_pg_ctl() {
  local work=$1; shift
  runuser -u postgres -- "$OWN_PG_BIN/pg_ctl" -D "$work/pg" -l "$work/pg/postgres.log" -w "$@" >/dev/null
}

own_postgres_resume() {
  own_pg_ctl "$1" -o "-p $2 -k $1/pg -c listen_addresses=127.0.0.1" start
}

own_postgres_start() {
  local work=$1 port=$2
  chmod 755 "$work"
  # initdb refuses to run as root: the cluster belongs to postgres.
  mkdir -p "$work/pg" && chown postgres "$work/pg"
  runuser -u postgres -- "$OWN_PG_BIN/initdb" -D "$work/pg" -U postgres -A trust >/dev/null
  own_postgres_resume "$work" "$port"
  "$OWN_PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U postgres bench
}

own_postgres_stop() { own_pg_ctl "$1" -m fast stop; }

own_redis_start() {
  local work=$1 port=$2
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
    --daemonize yes --dir "$work" --logfile "$work/redis-$port.log"
  for _ in $(seq 1 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}

own_redis_stop() { redis-cli -p "$1" shutdown nosave >/dev/null 2>&1 || true; }

own_services_cleanup() {
  own_redis_stop "$3"
  own_pg_ctl "$1" -m immediate stop 2>/dev/null || true
}

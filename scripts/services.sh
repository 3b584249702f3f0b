#!/usr/bin/env bash
# Checks PostgreSQL, RabbitMQ and Redis on localhost; starts any that has stopped with the
# machine's own commands (DESIGN.md); says what to run when it cannot.
set -uo pipefail

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_for() {  # port, name, seconds
  for _ in $(seq 1 "$3"); do up "$1" && return 0; sleep 1; done
  echo "error: $2 is not answering on 127.0.0.1:$1" >&2; return 1
}
failed=0

if ! up 5432; then
  echo "PostgreSQL is down; starting it"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start \
    || echo "  could not start it; run: pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start" >&2
  wait_for 5432 PostgreSQL 30 || failed=1
fi

if ! up 6379; then
  echo "Redis is down; starting it"
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log \
    || echo "  could not start it; run: redis-server --daemonize yes --port 6379 --save '' --appendonly no" >&2
  wait_for 6379 Redis 15 || failed=1
fi

if ! up 5672; then
  echo "RabbitMQ is down; starting it"
  rabbitmq-server -detached || echo "  could not start it; run: rabbitmq-server -detached" >&2
  for _ in $(seq 1 60); do rabbitmq-diagnostics -q ping >/dev/null 2>&1 && break; sleep 1; done
  wait_for 5672 RabbitMQ 30 || failed=1
fi

if [ "$failed" -ne 0 ]; then
  echo "Some services could not be started; see the commands above (also in DESIGN.md)." >&2
  exit 1
fi
echo "services: PostgreSQL, RabbitMQ and Redis are up"

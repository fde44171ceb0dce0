#!/usr/bin/env bash
# Installs what the tests talk to when it is missing, from Debian's packages:
# PostgreSQL server binaries, HAProxy, wrk, Prometheus (its server and
# promtool), Redis (redis-server), MariaDB (mariadb-install-db and
# mariadbd), Chromium (the browser tests drive it headless), dnsmasq (a
# DNS server the fleet view's tests discover instances through), Nagios
# (nagios4-core: the scheduler `probe -format nagios` is run under) and
# FastAPI with uvicorn (python3-fastapi, python3-uvicorn: the app `probe run`
# stands in front of).
set -euo pipefail

missing=()
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  missing+=(postgresql)
fi
for tool in haproxy wrk; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
  missing+=(prometheus)
fi
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if ! command -v mariadb-install-db >/dev/null 2>&1 ||
  { ! command -v mariadbd >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ]; }; then
  missing+=(mariadb-server)
fi
command -v dnsmasq >/dev/null 2>&1 || [ -x /usr/sbin/dnsmasq ] || missing+=(dnsmasq)
command -v nagios4 >/dev/null 2>&1 || [ -x /usr/sbin/nagios4 ] || missing+=(nagios4-core)
# Debian's packages are for its own python3, which a python3 earlier on the
# PATH (pyenv, a virtualenv) does not see.
if ! /usr/bin/python3 -c 'import fastapi, uvicorn' >/dev/null 2>&1 &&
  ! python3 -c 'import fastapi, uvicorn' >/dev/null 2>&1; then
  missing+=(python3-fastapi python3-uvicorn)
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

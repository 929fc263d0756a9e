#!/usr/bin/env bash
# The test command of README.md, for a fresh machine of this kind (Debian, root, Rust): checks
# what the tests need and installs or starts what is missing, then runs the whole suite.
#
#   PostgreSQL on 127.0.0.1:5432 (trust auth)  started with pg_ctlcluster when it is down
#   NATS with JetStream on 127.0.0.1:4222      `nats-server -js` started when none answers
#                                              (Debian's nats-server installed if missing)
#   Chromium + chromedriver                    Debian's chromium, chromium-driver
#   cargo-nextest                              cargo install --locked
#
# Then `cargo nextest run --workspace --locked`, with any arguments passed on
# (`scripts/test.sh -E 'test(outage)'`). `.ci/run` calls this same script.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_updated=false
apt_install() {
    if [ "$apt_updated" = false ]; then
        apt-get update -q
        apt_updated=true
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
}

# Whether something accepts TCP connections on 127.0.0.1:$1.
listening() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "installing PostgreSQL"
    apt_install postgresql
fi
if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
    echo "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start
    for _ in $(seq 1 30); do
        pg_isready -h 127.0.0.1 -p 5432 -q && break
        sleep 1
    done
fi
pg_isready -h 127.0.0.1 -p 5432

# The scale-out tests also start nats-servers of their own on free ports: the binary must be here.
if ! command -v nats-server >/dev/null 2>&1; then
    echo "installing nats-server"
    apt_install nats-server
fi
if ! listening 4222; then
    echo "starting nats-server -js on 127.0.0.1:4222"
    store="${TMPDIR:-/tmp}/switchyard-nats"
    mkdir -p "$store"
    # Detached, so it outlives this script (and the next run finds it running).
    setsid nats-server -js -a 127.0.0.1 -p 4222 -sd "$store" >"$store/nats.log" 2>&1 < /dev/null &
    for _ in $(seq 1 30); do
        listening 4222 && break
        sleep 0.5
    done
    listening 4222 || { echo "nats-server did not start; see $store/nats.log" >&2; exit 1; }
fi

# The dashboard page's browser tests (tests/api/dashboard_page.rs) drive Debian's headless
# Chromium through chromedriver.
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    echo "installing chromium and chromium-driver"
    apt_install chromium chromium-driver
fi

if ! command -v cargo-nextest >/dev/null 2>&1; then
    echo "installing cargo-nextest"
    cargo install cargo-nextest --locked
fi

exec cargo nextest run --workspace --locked "$@"

#!/usr/bin/env bash
# Runs a single-node Apache Kafka (KRaft mode: one process is both broker and controller) on loopback, in the
# foreground: the script execs the JVM, so the caller's PID is the broker and `kill -9 PID` kills it.
#
# Usage: tools/kafka-server.sh DATA_DIR PORT [CONTROLLER_PORT]
#   PORT             the client listener, PLAINTEXT://127.0.0.1:PORT (bootstrap servers 127.0.0.1:PORT)
#   CONTROLLER_PORT  the KRaft controller listener on 127.0.0.1; PORT+1 when omitted (so keep PORT+1 free too)
#   DATA_DIR         gets server.properties, log4j2.properties and the data in DATA_DIR/logs. Storage is formatted
#                    only on the first start; a restart on the same DATA_DIR resumes with the same topics and data.
#
# Environment:
#   KAFKA_LOG_LEVEL  root log level, WARN by default (INFO is verbose); the "Kafka Server started" line is always
#                    printed. Logs go to stdout.
#   KAFKA_HEAP_OPTS  JVM heap options, "-Xms128m -Xmx512m" by default.
#   KAFKA_JVM_OPTS   other JVM options, "-XX:+UseSerialGC -XX:TieredStopAtLevel=1" by default: the C1-only JIT starts
#                    the broker about 1.5 s sooner on 2 cores, at some cost in peak throughput.
#
# Needs the jars installed by `tools/services.sh install kafka`; uses nothing else.
set -euo pipefail

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
  echo "usage: $0 DATA_DIR PORT [CONTROLLER_PORT]" >&2
  exit 2
fi

# Pinned versions and cache paths.
# shellcheck source=services.sh
source "$(dirname "${BASH_SOURCE[0]}")/services.sh"

data_dir="$1"
port="$2"
controller_port="${3:-$((port + 1))}"
log_level="${KAFKA_LOG_LEVEL:-WARN}"
heap_opts="${KAFKA_HEAP_OPTS:--Xms128m -Xmx512m}"
jvm_extra_opts="${KAFKA_JVM_OPTS:--XX:+UseSerialGC -XX:TieredStopAtLevel=1}"

if ! forgecast_stamp_ok "$FORGECAST_KAFKA_STAMP" "$forgecast_kafka_stamp_text"; then
  echo "kafka-server.sh: Kafka $FORGECAST_KAFKA_VERSION is not installed; run tools/services.sh install kafka" >&2
  exit 1
fi

mkdir -p "$data_dir"
data_dir="$(cd "$data_dir" && pwd)"
java="${JAVA_HOME:+$JAVA_HOME/bin/}java"
classpath="$FORGECAST_KAFKA_LIBS/*"

# Broker + controller configuration, rewritten on every start (only the ports may differ between starts).
cat >"$data_dir/server.properties" <<EOF
# One process that is both the broker and the only KRaft controller.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$data_dir/logs

# Topics: created explicitly, 3 partitions unless asked otherwise.
auto.create.topics.enable=false
num.partitions=3
default.replication.factor=1
min.insync.replicas=1

# Internal topics of one replica, with few partitions so the first consumer group and transaction start fast.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=5
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=5
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1

# No waiting: consumer groups rebalance at once.
group.initial.rebalance.delay.ms=0
# After kill -9 the restarted broker cannot register again until the controller drops the old registration,
# which takes broker.session.timeout.ms (9 s by default): keep it short so a restart serves again within seconds.
broker.session.timeout.ms=3000
broker.heartbeat.interval.ms=500
# Log recovery after kill -9 with 2 threads; few network and I/O threads on a small machine.
num.recovery.threads.per.data.dir=2
num.network.threads=2
num.io.threads=4
EOF

# Logging to stdout at the chosen level, plus the line that tells the server is up.
cat >"$data_dir/log4j2.properties" <<EOF
status = warn
shutdownHook = disable
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.target = SYSTEM_OUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = $log_level
rootLogger.appenderRef.stdout.ref = STDOUT
logger.started.name = kafka.server.KafkaRaftServer
logger.started.level = INFO
EOF

# JVM options: small heap, quick start-up, exit on out-of-memory, the logging config; no JMX.
# shellcheck disable=SC2206
jvm_opts=($heap_opts $jvm_extra_opts -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true
  -Dlog4j2.configurationFile="$data_dir/log4j2.properties" -Dkafka.logs.dir="$data_dir")

# Format the storage once, with a new cluster id; a data dir that has meta.properties already is kept as is.
if [ ! -f "$data_dir/logs/meta.properties" ]; then
  # A cluster id is 16 random bytes in URL-safe base64 without padding; Kafka avoids a leading '-'.
  cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
  cluster_id="A${cluster_id:1}"
  "$java" "${jvm_opts[@]}" -cp "$classpath" kafka.tools.StorageTool format \
    --config "$data_dir/server.properties" --cluster-id "$cluster_id" --ignore-formatted >/dev/null
fi

# Replace this shell by the broker.
exec "$java" "${jvm_opts[@]}" -cp "$classpath" kafka.Kafka "$data_dir/server.properties"

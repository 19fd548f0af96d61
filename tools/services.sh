#!/usr/bin/env bash
# Installs the real services the tests run on loopback, once, into a cache:
#   - Apache Kafka (broker + controller in KRaft mode) as the jars Maven Central serves, fetched by Maven;
#   - SecantusDB, a MongoDB-wire server from PyPI, in its own virtual environment.
#
# Usage:
#   tools/services.sh install [kafka|mongo]...   install what is missing (both by default); silent when cached
#   tools/services.sh env                        print the paths the run scripts use, as NAME=value lines
#
# Run the services with tools/kafka-server.sh and tools/mongo-server.sh; both read the paths below by
# sourcing this file (sourcing only defines variables and functions, it runs nothing).
set -euo pipefail

# Pinned versions.
FORGECAST_KAFKA_VERSION=4.4.0
FORGECAST_LOG4J_VERSION=2.25.5                # the log4j2 version kafka-server 4.4.0 depends on
FORGECAST_MVN_DEPENDENCY_PLUGIN_VERSION=3.8.1
FORGECAST_SECANTUSDB_VERSION=0.7.0b3

# Where everything goes.
FORGECAST_CACHE="${FORGECAST_CACHE:-$HOME/.cache/forgecast}"
FORGECAST_KAFKA_HOME="$FORGECAST_CACHE/kafka-$FORGECAST_KAFKA_VERSION"
FORGECAST_KAFKA_LIBS="$FORGECAST_KAFKA_HOME/libs"
FORGECAST_KAFKA_STAMP="$FORGECAST_KAFKA_HOME/.installed"
FORGECAST_SERVICES_VENV="$FORGECAST_CACHE/services-venv"
FORGECAST_SERVICES_VENV_STAMP="$FORGECAST_SERVICES_VENV/.installed"

# The stamps hold what was installed, so a changed pin installs again.
forgecast_kafka_stamp_text="kafka_2.13 $FORGECAST_KAFKA_VERSION log4j $FORGECAST_LOG4J_VERSION"
forgecast_mongo_stamp_text="SecantusDB $FORGECAST_SECANTUSDB_VERSION"

# True when the stamp file exists and holds the expected text (pure bash: no process is started).
forgecast_stamp_ok() {
  local file="$1" want="$2" got
  [ -f "$file" ] || return 1
  IFS= read -r got <"$file" || true
  [ "$got" = "$want" ]
}

# Writes the stamp last, through a rename, so an interrupted install is never taken as done.
forgecast_write_stamp() {
  printf '%s\n' "$2" >"$1.tmp"
  mv -f "$1.tmp" "$1"
}

forgecast_install_kafka() {
  forgecast_stamp_ok "$FORGECAST_KAFKA_STAMP" "$forgecast_kafka_stamp_text" && return 0
  echo "Installing Apache Kafka $FORGECAST_KAFKA_VERSION (jars from Maven Central) into $FORGECAST_KAFKA_HOME"
  mkdir -p "$FORGECAST_KAFKA_HOME"
  # Start from a clean jar directory: a half-done copy is thrown away.
  rm -rf "$FORGECAST_KAFKA_LIBS" "$FORGECAST_KAFKA_STAMP"
  # A minimal pom: the broker (kafka_2.13), the command-line tools (topics, console producer and consumer)
  # without the Kafka Connect runtime they never load, and the SLF4J 1.x -> log4j2 binding the broker logs through.
  cat >"$FORGECAST_KAFKA_HOME/pom.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>forgecast.services</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>$FORGECAST_KAFKA_VERSION</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$FORGECAST_KAFKA_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka-tools</artifactId>
      <version>$FORGECAST_KAFKA_VERSION</version>
      <exclusions>
        <exclusion><groupId>org.apache.kafka</groupId><artifactId>connect-runtime</artifactId></exclusion>
        <exclusion><groupId>com.fasterxml.jackson.jakarta.rs</groupId><artifactId>*</artifactId></exclusion>
      </exclusions>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>$FORGECAST_LOG4J_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-core</artifactId>
      <version>$FORGECAST_LOG4J_VERSION</version>
    </dependency>
  </dependencies>
</project>
EOF
  # Resolve the runtime class path and copy every jar into libs/; Maven's output is shown only if it fails.
  if ! mvn -q -B -Dstyle.color=never -f "$FORGECAST_KAFKA_HOME/pom.xml" \
    "org.apache.maven.plugins:maven-dependency-plugin:$FORGECAST_MVN_DEPENDENCY_PLUGIN_VERSION:copy-dependencies" \
    -DincludeScope=runtime -DoutputDirectory="$FORGECAST_KAFKA_LIBS" >"$FORGECAST_KAFKA_HOME/mvn.log" 2>&1; then
    cat "$FORGECAST_KAFKA_HOME/mvn.log" >&2
    echo "services.sh: Maven could not fetch Kafka $FORGECAST_KAFKA_VERSION (log: $FORGECAST_KAFKA_HOME/mvn.log)" >&2
    return 1
  fi
  # The broker's main class must be there, or the install failed.
  compgen -G "$FORGECAST_KAFKA_LIBS/kafka_2.13-$FORGECAST_KAFKA_VERSION.jar" >/dev/null || {
    echo "services.sh: kafka_2.13-$FORGECAST_KAFKA_VERSION.jar missing from $FORGECAST_KAFKA_LIBS" >&2
    return 1
  }
  forgecast_write_stamp "$FORGECAST_KAFKA_STAMP" "$forgecast_kafka_stamp_text"
}

forgecast_install_mongo() {
  forgecast_stamp_ok "$FORGECAST_SERVICES_VENV_STAMP" "$forgecast_mongo_stamp_text" && return 0
  echo "Installing SecantusDB $FORGECAST_SECANTUSDB_VERSION (PyPI) into $FORGECAST_SERVICES_VENV"
  # A fresh virtual environment: whatever an interrupted or older install left is removed.
  rm -rf "$FORGECAST_SERVICES_VENV"
  python3 -m venv "$FORGECAST_SERVICES_VENV"
  "$FORGECAST_SERVICES_VENV/bin/pip" install -q --disable-pip-version-check "SecantusDB==$FORGECAST_SECANTUSDB_VERSION"
  # The server's console script must be there, or the install failed.
  [ -x "$FORGECAST_SERVICES_VENV/bin/secantusd-py" ] || {
    echo "services.sh: secantusd-py missing from $FORGECAST_SERVICES_VENV/bin" >&2
    return 1
  }
  forgecast_write_stamp "$FORGECAST_SERVICES_VENV_STAMP" "$forgecast_mongo_stamp_text"
}

forgecast_services_main() {
  local cmd="${1:-}"
  [ $# -gt 0 ] && shift
  case "$cmd" in
    install)
      local what=("$@")
      [ ${#what[@]} -gt 0 ] || what=(kafka mongo)
      # Fast path: everything already installed, nothing is started.
      local all_ok=1 w
      for w in "${what[@]}"; do
        case "$w" in
          kafka) forgecast_stamp_ok "$FORGECAST_KAFKA_STAMP" "$forgecast_kafka_stamp_text" || all_ok=0 ;;
          mongo) forgecast_stamp_ok "$FORGECAST_SERVICES_VENV_STAMP" "$forgecast_mongo_stamp_text" || all_ok=0 ;;
          *) echo "services.sh: unknown service '$w' (kafka, mongo)" >&2; return 2 ;;
        esac
      done
      [ "$all_ok" = 1 ] && return 0
      # Installs from parallel runs wait for each other; each one checks its stamp again under the lock.
      mkdir -p "$FORGECAST_CACHE"
      exec 9>"$FORGECAST_CACHE/.services-install.lock"
      flock 9
      for w in "${what[@]}"; do
        "forgecast_install_$w"
      done
      exec 9>&-
      ;;
    env)
      printf 'FORGECAST_KAFKA_VERSION=%s\nFORGECAST_KAFKA_LIBS=%s\nFORGECAST_SECANTUSDB_VERSION=%s\nFORGECAST_SERVICES_VENV=%s\n' \
        "$FORGECAST_KAFKA_VERSION" "$FORGECAST_KAFKA_LIBS" "$FORGECAST_SECANTUSDB_VERSION" "$FORGECAST_SERVICES_VENV"
      ;;
    *)
      echo "usage: $0 install [kafka|mongo]... | env" >&2
      return 2
      ;;
  esac
}

# Run only when executed, not when sourced by the run scripts.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  forgecast_services_main "$@"
fi

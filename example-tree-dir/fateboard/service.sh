#!/bin/bash
# Starts fateboard (a Spring Boot fat jar) from its own directory. FATEBOARD_JAVA_OPTS
# replaces the heap and GC flags FATE 1.0.2 started it with (its example-dir-tree's
# fateboard/service.sh and docker-build fateboard Dockerfile).
JAVA_HOME=
: "${FATEBOARD_JAVA_OPTS:=-Xmx2048m -Xms2048m -XX:+PrintGCDetails -XX:+PrintGCDateStamps -Xloggc:logs/gc.log -XX:+HeapDumpOnOutOfMemoryError}"
cd "$(dirname "$0")" || exit 1
mkdir -p logs
# Word splitting of the options is intended.
# shellcheck disable=SC2086
exec "$JAVA_HOME/bin/java" -Dspring.config.location=conf/application.properties -Dssh_config_file=conf $FATEBOARD_JAVA_OPTS -jar fateboard.jar

#!/bin/bash
# Starts fateboard (a Spring Boot fat jar) from its own directory.
JAVA_HOME=
cd "$(dirname "$0")" && exec "$JAVA_HOME/bin/java" -Dspring.config.location=conf/application.properties -Dssh_config_file=conf -jar fateboard.jar

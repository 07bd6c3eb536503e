#!/bin/bash
# Starts serving-server from its own directory; packaging sets JAVA_HOME to the image's JDK.
JAVA_HOME=
cd "$(dirname "$0")" && exec "$JAVA_HOME/bin/java" -cp "conf/:lib/*:fate-serving-server.jar" com.webank.ai.fate.serving.ServingServer -c conf/serving-server.properties

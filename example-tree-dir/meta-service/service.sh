#!/bin/bash
# Starts meta-service from its own directory; packaging sets JAVA_HOME to the image's JDK.
JAVA_HOME=
cd "$(dirname "$0")" && exec "$JAVA_HOME/bin/java" -cp "conf/:lib/*:fate-meta-service.jar" com.webank.ai.fate.eggroll.MetaService -c conf/meta-service.properties

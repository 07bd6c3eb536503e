#!/bin/bash
# Starts proxy from its own directory; packaging sets JAVA_HOME to the image's JDK.
JAVA_HOME=
cd "$(dirname "$0")" && exec "$JAVA_HOME/bin/java" -cp "conf/:lib/*:fate-proxy.jar" com.webank.ai.fate.networking.Proxy -c conf/proxy.properties

#!/bin/bash
# Starts federation from its own directory; packaging sets JAVA_HOME to the image's JDK.
JAVA_HOME=
cd "$(dirname "$0")" && exec "$JAVA_HOME/bin/java" -cp "conf/:lib/*:fate-federation.jar" com.webank.ai.fate.driver.Federation -c conf/federation.properties

#!/bin/bash
# Starts roll from its own directory; packaging sets JAVA_HOME to the image's JDK.
JAVA_HOME=
cd "$(dirname "$0")" && exec "$JAVA_HOME/bin/java" -cp "conf/:lib/*:fate-roll.jar" com.webank.ai.fate.eggroll.Roll -c conf/roll.properties

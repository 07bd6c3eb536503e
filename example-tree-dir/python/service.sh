#!/bin/bash
# Starts fate_flow from the python tree.
cd "$(dirname "$0")" && exec python fate_flow/fate_flow_server.py

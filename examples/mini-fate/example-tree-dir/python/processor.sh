#!/bin/bash
# Starts an egg processor.
cd "$(dirname "$0")" && exec python arch/processor/processor.py "$@"

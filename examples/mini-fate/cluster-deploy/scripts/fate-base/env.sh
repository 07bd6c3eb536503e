#!/bin/bash
# Installs the base toolchain (the real one runs yum; this miniature one only announces it).
set -euo pipefail
echo "base environment ready"

#!/usr/bin/env bash
# Prints the Debian archive URI of the system's own apt sources (deb822 or one-line
# format), leaving out the security archive; Debian's main archive when none is found.
set -euo pipefail
uri=$(
  { grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' || true
    grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      sed -E 's/\[[^]]*\]//' | awk '{print $2}' || true
  } | grep -v security | head -n1
) || true
echo "${uri:-http://deb.debian.org/debian}"

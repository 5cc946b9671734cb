#!/bin/sh
# /usr/bin/squ-agentd: run the single-file agent with the system's python3.
# root shares one extracted copy in /var/cache/squ-agentd (0700, root's own);
# other users get theirs in ~/.shiv. The zipapp is found beside this script's
# real location, so the package also works unpacked under another root.
here=$(dirname "$(readlink -f "$0")")
if [ -z "${SHIV_ROOT:-}" ] && [ "$(id -u)" = 0 ]; then
    SHIV_ROOT=/var/cache/squ-agentd
    export SHIV_ROOT
fi
exec /usr/bin/python3 "$here/../lib/squ-agentd/squ-agentd.pyz" "$@"

"""The host-side half of launch: small POSIX sh programs run through any runner.

Values always travel as positional arguments ("$1", "$2"...), never pasted into the script
text, so a path with spaces or `$(...)` stays literal on the remote side too.
"""

from __future__ import annotations

from typing import Final

#: Write files: args = dir, then (name, mode, content) triples.
PUSH: Final[str] = r"""
set -eu
dir=$1; shift
mkdir -p "$dir"
while [ "$#" -ge 3 ]; do
  tmp="$dir/.$1.tmp.$$"
  printf '%s' "$3" > "$tmp"
  chmod "$2" "$tmp"
  mv -f "$tmp" "$dir/$1"
  shift 3
done
"""

#: Start detached unless already running: args = pid file, log file, script, name.
#: Prints "running PID STARTED" (already up) or "started PID STARTED".
#: setsid makes the process a session leader so stop can signal its whole group, and
#: nohup + redirects let it outlive the SSH session that started it.
START: Final[str] = r"""
set -eu
pidf=$1; log=$2; script=$3; name=$4
mkdir -p "$(dirname "$pidf")" "$(dirname "$log")"
if [ -s "$pidf" ]; then
  read -r pid started < "$pidf" || true
  if [ -n "${pid:-}" ] && kill -0 "$pid" 2>/dev/null; then
    echo "running $pid $started"; exit 0
  fi
fi
printf '=== ascend-pd start %s %s ===\n' "$name" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >> "$log"
started=$(date +%s)
setsid nohup bash "$script" >> "$log" 2>&1 < /dev/null &
pid=$!
echo "$pid $started" > "$pidf"
echo "started $pid $started"
"""

#: Report one unit: args = pid file, log file, marker.
#: Prints "pid=.. started=.. alive=0|1 marker=0|1 now=.." then the last log line.
STATUS: Final[str] = r"""
pidf=$1; log=$2; marker=$3
pid=; started=
[ -s "$pidf" ] && read -r pid started < "$pidf"
alive=0
[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && alive=1
seen=0
[ -n "$marker" ] && [ -f "$log" ] && grep -qF -- "$marker" "$log" && seen=1
echo "pid=$pid started=$started alive=$alive marker=$seen now=$(date +%s)"
[ -f "$log" ] && tail -n 1 "$log"
exit 0
"""

#: Stop: args = pid file, grace seconds, container name ("" for none). TERM the process group,
#: wait, then KILL it. Prints "stopped PID" / "killed PID [container-removed]" / "not-running".
STOP: Final[str] = r"""
pidf=$1; grace=$2; ctr=${3:-}
pid=; started=
[ -s "$pidf" ] && read -r pid started < "$pidf"
if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
  rm -f "$pidf"; echo not-running; exit 0
fi
# "-PID" addresses the whole process group (the launcher made the unit a session leader).
# No "--" before it: dash's kill builtin rejects that form.
kill -TERM "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
i=0
while [ "$i" -lt "$((grace * 10))" ]; do
  if ! kill -0 "-$pid" 2>/dev/null; then rm -f "$pidf"; echo "stopped $pid"; exit 0; fi
  sleep 0.1; i=$((i + 1))
done
kill -KILL "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
rm -f "$pidf"
# SIGKILL only reaches the docker client; a container that ignored the proxied TERM is still
# running (and holding the NPUs) until it is removed.
if [ -n "$ctr" ] && docker rm -f "$ctr" >/dev/null 2>&1; then
  echo "killed $pid container-removed"
else
  echo "killed $pid"
fi
"""

#: Print the log from a byte offset: args = log file, offset (1-based for tail -c +N).
READ_FROM: Final[str] = r"""
[ -f "$1" ] || { echo "no log file $1" >&2; exit 3; }
tail -c "+$2" "$1"
"""


def sh(script: str, *args: str) -> list[str]:
    """argv running ``script`` with ``args`` as $1.. (``sh`` is $0)."""
    return ["sh", "-c", script, "sh", *args]

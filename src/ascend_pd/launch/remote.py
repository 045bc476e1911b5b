"""The host-side half of launch: small POSIX sh programs run through any runner.

Values always travel as positional arguments ("$1", "$2"...), never pasted into the script
text, so a path with spaces or `$(...)` stays literal on the remote side too. File contents
(env files hold secrets) travel on stdin, never in argv: a command line is visible to
every user of the host.

What the snippets defend against (docs/security.md, "State directory"):

* the state directory and its run/, logs/, deploy/ must be owned by the user running them
  and not writable by group or others, else another local user could plant a pid file
  (stop would signal their choice of process) or a log symlink (launch, as root, would
  append to the file it points to);
* a pid file names a unit's process only when the process still has the start time
  recorded with it (``/proc/PID/stat`` field 22: a reused pid has another) and carries the
  unit's ``ASCEND_PD_UNIT=<name>`` in its environment. The command line is not compared:
  the launch script execs the server (vllm, docker, the simulator), so it changes, while
  the environment survives exec;
* pid 0, 1 and negative pids are never signalled; ``kill -- -PID`` (the process group) is
  only used when the verified process leads its own group;
* logs are opened without following symlinks (``dd oflag=nofollow`` where dd has it, and
  the opened file is checked to be the one at the path).
"""

from __future__ import annotations

from typing import Final

#: The environment variable naming the unit in its process (and in START's own environment).
UNIT_MARKER: Final[str] = "ASCEND_PD_UNIT"

#: A snippet that refuses to act (unsafe state dir, log symlink) says why and exits 20.
_DIE: Final[str] = r"""
die() { printf 'ascend-pd: %s\n' "$1" >&2; exit 20; }
"""

#: safe_dir DIR: create DIR if needed; refuse one another user could write into.
_SAFE_DIR: Final[str] = _DIE + r"""
safe_dir() {
  [ -L "$1" ] && die "$1 is a symbolic link; fix: replace it with a directory you own"
  # 022 whatever the login umask (002 is common): we refuse group-writable directories.
  (umask 022 && mkdir -p "$1") || die "cannot create $1"
  own=$(stat -c '%u %a' "$1") || die "cannot stat $1"
  uid=${own%% *}; mode=${own#* }; me=$(id -un)
  [ "$uid" = "$(id -u)" ] || die "$1 is owned by uid $uid, not by $me (uid $(id -u)) \
who runs ascend-pd: its owner could plant pid files or log symlinks; \
fix: chown $me '$1', or set state_dir to a directory you own"
  case $mode in
    *[2367]? | *[2367]) die "$1 is writable by group or others (mode $mode): \
they could plant pid files or log symlinks; fix: chmod go-w '$1'" ;;
  esac
}
"""

#: unit_pid PIDFILE NAME: sets pid to the unit's live process, or leaves it empty; why says
#: why a pid file that names some process was not believed (callers read pid, started,
#: pgrp and why).
_UNIT_PID: Final[str] = r"""
# shellcheck disable=SC2034
unit_pid() {
  pid=; started=; ticks=; why=; pgrp=
  pf=$1; un=$2
  [ -L "$pf" ] && { why="$pf is a symbolic link, not a pid file"; return 0; }
  [ -s "$pf" ] || return 0
  read -r pid started ticks < "$pf" || true
  case $pid in
    '' | *[!0-9]*) why="pid file $pf holds '$pid', not a process id"; pid=; return 0 ;;
  esac
  if [ "$pid" -le 1 ]; then
    why="pid file $pf holds $pid: pid 0 and 1 are never signalled"; pid=; return 0
  fi
  st=$(cat "/proc/$pid/stat" 2>/dev/null) || { pid=; return 0; }
  # shellcheck disable=SC2086 # split the fields after "(comm) ": state ppid pgrp ... starttime
  set -- ${st##*) }
  [ "$1" = Z ] && { pid=; return 0; }
  pgrp=$3; shift 19
  if [ "$1" != "${ticks:-none}" ]; then
    why="pid $pid in $pf is another process (started at tick $1, \
the unit at tick ${ticks:-unknown}); left alone"
    pid=; return 0
  fi
  # While a process execs (the unit goes setsid -> nohup -> bash -> server) its environ
  # reads empty for a moment, longer on a loaded host: retry rather than misjudge it.
  n=0
  while envs=$(tr '\0' '\n' < "/proc/$pid/environ" 2>/dev/null) && [ -z "$envs" ] \
      && [ "$n" -lt 30 ]; do
    sleep 0.1; n=$((n + 1))
  done
  [ -d "/proc/$pid" ] || { pid=; return 0; }
  if ! printf '%s\n' "$envs" | grep -qxF "ASCEND_PD_UNIT=$un"; then
    why="pid $pid in $pf is not unit $un (no ASCEND_PD_UNIT=$un in its environment); left alone"
    pid=; return 0
  fi
}
"""

#: Write files: args = state dir ("" = none to check), target dir, then (name, mode, size)
#: triples; the files' contents follow each other on stdin. Written owner-only first, then
#: chmod + rename. With a state dir, it and the target dir must be safe (see safe_dir).
PUSH: Final[str] = _SAFE_DIR + r"""
set -eu
if [ -n "$1" ]; then safe_dir "$1"; safe_dir "$2"; else mkdir -p "$2"; fi
dir=$2; shift 2
umask 077
while [ "$#" -ge 3 ]; do
  case $1 in '' | */* | .*) die "refusing file name '$1'" ;; esac
  tmp="$dir/.$1.tmp.$$"
  rm -f "$tmp"
  dd bs=1 count="$3" of="$tmp" 2>/dev/null
  [ "$(wc -c < "$tmp")" -eq "$3" ] || die "short write of $dir/$1"
  chmod "$2" "$tmp"
  mv -f "$tmp" "$dir/$1"
  shift 3
done
"""


def push_args(files: dict[str, tuple[str, int]]) -> tuple[list[str], bytes]:
    """PUSH's (name, mode, size) words and the stdin carrying the contents, for ``files``:
    name -> (text, mode). Contents never go in argv: env files hold secrets, and argv is
    visible in ``ps`` on the host."""
    words: list[str] = []
    data: list[bytes] = []
    for name, (text, mode) in files.items():
        raw = text.encode()
        words += [name, f"{mode:o}", str(len(raw))]
        data.append(raw)
    return words, b"".join(data)


#: Start detached unless already running: args = state dir, pid file, log file, script, name.
#: Prints "running PID STARTED" (already up) or "started PID STARTED".
#: setsid makes the process a session leader so stop can signal its whole group, and
#: nohup + redirects let it outlive the SSH session that started it.
START: Final[str] = _SAFE_DIR + _UNIT_PID + r"""
set -eu
pidf=$2; log=$3; script=$4; name=$5
safe_dir "$1"; safe_dir "$(dirname "$pidf")"; safe_dir "$(dirname "$log")"
unit_pid "$pidf" "$name"
if [ -n "$pid" ]; then echo "running $pid $started"; exit 0; fi
[ -L "$log" ] && die "$log is a symbolic link: refusing to write through it (remove it)"
[ ! -e "$log" ] || [ -f "$log" ] || die "$log is not a regular file"
head="=== ascend-pd start $name $(date -u +%Y-%m-%dT%H:%M:%SZ) ==="
if dd --help 2>/dev/null | grep -q nofollow; then
  # O_NOFOLLOW: a symlink planted after the check above makes this fail, not follow.
  printf '%s\n' "$head" | dd of="$log" oflag=append,nofollow conv=notrunc 2>/dev/null \
    || die "cannot open $log without following links"
else
  printf '%s\n' "$head" >> "$log"
fi
exec 3>> "$log"
[ "$(stat -L -c %d:%i "/proc/$$/fd/3")" = "$(stat -c %d:%i "$log")" ] \
  || die "$log changed while it was opened; refusing it"
started=$(date +%s)
ASCEND_PD_UNIT=$name setsid nohup bash "$script" >&3 2>&3 < /dev/null &
pid=$!
exec 3>&-
# The start time (clock ticks after boot, field 22 of /proc/PID/stat) tells this process
# from a later one that reuses its pid.
ticks=gone
st=$(cat "/proc/$pid/stat" 2>/dev/null) || st=
if [ -n "$st" ]; then
  # shellcheck disable=SC2086
  set -- ${st##*) }
  shift 19; ticks=$1
fi
printf '%s %s %s\n' "$pid" "$started" "$ticks" > "$pidf.tmp.$$"
mv -f "$pidf.tmp.$$" "$pidf"
echo "started $pid $started"
"""

#: Report one unit: args = state dir, pid file, log file, marker, name.
#: Prints "pid=.. started=.. alive=0|1 marker=0|1 now=.." then the last log line; why a pid
#: file was not believed goes to stderr.
STATUS: Final[str] = _UNIT_PID + r"""
pidf=$2; log=$3; marker=$4
unit_pid "$pidf" "$5"
alive=0
[ -n "$pid" ] && alive=1
seen=0
[ -n "$marker" ] && [ -f "$log" ] && [ ! -L "$log" ] && grep -qF -- "$marker" "$log" && seen=1
echo "pid=$pid started=$started alive=$alive marker=$seen now=$(date +%s)"
# The last line that says something: vLLM's access log adds a line per /health probe
# (ours among them), which would hide "Application startup complete." or an error.
[ -f "$log" ] && [ ! -L "$log" ] && { tail -n 50 "$log" | grep -v '"GET /health HTTP' | tail -n 1; }
[ -n "$why" ] && printf '%s\n' "$why" >&2
exit 0
"""

#: Stop: args = state dir, pid file, grace seconds, container name ("" for none), unit name.
#: TERM the process group, wait, then KILL it. Prints "stopped PID" / "killed PID
#: [container-removed]" / "not-running" / "refused REASON" (nothing was signalled).
STOP: Final[str] = _SAFE_DIR + _UNIT_PID + r"""
pidf=$2; grace=$3; ctr=${4:-}
safe_dir "$1"; safe_dir "$(dirname "$pidf")"
unit_pid "$pidf" "$5"
if [ -z "$pid" ]; then
  if [ -n "$why" ]; then echo "refused $why"; exit 0; fi
  rm -f "$pidf"; echo not-running; exit 0
fi
# "-PID" addresses the whole process group, only when the unit leads it (the launcher made
# it a session leader). No "--" before it: dash's kill builtin rejects that form.
target=$pid
[ "$pgrp" = "$pid" ] && target="-$pid"
# running: a process of the unit has not exited. A zombie has: only its reaping is left,
# which the unit's adoptive parent (often PID 1, reaping when it gets to it: ~2 s on a
# loaded machine) does, so it is not waited for. Without ps, every member counts.
running() {
  if [ "$target" = "$pid" ]; then
    kill -0 "$pid" 2>/dev/null || return 1
    st=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    # shellcheck disable=SC2086
    set -- ${st##*) }
    [ "$1" != Z ]
    return
  fi
  command -v ps >/dev/null 2>&1 || { kill -0 "$target" 2>/dev/null; return; }
  # The unit's session, not only its process group: a server's children may start groups
  # of their own (vLLM's engine core), and stop returning while one still holds the
  # device memory would fail the next launch.
  ps -A -o sid= -o stat= 2>/dev/null \
    | awk -v g="$pid" '$1 == g && $2 !~ /^Z/ { found = 1 } END { exit !found }'
}
# Live members of the unit's session outside its process group (KILLed with the group).
strays() {
  command -v ps >/dev/null 2>&1 || return 0
  ps -A -o pid= -o pgid= -o sid= -o stat= 2>/dev/null \
    | awk -v g="$pid" '$3 == g && $2 != g && $4 !~ /^Z/ { print $1 }'
}
kill -TERM "$target" 2>/dev/null || true
i=0
while [ "$i" -lt "$((grace * 10))" ]; do
  if ! running; then rm -f "$pidf"; echo "stopped $pid"; exit 0; fi
  sleep 0.1; i=$((i + 1))
done
kill -KILL "$target" 2>/dev/null || true
if [ "$target" != "$pid" ]; then
  for stray in $(strays); do kill -KILL "$stray" 2>/dev/null || true; done
fi
rm -f "$pidf"
# SIGKILL only reaches the docker client; a container that ignored the proxied TERM is still
# running (and holding the NPUs) until it is removed.
if [ -n "$ctr" ] && docker rm -f "$ctr" >/dev/null 2>&1; then
  echo "killed $pid container-removed"
else
  echo "killed $pid"
fi
"""

#: Print the last lines of a log: args = log file, lines. Never through a symlink.
TAIL: Final[str] = _DIE + r"""
[ -L "$1" ] && die "$1 is a symbolic link: not reading through it"
[ -f "$1" ] || { echo "no log file $1" >&2; exit 3; }
tail -n "$2" "$1"
"""

#: Print the log from a byte offset: args = log file, offset (1-based for tail -c +N).
READ_FROM: Final[str] = _DIE + r"""
[ -L "$1" ] && die "$1 is a symbolic link: not reading through it"
[ -f "$1" ] || { echo "no log file $1" >&2; exit 3; }
tail -c "+$2" "$1"
"""


def sh(script: str, *args: str) -> list[str]:
    """argv running ``script`` with ``args`` as $1.. (``sh`` is $0)."""
    return ["sh", "-c", script, "sh", *args]

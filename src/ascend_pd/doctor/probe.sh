# ascend-pd doctor probe: print facts about this host as key=value lines (POSIX sh).
#
# Run as: sh -c "$(cat probe.sh)" ascend-pd-doctor MODEL_DIR NIC STATE_DIR PORTS NPU_SMI PYTHON \
#            [PLATFORM NVIDIA_SMI GPU_FIELDS]
#   PORTS is a comma-separated list of TCP ports the spec plans to listen on.
#   PLATFORM cuda: nvidia-smi instead of the Ascend stack (CANN, hccn.conf, npu-smi).
# Values arrive as positional arguments only; nothing is interpolated into this text.
# Every filesystem path is prefixed with $ASCEND_PD_SYSROOT (empty on real hosts) so that a
# simulated host can be a directory tree. /proc and `ss` are the live kernel's view.
# A key may repeat (nic.addr, npu_smi.out); the parser keeps every value in order.

root="${ASCEND_PD_SYSROOT:-}"
model="$1"; nic="$2"; state="$3"; ports="$4"; npusmi="$5"; py="${6:-python3}"
platform="${7:-ascend}"; nvsmi="${8:-nvidia-smi}"; gpu_fields="${9:-index,name}"
fact() { printf '%s=%s\n' "$1" "$2"; }
fact probe.version 1
fact probe.sysroot "$root"
fact probe.platform "$platform"
ascend="$root/usr/local/Ascend"

if [ "$platform" != cuda ]; then

# CANN toolkit and NNAL/ATB environment: source each set_env.sh in a subshell, starting
# from an environment without the variables, and report what it exports.
for pair in "cann:ascend-toolkit/set_env.sh" "nnal:nnal/atb/set_env.sh"; do
  name="${pair%%:*}"; file="$ascend/${pair#*:}"
  if [ -r "$file" ]; then
    fact "$name.set_env" present
    (
      unset ASCEND_TOOLKIT_HOME ASCEND_HOME_PATH ATB_HOME_PATH
      . "$file" >/dev/null 2>&1
      fact "$name.toolkit_home" "${ASCEND_TOOLKIT_HOME:-}"
      fact "$name.home_path" "${ASCEND_HOME_PATH:-}"
      fact "$name.atb_home_path" "${ATB_HOME_PATH:-}"
    )
  else
    fact "$name.set_env" absent
  fi
done

# Driver and firmware: version.info holds "Version=<x>".
for part in driver firmware; do
  file="$ascend/$part/version.info"
  if [ -r "$file" ]; then
    fact "$part.version" "$(sed -n 's/^[Vv]ersion=//p' "$file" | head -n 1)"
  else
    fact "$part.version" absent
  fi
done

# CANN toolkit version: <arch>-linux/ascend_toolkit_install.info (version=), else version.cfg.
cann=""
for file in "$ascend"/ascend-toolkit/latest/*/ascend_toolkit_install.info; do
  [ -r "$file" ] && cann="$(sed -n 's/^version=//p' "$file" | head -n 1)" && break
done
if [ -z "$cann" ] && [ -r "$ascend/ascend-toolkit/latest/version.cfg" ]; then
  cann="$(sed -n 's/.*_running_version=\[[^:]*:\([^]]*\)\].*/\1/p' \
    "$ascend/ascend-toolkit/latest/version.cfg" | head -n 1)"
fi
fact cann.version "${cann:-absent}"
fi

# Python packages and the model's config.json, through the Python that runs vLLM.
if command -v "$py" >/dev/null 2>&1; then
  "$py" -c '
import glob, json, os, sys
import importlib.metadata as md
print("py.python=%d.%d.%d" % sys.version_info[:3])
names = ("torch", "torch_npu", "vllm", "vllm_ascend", "mooncake-transfer-engine",
         "mooncake-transfer-engine-npu")
if sys.argv[2] == "cuda":
    # the CUDA runtime torch loads: nvidia-cuda-runtime-cu12 (CUDA 12), nvidia-cuda-runtime (13)
    names = ("torch", "vllm", "nixl", "nvidia-cuda-runtime-cu12", "nvidia-cuda-runtime")
for name in names:
    try:
        version = md.version(name)
    except md.PackageNotFoundError:
        version = "absent"
    print("py.%s=%s" % (name.replace("-", "_"), version))
if sys.argv[2] == "cuda":
    try:
        reqs = md.requires("vllm") or []
    except md.PackageNotFoundError:
        reqs = []
    for req in reqs:
        if req.replace(" ", "").startswith(("torch=", "torch<", "torch>", "torch!", "torch~")):
            print("py.vllm_requires_torch=%s" % req)
model = sys.argv[1]
cfg = os.path.join(model, "config.json")
if not os.path.isfile(cfg):
    print("model.config=absent")
    sys.exit(0)
try:
    with open(cfg, encoding="utf-8") as handle:
        data = json.load(handle)
except (OSError, ValueError) as exc:
    print("model.config=unreadable")
    print("model.error=%s" % str(exc).splitlines()[0])
    sys.exit(0)
print("model.config=present")
print("model.torch_dtype=%s" % data.get("torch_dtype", ""))
quant = data.get("quantization_config")
print("model.quantization_config=%s" % ("present" if quant else "absent"))
if isinstance(quant, dict):
    print("model.quant_method=%s" % quant.get("quant_method", ""))
described = glob.glob(os.path.join(model, "quant_model_description*.json"))
print("model.quant_description=%s" % ("present" if described else "absent"))
' "$root$model" "$platform"
else
  fact py.python absent
fi

# The host address must be on the NIC named in the spec.
if out="$(ip -o -4 addr show dev "$nic" 2>&1)"; then
  fact nic.exists yes
  printf '%s\n' "$out" | awk '{for (i = 1; i < NF; i++) if ($i == "inet") print "nic.addr=" $(i + 1)}'
else
  fact nic.exists no
  fact nic.error "$(printf '%s\n' "$out" | head -n 1)"
fi

# /etc/hccn.conf: device IPs for HCCL (must also be mounted into containers).
if [ "$platform" = cuda ]; then
  :
elif [ -r "$root/etc/hccn.conf" ]; then
  fact hccn_conf present
  fact hccn_conf.addresses "$(grep -c '^address_[0-9]*=' "$root/etc/hccn.conf")"
else
  fact hccn_conf absent
fi

# Planned ports: listening sockets from ss, else /proc/net/tcp{,6} (state 0A = LISTEN).
if command -v ss >/dev/null 2>&1; then
  listen="$(ss -Hltn 2>/dev/null | awk '{n = split($4, a, ":"); print a[n]}')"
  fact ports.source ss
else
  listen="$(for t in /proc/net/tcp /proc/net/tcp6; do
    [ -r "$t" ] && awk 'NR > 1 && $4 == "0A" {split($2, a, ":"); print a[2]}' "$t"
  done | while read -r hex; do printf '%d\n' "0x$hex"; done)"
  fact ports.source proc
fi
flat=" $(printf '%s\n' "$listen" | tr '\n' ' ') "
old_ifs="$IFS"; IFS=,
for port in $ports; do
  case "$flat" in
    *" $port "*) fact "port.$port" busy ;;
    *) fact "port.$port" free ;;
  esac
done
IFS="$old_ifs"

# ascend-pd's own units that are running (their ports are busy on purpose). Pid files are
# written by launch under the real state dir.
for pidf in "$state"/run/*.pid; do
  [ -f "$pidf" ] || continue
  read -r pid _rest < "$pidf" || continue
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    name="${pidf##*/}"; fact running "${name%.pid}"
  fi
done

# Free space where launch writes pid files and logs (the nearest existing parent).
dir="$root$state"
while [ -n "$dir" ] && [ "$dir" != / ] && [ ! -d "$dir" ]; do dir="$(dirname "$dir")"; done
fact disk.path "${dir:-/}"
if [ -n "$root" ] && [ -r "$root/etc/ascend-pd-sim/df" ]; then
  # Simulated hosts only: a canned `df -Pk` answer (the low-disk fault).
  dfout="$(cat "$root/etc/ascend-pd-sim/df")"
else
  dfout="$(df -Pk "${dir:-/}" 2>/dev/null)"
fi
printf '%s\n' "$dfout" | awk 'NR == 2 {print "disk.avail_kb=" $4; print "disk.mount=" $6}'

if [ "$platform" = cuda ]; then
  # GPUs: the identity query (CSV) and the summary's header (driver, CUDA the driver
  # supports); ascend-pd parses both. Both fail alike when NVML cannot start.
  if out="$("$nvsmi" "--query-gpu=$gpu_fields" --format=csv,noheader 2>&1)"; then
    fact gpu_query.exit 0
  else
    fact gpu_query.exit "$?"
  fi
  printf '%s\n' "$out" | sed 's/^/gpu_query.out=/'
  if out="$("$nvsmi" 2>&1)"; then
    fact gpu_smi.exit 0
  else
    fact gpu_smi.exit "$?"
  fi
  printf '%s\n' "$out" | sed -n '1,4p' | sed 's/^/gpu_smi.out=/'
  exit 0
fi

# NPU health: the raw `npu-smi info` table; ascend-pd parses it.
if out="$("$npusmi" info 2>&1)"; then
  fact npu_smi.exit 0
else
  fact npu_smi.exit "$?"
fi
printf '%s\n' "$out" | sed 's/^/npu_smi.out=/'

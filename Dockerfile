# The ascend-pd image: the P/D proxy and the in-cluster preflight Jobs that
# `ascend-pd render --target k8s` writes (docs/kubernetes.md). The vLLM servers run in
# vllm-ascend's own image; this one carries no NPU software.
#
#   docker build -t ascend-pd:latest .      (then set k8s.tool_image to where you push it)
#
# Everything is installed at build time from wheels built here: a pod needs no network
# (no registry, no index) to start.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
COPY templates ./templates
COPY ranktable ./ranktable
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
# doctor's host probe reads addresses and listeners with ip and ss (iproute2), disks with df.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends iproute2 procps \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels ascend-pd && rm -rf /wheels
# npu-smi and hccn_tool come from the node (hostPath mounts in the preflight Job).
ENV PATH="/usr/local/Ascend/driver/tools:${PATH}"
USER 0
ENTRYPOINT []
CMD ["ascend-pd", "--help"]

"""The Kubernetes target: one more renderer of the deployment plan.

Modules: ``model`` (the spec's ``k8s:`` section), ``pods`` (the plan's processes as pods:
which values come from the pod at run time), ``objects`` (the manifests as dicts),
``preflight`` (the in-cluster check Jobs and reading their reports back), ``render`` (the
kustomize directory), ``checks`` (k8s validation rules), ``kubectl`` (launch/status/stop
through the runner seam).
"""

from __future__ import annotations

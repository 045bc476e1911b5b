"""``ascend-pd render``: from a spec to launch scripts, env files, the proxy script and a
manifest; plus the P/D consistency checks run by ``ascend-pd validate``.

Modules: ``versions`` (vllm-ascend version facts), ``ports`` (the port plan), ``serve``
(vllm serve argv, kv-transfer-config), ``docker``, ``plan`` (what runs where: built once per
command, read by everything else), ``findings`` (the finding type and report), ``checks``
(the P/D checks over the plan), ``templates`` (the jinja2 environment), ``deploy`` (files,
manifest, writing and ``--check``).
"""

from __future__ import annotations

from ascend_pd.render.deploy import DeployCheck, RenderResult, check_deploy, render_deploy
from ascend_pd.render.plan import DeploymentPlan, ProcessPlan, ProxyPlan, build_plan
from ascend_pd.render.ports import PortPlan, plan_ports
from ascend_pd.render.versions import Version

__all__ = [
    "DeployCheck",
    "DeploymentPlan",
    "PortPlan",
    "ProcessPlan",
    "ProxyPlan",
    "RenderResult",
    "Version",
    "build_plan",
    "check_deploy",
    "plan_ports",
    "render_deploy",
]

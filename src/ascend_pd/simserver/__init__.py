"""A simulated vLLM-Ascend OpenAI server for P/D disaggregation (prefill or decode role).

Run it as ``python -m ascend_pd.simserver --role prefill|decode --host H --port P --model M``
(the command the rendered launch scripts exec when the spec says ``sim:``), embed it with
``SimServer(config).app()``, or start it as a child process with ``SimServerProcess``.
"""

from __future__ import annotations

from ascend_pd.simserver.app import SimServer
from ascend_pd.simserver.config import SimServerConfig
from ascend_pd.simserver.process import SimServerProcess

__all__ = ["SimServer", "SimServerConfig", "SimServerProcess"]

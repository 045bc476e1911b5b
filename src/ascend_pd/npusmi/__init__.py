"""npu-smi: argv builders (``commands``), pure parsers (``parse``), SoC detection and SDID
layout (``soc``), and a client over a runner (``client``).

Import the submodules directly: this package init stays empty so that the simulated tools,
which start a process per call, import only what they use.
"""

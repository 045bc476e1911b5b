"""hccn_tool: argv builders (``commands``), pure parsers (``parse``, ``ping``), failure
classification (``failures``) and a client over a runner (``client``).

Import the submodules directly: this package init stays empty so that the simulated tools,
which start a process per call, import only what they use.
"""

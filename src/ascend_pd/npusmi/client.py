"""``NpuSmiClient``: npu-smi queries over any ``CommandRunner``, returning parsed records."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from ascend_pd.errors import AscendPDError, RemoteCommandError
from ascend_pd.npusmi import commands
from ascend_pd.npusmi.parse import (
    BoardInfo,
    NpuList,
    NpuMapping,
    NpuSmiInfo,
    Soc,
    SpodInfo,
    parse_board,
    parse_info,
    parse_list,
    parse_mapping,
    parse_spod,
)
from ascend_pd.npusmi.soc import detect_soc
from ascend_pd.runners.base import CommandRunner
from ascend_pd.runners.fanout import Outcome
from ascend_pd.spec.models import DEFAULT_NPU_SMI

T = TypeVar("T")


def parse_smi_outcome(outcome: Outcome, parser: Callable[[str, str, int], T]) -> T:
    """The parsed record of a fanned-out npu-smi job.

    Raises:
        AscendPDError: the job did not run (its error), or the output did not parse.
    """
    if outcome.result is None:
        raise outcome.error or AscendPDError("no result")
    result = outcome.result
    return parser(result.stdout, result.stderr, result.exit_code)


class NpuSmiClient:
    """npu-smi on one host.

    Args:
        runner: how to reach the host.
        tool_path: the npu-smi executable there.
    """

    def __init__(self, runner: CommandRunner, tool_path: str = DEFAULT_NPU_SMI) -> None:
        self.runner = runner
        self.tool = tool_path

    def _call(self, argv: tuple[str, ...], parser: Callable[[str, str, int], T]) -> T:
        result = self.runner.run(argv)
        if result.exit_code and not result.stdout.strip():
            raise RemoteCommandError(result, hint="is npu-smi installed and the driver loaded?")
        try:
            return parser(result.stdout, result.stderr, result.exit_code)
        except AscendPDError as exc:
            # Same error type, but say which host printed the output.
            exc.message = f"{self.runner.host}: {exc.message}"
            exc.args = (exc.message,)
            raise

    def info(self) -> NpuSmiInfo:
        """The ``npu-smi info`` table."""
        return self._call(commands.info(self.tool), parse_info)

    def info_list(self) -> NpuList:
        """``npu-smi info -l``."""
        return self._call(commands.info_list(self.tool), parse_list)

    def mapping(self) -> NpuMapping:
        """``npu-smi info -m``: the source of truth for physical device ids."""
        return self._call(commands.info_mapping(self.tool), parse_mapping)

    def board(self, card: int, chip: int | None = None) -> BoardInfo:
        """``npu-smi info -t board -i CARD [-c CHIP]``."""
        return self._call(commands.board(self.tool, card, chip), parse_board)

    def spod_info(self, card: int, chip: int) -> SpodInfo:
        """``npu-smi info -t spod-info -i CARD -c CHIP`` (``supported`` False on A2)."""
        return self._call(commands.spod_info(self.tool, card, chip), parse_spod)

    def soc(self) -> Soc:
        """A2 or A3, from ``npu-smi info -m`` (one call)."""
        return detect_soc(mapping=self.mapping())

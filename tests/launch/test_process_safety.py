"""stop signals only the unit it launched; launch refuses a state dir or a log another
user could have planted things in (real processes, LocalRunner)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from ascend_pd.cli import cli
from ascend_pd.examples import example_spec
from ascend_pd.launch import remote
from ascend_pd.launch.api import plan_units
from ascend_pd.launch.launcher import launch_units, status_units, stop_units
from ascend_pd.launch.units import StateLayout
from ascend_pd.runners.local import LocalRunner
from ascend_pd.spec import parse_spec
from tests.launch import safety


@pytest.fixture
def layout(tmp_path: Path) -> StateLayout:
    return StateLayout(str(tmp_path / "state dir"))


def runner_for(_host: str) -> LocalRunner:
    return LocalRunner("local")


def test_a_pid_file_naming_another_process_is_refused(layout: StateLayout) -> None:
    safety.assert_foreign_pid_file_is_refused(runner_for, layout, "local")


def test_pid_one_and_minus_one_are_never_signalled(layout: StateLayout) -> None:
    safety.assert_pid_one_and_minus_one_are_never_signalled(runner_for, layout, "local")


@pytest.mark.skipif(os.geteuid() != 0, reason="handing the state dir to another uid needs root")
def test_an_unsafe_state_dir_is_refused_with_the_fix(layout: StateLayout) -> None:
    safety.assert_launch_refuses_an_unsafe_state_dir(runner_for, layout, "local")


def test_a_planted_log_symlink_is_not_followed(layout: StateLayout, tmp_path: Path) -> None:
    safety.assert_a_planted_log_symlink_is_not_followed(runner_for, layout, "local", tmp_path)


def test_the_unit_runs_and_its_env_file_is_owner_only(layout: StateLayout) -> None:
    safety.assert_unit_runs_and_env_file_is_private(runner_for, layout, "local")


def test_status_says_why_a_stale_pid_file_is_not_believed(layout: StateLayout) -> None:
    unit = safety.sleeper_unit()
    pid_file = Path(layout.pid_file(unit))
    pid_file.parent.mkdir(parents=True)
    pid_file.write_text(f"{os.getpid()} 0 1\n")  # this test process: alive, not the unit
    [state] = status_units([unit], runner_for, layout)
    assert not state.alive
    assert "is another process" in (state.error or "")


class Recording(LocalRunner):
    """A real LocalRunner that also keeps every argv it ran."""

    def __init__(self) -> None:
        super().__init__("local")
        self.argvs: list[list[str]] = []

    def run(self, argv, **kw):  # type: ignore[no-untyped-def, override]
        self.argvs.append(list(argv))
        return super().run(argv, **kw)


def test_file_contents_and_secrets_never_ride_on_a_command_line(layout: StateLayout) -> None:
    recording = Recording()
    unit = safety.sleeper_unit()
    [state] = launch_units([unit], lambda _h: recording, layout, ready_timeout_s=20)
    stop_units([unit], lambda _h: recording, layout, grace_s=2)
    assert state.ready, state
    assert recording.argvs
    assert not [a for a in recording.argvs if any("s3cret-token" in word for word in a)]
    assert (Path(layout.deploy) / "u0.env").read_text() == "export APD_TOKEN='s3cret-token'\n"


def test_rendered_env_files_are_owner_only() -> None:
    spec = parse_spec(example_spec("a2-1p1d"))
    units, _manifest = plan_units(spec)
    modes = {name: mode for u in units for name, (_text, mode) in u.files.items()}
    assert [m for n, m in modes.items() if n.endswith(".env")] == [0o600, 0o600]
    assert {m for n, m in modes.items() if n.endswith(".sh")} == {0o755}


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="needs shellcheck")
@pytest.mark.parametrize("name", ["PUSH", "START", "STATUS", "STOP", "TAIL", "READ_FROM"])
def test_host_snippets_pass_shellcheck(name: str) -> None:
    text = "#!/bin/sh\n" + getattr(remote, name)
    done = subprocess.run(["shellcheck", "-s", "sh", "-"], input=text, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stdout


def test_json_and_dry_run_output_never_show_env_values(tmp_path: Path) -> None:
    # The shape's prefill already has an env block: the secret joins it.
    text = example_spec("a2-1p1d").replace(
        '      ASCEND_CONNECT_TIMEOUT: "60000"\n',
        '      ASCEND_CONNECT_TIMEOUT: "60000"\n      HF_TOKEN: hf-s3cr3t-value\n', 1)
    spec = tmp_path / "pd.yaml"
    spec.write_text(text)
    for args in (["render", "-o", str(tmp_path / "deploy")], ["launch", "--dry-run"],
                 ["validate"]):
        result = CliRunner().invoke(cli, [*args, "-c", str(spec), "--json"])
        assert result.exit_code in (0, 1), result.output
        assert "hf-s3cr3t-value" not in result.output, args
    # ...while the owner-only env file does carry it, for the unit.
    env_file = next((tmp_path / "deploy").glob("prefill-0@*.env"))
    assert "hf-s3cr3t-value" in env_file.read_text()
    assert env_file.stat().st_mode & 0o777 == 0o600


def test_directories_it_creates_pass_its_own_check_under_a_loose_umask(
        layout: StateLayout) -> None:
    old = os.umask(0o002)  # many distributions give users 002; the runner inherits it
    try:
        safety.assert_unit_runs_and_env_file_is_private(runner_for, layout, "local")
    finally:
        os.umask(old)
    assert Path(layout.root).stat().st_mode & 0o777 == 0o755

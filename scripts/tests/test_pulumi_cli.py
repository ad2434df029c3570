"""`SubprocessPulumiCli` runs a stand-in `pulumi` executable: we assert the exact commands it receives."""

import json
import sys
from pathlib import Path

import pytest

from scripts.pulumi_cli import PulumiError, SubprocessPulumiCli

# Records each call (arguments, backend URL, working directory) and answers like the CLI's --json output.
FAKE_PULUMI = """\
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_PULUMI_LOG"], "a") as log:
    record = {"args": args, "backend": os.environ.get("PULUMI_BACKEND_URL"), "cwd": os.getcwd()}
    log.write(json.dumps(record) + "\\n")
if "broken" in args:
    sys.stderr.write("error: stack 'broken' not found\\n")
    sys.exit(255)
answers = {
    ("stack", "ls"): [{"name": "gcp-dev", "current": True}, {"name": "gcp-sandbox-pr1", "current": False}],
    ("config",): {"mlops-stack:environment": {"value": "sandbox", "secret": False},
                  "mlops-stack:token": {"secret": True}},
    ("stack", "output"): {"apiUrl": "https://api", "apiKey": "[secret]"},
}
for prefix, answer in answers.items():
    if tuple(args[: len(prefix)]) == prefix and "--json" in args:
        print(json.dumps(answer))
"""


@pytest.fixture
def cli(tmp_path: Path) -> tuple[SubprocessPulumiCli, Path]:
    executable = tmp_path / "pulumi"
    executable.write_text(f"#!{sys.executable}\n{FAKE_PULUMI}")
    executable.chmod(0o755)
    log = tmp_path / "calls.jsonl"
    environ = {"FAKE_PULUMI_LOG": str(log), "PATH": "/usr/bin:/bin"}
    return SubprocessPulumiCli(tmp_path, "gs://team-state", str(executable), environ), log


def calls(log: Path) -> list[list[str]]:
    return [json.loads(line)["args"] for line in log.read_text().splitlines()]


def test_each_operation_sends_the_expected_command(cli: tuple[SubprocessPulumiCli, Path]) -> None:
    pulumi, log = cli
    assert pulumi.stack_names() == ["gcp-dev", "gcp-sandbox-pr1"]
    pulumi.init_stack("gcp-dev", "gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k")
    pulumi.select_stack("gcp-dev")
    assert pulumi.config("gcp-dev") == {"mlops-stack:environment": "sandbox", "mlops-stack:token": "[secret]"}
    pulumi.set_config("gcp-dev", "mlops-stack:environment", "-dev")
    pulumi.up("gcp-dev")
    pulumi.destroy("gcp-sandbox-pr1")
    pulumi.remove_stack("gcp-sandbox-pr1")
    assert pulumi.outputs("gcp-dev") == {"apiUrl": "https://api", "apiKey": "[secret]"}
    pulumi.outputs("gcp-dev", show_secrets=True)
    assert calls(log) == [
        ["stack", "ls", "--json", "--non-interactive"],
        ["stack", "init", "gcp-dev", "--secrets-provider", "gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k",
         "--non-interactive"],
        ["stack", "select", "gcp-dev", "--non-interactive"],
        ["config", "--stack", "gcp-dev", "--json", "--non-interactive"],
        ["config", "set", "--stack", "gcp-dev", "--", "mlops-stack:environment", "-dev", "--non-interactive"],
        ["up", "--stack", "gcp-dev", "--yes", "--skip-preview", "--non-interactive"],
        ["destroy", "--stack", "gcp-sandbox-pr1", "--yes", "--skip-preview", "--non-interactive"],
        ["stack", "rm", "gcp-sandbox-pr1", "--yes", "--non-interactive"],
        ["stack", "output", "--stack", "gcp-dev", "--json", "--non-interactive"],
        ["stack", "output", "--stack", "gcp-dev", "--show-secrets", "--json", "--non-interactive"],
    ]  # fmt: skip


def test_backend_url_and_working_directory_reach_the_cli(
    cli: tuple[SubprocessPulumiCli, Path], tmp_path: Path
) -> None:
    pulumi, log = cli
    pulumi.up("gcp-dev")
    record = json.loads(log.read_text())
    assert record["backend"] == "gs://team-state"
    assert record["cwd"] == str(tmp_path)


def test_a_failing_command_raises_with_what_the_cli_said(cli: tuple[SubprocessPulumiCli, Path]) -> None:
    pulumi, _ = cli
    with pytest.raises(PulumiError, match="stack 'broken' not found"):
        pulumi.up("broken")


def test_a_missing_cli_says_how_to_get_it(tmp_path: Path) -> None:
    pulumi = SubprocessPulumiCli(tmp_path, executable=str(tmp_path / "no-such-pulumi"))
    with pytest.raises(PulumiError, match="not installed"):
        pulumi.stack_names()

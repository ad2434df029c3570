"""`AutomationPulumi` drives a stand-in `pulumi` executable through Pulumi's own Automation API: we assert the
commands the CLI would receive, that `up` streams its output as it comes, and that the CLI's failures come
back as our typed errors (a DIY backend's lock as `StackLockedError`)."""

import json
import sys
from pathlib import Path

import pytest

from mlops_stack.pulumi_cli import AutomationPulumi, PulumiError, StackLockedError

# Answers like the real CLI's --json output; records every call. Messages are the CLI's own
# (the DIY lock text is what pulumi.automation.errors matches: "the stack is currently locked by").
FAKE_PULUMI = """\
import json, os, sys
# The Automation API puts --non-interactive first: the real CLI takes global flags anywhere.
args = [arg for arg in sys.argv[1:] if arg != "--non-interactive"]
if "FAKE_PULUMI_LOG" in os.environ:  # the Automation API's version probe runs with the caller's environment
    with open(os.environ["FAKE_PULUMI_LOG"], "a") as log:
        backend = os.environ.get("PULUMI_BACKEND_URL")
        log.write(json.dumps({"args": args, "backend": backend, "cwd": os.getcwd()}))
        log.write("\\n")
def has(*words):
    return list(args[: len(words)]) == list(words)
if has("version"):
    print("v3.272.0")
elif "locked" in args:
    sys.stderr.write("error: the stack is currently locked by 1 lock(s). Either wait for the other"
                     " process(es) to end or delete the lock file with `pulumi cancel`.\\n")
    sys.exit(255)
elif "broken" in args:
    sys.stderr.write("error: no stack named 'broken' found\\n")
    sys.exit(255)
elif has("stack", "ls"):
    print(json.dumps([{"name": "gcp-dev", "current": True}, {"name": "gcp-sandbox-pr1", "current": False}]))
elif has("stack", "tag", "ls"):
    print(json.dumps({"pulumi:project": "mlops-stack", "mlops-stack:environment": "sandbox"}))
elif has("config") and "--json" in args:
    print(json.dumps({"mlops-stack:environment": {"value": "sandbox", "secret": False},
                      "mlops-stack:token": {"value": "t0ken", "secret": True}}))
elif has("stack", "output"):
    shown = "--show-secrets" in args
    print(json.dumps({"apiUrl": "https://api", "apiKey": "k3y" if shown else "[secret]"}))
elif has("stack", "history"):
    print(json.dumps([{"kind": "update", "startTime": "2026-11-24T10:00:00.000Z", "message": "",
                       "environment": {}, "config": {}, "result": "succeeded",
                       "endTime": "2026-11-24T10:01:00.000Z", "resourceChanges": {}}]))
elif has("up") or has("destroy"):
    for line in ("Updating (gcp-sandbox-pr1)", " +  gcp:storage:Bucket creating", "Resources: 1 created"):
        print(line, flush=True)
"""


@pytest.fixture
def cli(tmp_path: Path) -> tuple[AutomationPulumi, Path, list[str]]:
    root = tmp_path / "pulumi-root"
    (root / "bin").mkdir(parents=True)
    executable = root / "bin" / "pulumi"
    executable.write_text(f"#!{sys.executable}\n{FAKE_PULUMI}")
    executable.chmod(0o755)
    log = tmp_path / "calls.jsonl"
    (tmp_path / "project").mkdir()
    environ = {"FAKE_PULUMI_LOG": str(log), "PATH": "/usr/bin:/bin"}
    printed: list[str] = []
    pulumi = AutomationPulumi(
        tmp_path / "project", "gs://team-state-dev", environ, output=printed.append, pulumi_root=str(root)
    )
    return pulumi, log, printed


def calls(log: Path) -> list[list[str]]:
    return [json.loads(line)["args"] for line in log.read_text().splitlines() if "version" not in line]


def test_each_operation_sends_the_expected_command(cli: tuple[AutomationPulumi, Path, list[str]]) -> None:
    pulumi, log, _ = cli
    assert pulumi.stack_names() == ["gcp-dev", "gcp-sandbox-pr1"]
    pulumi.init_stack("gcp-sandbox-pr1", "gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k")
    assert pulumi.config("gcp-sandbox-pr1") == {
        "mlops-stack:environment": "sandbox",
        "mlops-stack:token": "[secret]",
    }
    pulumi.set_config("gcp-sandbox-pr1", "gcp:region", "-starts-with-a-dash")
    assert pulumi.tags("gcp-sandbox-pr1")["mlops-stack:environment"] == "sandbox"
    pulumi.set_tag("gcp-sandbox-pr1", "mlops-stack:expires-at", "2026-11-25T00:00:00Z")
    assert pulumi.outputs("gcp-sandbox-pr1") == {"apiUrl": "https://api", "apiKey": "[secret]"}
    assert pulumi.outputs("gcp-sandbox-pr1", show_secrets=True)["apiKey"] == "k3y"
    pulumi.remove_stack("gcp-sandbox-pr1")
    sent = calls(log)
    assert ["stack", "init", "gcp-sandbox-pr1", "--secrets-provider",
            "gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k"] in sent  # fmt: skip
    set_config = next(c for c in sent if c[:2] == ["config", "set"])
    # `--` before the value, so a value starting with a dash is not read as a flag.
    assert set_config[-2:] == ["--", "-starts-with-a-dash"]
    assert "--plaintext" in set_config
    assert ["stack", "tag", "set", "mlops-stack:expires-at", "2026-11-25T00:00:00Z", "--stack",
            "gcp-sandbox-pr1"] in sent  # fmt: skip
    assert ["stack", "rm", "--yes", "gcp-sandbox-pr1"] in sent


def test_up_streams_pulumis_output_and_targets_the_named_stack(
    cli: tuple[AutomationPulumi, Path, list[str]],
) -> None:
    pulumi, log, printed = cli
    pulumi.up("gcp-sandbox-pr1")
    assert "Resources: 1 created" in printed
    up = next(c for c in calls(log) if c[0] == "up")
    assert up[:3] == ["up", "--yes", "--skip-preview"]
    assert up[up.index("--stack") + 1] == "gcp-sandbox-pr1"
    pulumi.destroy("gcp-sandbox-pr1")
    assert any(c[0] == "destroy" and "--yes" in c for c in calls(log))


def test_backend_url_and_working_directory_reach_the_cli(
    cli: tuple[AutomationPulumi, Path, list[str]], tmp_path: Path
) -> None:
    pulumi, log, _ = cli
    pulumi.stack_names()
    record = json.loads(log.read_text().splitlines()[-1])
    assert record["backend"] == "gs://team-state-dev"
    assert record["cwd"] == str(tmp_path / "project")


def test_a_locked_stack_raises_the_typed_error(cli: tuple[AutomationPulumi, Path, list[str]]) -> None:
    pulumi, _, _ = cli
    with pytest.raises(StackLockedError, match="another update holds the stack's lock"):
        pulumi.up("locked")


def test_a_failing_command_raises_with_what_the_cli_said(
    cli: tuple[AutomationPulumi, Path, list[str]],
) -> None:
    pulumi, _, _ = cli
    with pytest.raises(PulumiError, match="no stack named 'broken' found"):
        pulumi.tags("broken")


def test_a_missing_cli_says_how_to_get_it(tmp_path: Path) -> None:
    pulumi = AutomationPulumi(tmp_path, pulumi_root=str(tmp_path / "nowhere"))
    with pytest.raises(PulumiError, match=r"pulumi\.com/docs/install"):
        pulumi.stack_names()

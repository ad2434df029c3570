"""Every workflow (and the local actions they use) follows the rules: pinned actions, least permissions,
`id-token: write` only where a job logs in, no persisted checkout credentials, timeouts, concurrency,
no cloud credentials for pull requests from forks; zizmor and GitHub's workflow schema agree."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
LOCAL_ACTIONS = sorted((REPO / ".github" / "actions").glob("*/action.yml"))
BIN = Path(sys.executable).parent
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
LOGIN_ACTION = "./.github/actions/cloud-login"
CLOUD_LOGIN_ACTIONS = (
    "google-github-actions/auth@",
    "aws-actions/configure-aws-credentials@",
    "azure/login@",
)
FORK_GUARD = "github.event.pull_request.head.repo.full_name == github.repository"


def load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the key `on` as True.
    if True in document:
        document["on"] = document.pop(True)
    return dict(document)


def jobs(path: Path) -> dict[str, dict[str, Any]]:
    return dict(load(path)["jobs"])


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps", []))


def logs_in(job: dict[str, Any]) -> bool:
    """A job logs in to a cloud if it runs the login action, or calls a workflow whose jobs do."""
    if "uses" in job:
        called = REPO / job["uses"].removeprefix("./")
        return any(logs_in(inner) for inner in jobs(called).values())
    return any(step.get("uses") == LOGIN_ACTION for step in steps(job))


def test_there_are_the_five_workflows() -> None:
    names = {path.name for path in WORKFLOWS}
    assert {"ci.yml", "preview.yml", "deploy.yml", "sandbox.yml", "retrain.yml"} <= names


@pytest.mark.parametrize("path", WORKFLOWS + LOCAL_ACTIONS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_action_is_pinned_by_full_commit_sha_with_its_version_in_a_comment(path: Path) -> None:
    text = path.read_text()
    for uses in re.findall(r"uses:\s*(\S+)(.*)", text):
        reference, comment = uses
        if reference.startswith("./"):
            assert (REPO / reference.removeprefix("./")).exists(), f"{reference} does not exist"
            continue
        assert PINNED.match(reference), f"{path.name}: {reference} is not pinned by a 40-hex commit SHA"
        assert re.search(r"#\s*v\d", comment), f"{path.name}: {reference} has no `# vX` version comment"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_top_level_permissions_are_empty_or_read_only(path: Path) -> None:
    permissions = load(path)["permissions"]
    assert permissions == {} or set(permissions.values()) == {"read"}, f"{path.name}: {permissions}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_id_token_write_only_in_jobs_that_log_in_and_every_login_has_it(path: Path) -> None:
    for name, job in jobs(path).items():
        has_id_token = job.get("permissions", {}).get("id-token") == "write"
        assert has_id_token == logs_in(job), (
            f"{path.name}:{name} id-token={has_id_token}, logs in={logs_in(job)}"
        )


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_cloud_login_actions_are_only_used_through_the_shared_login_action(path: Path) -> None:
    text = path.read_text()
    assert not any(action in text for action in CLOUD_LOGIN_ACTIONS)


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_checkout_never_persists_credentials(path: Path) -> None:
    for name, job in jobs(path).items():
        for step in steps(job):
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                assert step.get("with", {}).get("persist-credentials") is False, f"{path.name}:{name}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_job_has_a_timeout_and_every_workflow_a_concurrency_group(path: Path) -> None:
    workflow_group = load(path).get("concurrency", {}).get("group")
    for name, job in jobs(path).items():
        # A reusable workflow may scope concurrency per job (per stack) instead.
        assert workflow_group or job.get("concurrency", {}).get("group"), (
            f"{path.name}:{name} has no concurrency"
        )
        if "uses" not in job:  # a called workflow's jobs carry their own timeouts
            assert isinstance(job.get("timeout-minutes"), int), f"{path.name}:{name} has no timeout-minutes"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_pull_request_jobs_that_log_in_skip_forks(path: Path) -> None:
    if "pull_request" not in load(path)["on"]:
        return
    for name, job in jobs(path).items():
        condition = job.get("if", "")
        only_other_events = "github.event_name ==" in condition and "'pull_request'" not in condition
        if logs_in(job) and not only_other_events:
            assert FORK_GUARD in condition, f"{path.name}:{name} would give a fork PR cloud credentials"


def test_no_workflow_runs_untrusted_code_with_a_write_token() -> None:
    for path in WORKFLOWS:
        assert "pull_request_target" not in load(path)["on"], f"{path.name} uses pull_request_target"


def test_deploy_goes_dev_then_staging_then_a_prod_preview_then_prod_one_run_per_stack() -> None:
    deploy = jobs(REPO / ".github/workflows/deploy.yml")
    assert [deploy[env]["with"]["environment"] for env in ("dev", "staging", "prod")] == [
        "dev",
        "staging",
        "prod",
    ]
    assert deploy["staging"]["needs"] == ["plan", "dev"]
    # staging is optional: it runs only when its stack file exists, and prod does not wait on a skipped job.
    assert deploy["staging"]["if"] == "needs.plan.outputs.staging == 'true'"
    assert deploy["prod-preview"]["needs"] == ["dev", "staging"]
    assert deploy["prod-preview"]["if"] == "${{ !failure() && !cancelled() }}"
    assert "environment" not in deploy["prod-preview"]  # its subject is the branch, not an environment
    login = next(step for step in steps(deploy["prod-preview"]) if step.get("uses") == LOGIN_ACTION)
    assert (login["with"]["environment"], login["with"]["role"]) == ("prod", "preview")
    assert deploy["prod"]["needs"] == "prod-preview"
    up = jobs(REPO / ".github/workflows/_deploy-stack.yml")["up"]
    assert up["environment"] == "${{ inputs.environment }}"
    assert up["concurrency"] == {
        "group": "pulumi-${{ vars.CLOUD }}-${{ inputs.environment }}",
        "cancel-in-progress": False,
    }
    runs = [step.get("run", "") for step in steps(up)]
    assert any("scripts.smoke" in run for run in runs)
    actions = [step.get("uses", "") for step in steps(up)]
    assert actions.index(LOGIN_ACTION) < next(
        i for i, a in enumerate(actions) if a.startswith("pulumi/actions@")
    )


def test_every_job_that_writes_a_stack_shares_that_stacks_concurrency_group() -> None:
    """Deploys and sandbox up/destroy lock their stack: one group per stack, `pulumi-<stack>`."""
    groups = {
        "_deploy-stack.yml:up": "pulumi-${{ vars.CLOUD }}-${{ inputs.environment }}",
        "sandbox.yml:up": "pulumi-${{ vars.CLOUD }}-sandbox-pr${{ github.event.pull_request.number }}",
        "sandbox.yml:destroy": "pulumi-${{ vars.CLOUD }}-sandbox-pr${{ github.event.pull_request.number }}",
        "sandbox.yml:sweep": "pulumi-${{ vars.CLOUD }}-sandbox-sweep",
    }
    for where, group in groups.items():
        workflow, job = where.split(":")
        concurrency = jobs(REPO / ".github/workflows" / workflow)[job]["concurrency"]
        assert concurrency == {"group": group, "cancel-in-progress": False}, where


def test_sandbox_jobs_run_in_the_sandbox_environment_and_take_the_secrets_provider_from_state() -> None:
    workflow = load(REPO / ".github/workflows/sandbox.yml")
    assert workflow["env"]["PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER"] == "true"
    for name, job in workflow["jobs"].items():
        assert job["environment"] == "sandbox", name
        login = next(step for step in steps(job) if step.get("uses") == LOGIN_ACTION)
        assert (login["with"]["environment"], login["with"]["role"]) == ("sandbox", "deploy"), name


def test_preview_posts_one_comment_it_keeps_editing() -> None:
    preview = jobs(REPO / ".github/workflows/preview.yml")["preview"]
    pulumi = next(step for step in steps(preview) if step.get("uses", "").startswith("pulumi/actions@"))
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["comment-on-pr"] is True
    assert pulumi["with"]["edit-pr-comment"] is True
    login = next(step for step in steps(preview) if step.get("uses") == LOGIN_ACTION)
    assert login["with"]["role"] == "preview"


def test_sandbox_destroy_paths_go_through_the_guarded_script() -> None:
    sandbox = jobs(REPO / ".github/workflows/sandbox.yml")
    text = (REPO / ".github/workflows/sandbox.yml").read_text()
    assert "pulumi destroy" not in text
    assert "stack rm" not in text
    assert any("scripts.sandbox destroy" in step.get("run", "") for step in steps(sandbox["destroy"]))
    assert any("scripts.sandbox sweep" in step.get("run", "") for step in steps(sandbox["sweep"]))
    assert "schedule" in load(REPO / ".github/workflows/sandbox.yml")["on"]


def run_tool(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)


def test_zizmor_finds_nothing_above_low() -> None:
    result = run_tool(str(BIN / "zizmor"), "--offline", "--min-severity", "medium", ".github")
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflows_and_actions_validate_against_githubs_schemas() -> None:
    workflows = run_tool(
        str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOWS)
    )
    assert workflows.returncode == 0, workflows.stdout + workflows.stderr
    actions = run_tool(
        str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-actions", *map(str, LOCAL_ACTIONS)
    )
    assert actions.returncode == 0, actions.stdout + actions.stderr


def test_workflows_install_what_the_program_and_scripts_need_and_nothing_of_the_images_or_tests() -> None:
    """The setup action installs uv.lock's infra and ops groups: Pulumi and its providers, the clients the
    scripts use; not MLflow (with pyarrow), the test stand-ins or the linters."""
    setup = (REPO / ".github/actions/setup/action.yml").read_text()
    assert "uv sync --frozen --no-default-groups --group infra --group ops" in setup
    uv = shutil.which("uv") or str(REPO / ".tools/bin/uv")
    exported = subprocess.run(
        [uv, "export", "--frozen", "--no-default-groups", "--group", "infra", "--group", "ops",
         "--format", "requirements-txt", "--no-hashes", "--no-emit-project"],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    installed = {line.split("==")[0].lower() for line in exported.splitlines() if "==" in line}
    assert {"pulumi", "pulumi-gcp", "pulumi-aws", "pulumi-azure-native", "httpx", "boto3"} <= installed
    assert not {"mlflow", "pyarrow", "moto", "ruff", "pytest", "scikit-learn"} & installed


def test_preview_costs_run_without_credentials_and_the_comment_job_runs_no_pr_code() -> None:
    """The estimate runs the pull request's code: no login, no write token. The job that writes the comment
    checks nothing out and runs only its own script, with the estimate passed in as data (an env variable)."""
    preview = jobs(REPO / ".github/workflows/preview.yml")
    cost, comment = preview["cost"], preview["cost-comment"]
    assert cost["permissions"] == {"contents": "read"}
    assert not logs_in(cost)
    runs = [step.get("run", "") for step in steps(cost)]
    assert any("scripts.cost" in run and "--program-root base" in run and "--compare" in run for run in runs)
    base = next(step for step in steps(cost) if step.get("with", {}).get("path") == "base")
    assert base["with"]["ref"] == "${{ github.event.pull_request.base.sha }}"
    assert comment["needs"] == "cost"
    assert comment["permissions"] == {"pull-requests": "write"}
    assert all("uses" not in step for step in steps(comment)), "the commenting job must not check out PR code"
    (post,) = steps(comment)
    assert "${{" not in post["run"], "the estimate reaches the script as an env variable, never inlined"
    assert post["env"]["ESTIMATE"] == "${{ needs.cost.outputs.comment }}"


def test_preview_cost_step_posts_base_and_pr_estimates_of_each_previewed_stack(tmp_path: Path) -> None:
    """The cost job's own script, run as the runner runs it (uv stubbed to this checkout's Python): for each
    environment the preview covers, the base branch's estimate next to this pull request's; an environment
    whose estimate fails says so in the comment instead of failing the job."""
    (step,) = [
        step
        for step in steps(jobs(REPO / ".github/workflows/preview.yml")["cost"])
        if step.get("id") == "estimate"
    ]
    base = tmp_path / "base"  # the base branch's checkout, as actions/checkout puts it
    for part in ("infra", "service", "stacks"):
        shutil.copytree(REPO / part, base / part, ignore=shutil.ignore_patterns("__pycache__", "tests"))
    shutil.copy(REPO / "Pulumi.yaml", base / "Pulumi.yaml")
    stub = tmp_path / "bin" / "uv"
    stub.parent.mkdir()
    stub.write_text(
        f'#!/bin/sh\n[ "$1 $2 $3" = "run --frozen python" ] || exit 97\nshift 3\nexec {sys.executable} "$@"\n'
    )
    stub.chmod(0o755)
    summary, output = tmp_path / "summary.md", tmp_path / "output.txt"
    env = {
        "PATH": f"{stub.parent}:/usr/bin:/bin",
        "PYTHONPATH": str(REPO),  # `-m scripts.cost` is this checkout's, run from the workspace
        "CLOUD": "gcp",
        "ENVIRONMENTS": '["dev", "staging"]',  # staging has no stack file in this repository
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_OUTPUT": str(output),
    }
    script = ["bash", "-e", "-c", step["run"]]
    done = subprocess.run(
        script, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr
    comment = (tmp_path / "cost.md").read_text()
    assert "#### Estimated cost of `gcp-dev`" in comment
    assert "| | base branch | this PR | change |" in comment
    assert re.search(r"\| idle, USD a month \| [\d.,]+ \| [\d.,]+ \| \+0\.00 \|", comment), comment
    assert "#### `gcp-staging`: no estimate (the job's log says why)" in comment
    assert summary.read_text() == comment
    delimiter = re.match(r"comment<<(COST_[0-9a-f]{32})\n", output.read_text())
    assert delimiter, output.read_text()
    assert output.read_text() == f"comment<<{delimiter[1]}\n{comment}{delimiter[1]}\n"


# --- the retrain workflow ---------------------------------------------------------------------------------

RETRAIN = REPO / ".github/workflows/retrain.yml"
RETRAIN_ENVIRONMENT = "${{ inputs.environment || 'dev' }}"


def retrain_steps() -> dict[str, dict[str, Any]]:
    return {
        step.get("id") or step.get("name") or step.get("uses", ""): step
        for step in steps(jobs(RETRAIN)["retrain"])
    }


def test_retrain_runs_weekly_on_dev_and_on_demand_for_any_stack_in_its_own_github_environment() -> None:
    """Join with infra.github: the job's GitHub environment is the one each stack's retrain identity trusts
    (`retrain-<environment>`), for the schedule (dev) and for every stack a dispatch may pick."""
    from infra.config import Environment
    from infra.github import retrain_environment

    workflow = load(RETRAIN)
    assert set(workflow["on"]) == {"schedule", "workflow_dispatch"}
    choice = workflow["on"]["workflow_dispatch"]["inputs"]["environment"]
    assert choice["type"] == "choice"
    assert choice["options"] == [e.value for e in Environment if e is not Environment.SANDBOX]
    job = jobs(RETRAIN)["retrain"]
    assert job["environment"] == f"retrain-{RETRAIN_ENVIRONMENT}"
    for environment in [*choice["options"], "dev"]:  # dispatches, and the schedule's default
        assert job["environment"].replace(RETRAIN_ENVIRONMENT, environment) == retrain_environment(
            environment
        )
    login = next(step for step in steps(job) if step.get("uses") == LOGIN_ACTION)
    assert (login["with"]["environment"], login["with"]["role"]) == (RETRAIN_ENVIRONMENT, "retrain")
    assert workflow["concurrency"] == {
        "group": f"retrain-${{{{ vars.CLOUD }}}}-{RETRAIN_ENVIRONMENT}",
        "cancel-in-progress": False,
    }


def test_only_the_retrain_job_writes_to_the_repository_and_no_pull_request_can_start_it() -> None:
    writers = [
        f"{path.name}:{name}"
        for path in WORKFLOWS
        for name, job in jobs(path).items()
        if job.get("permissions", {}).get("contents") == "write"
    ]
    assert writers == ["retrain.yml:retrain"]
    assert jobs(RETRAIN)["retrain"]["permissions"] == {
        "contents": "write",
        "pull-requests": "write",
        "id-token": "write",
    }
    assert not {"pull_request", "pull_request_target", "push"} & set(load(RETRAIN)["on"])


def test_retrain_checks_its_stack_before_logging_in_and_installs_what_training_needs_and_not_pulumi(
    tmp_path: Path,
) -> None:
    """A dispatch for a stack without a file stops before any login (the join test relies on it). The job's
    own install command, run into a fresh environment: scripts.retrain (MLflow's client, the example model,
    the gate) imports there and runs its --help, and neither Pulumi nor full MLflow is installed."""
    names = [step.get("name") or step.get("uses", "") for step in steps(jobs(RETRAIN)["retrain"])]
    check = names.index("Check the stack file and the environment's variables")
    assert check < names.index(LOGIN_ACTION)
    assert "stacks/Pulumi.$STACK.yaml" in retrain_steps()[names[check]]["run"]
    install = retrain_steps()["Install the example model's training environment"]["run"]
    assert install.startswith("uv sync --frozen --no-default-groups ")
    uv = shutil.which("uv") or str(REPO / ".tools/bin/uv")
    environment = tmp_path / "venv"
    env = {
        "PATH": f"{Path(uv).parent}:/usr/bin:/bin",
        "HOME": str(Path.home()),
        "UV_PROJECT_ENVIRONMENT": str(environment),
    }
    synced = subprocess.run(
        [uv, *install.split()[1:]],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert synced.returncode == 0, synced.stderr
    python = str(environment / "bin" / "python")
    helped = subprocess.run(
        [python, "-m", "scripts.retrain", "--help"], cwd=REPO, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert helped.returncode == 0, helped.stderr
    assert "--pr-body" in helped.stdout
    for absent in ("pulumi", "moto"):
        found = subprocess.run(
            [python, "-c", f"import {absent}"], capture_output=True, timeout=60, check=False
        )
        assert found.returncode != 0, f"{absent} is installed in the retrain job's environment"
    full_mlflow = subprocess.run(
        [python, "-c", "import mlflow.server"], capture_output=True, timeout=60, check=False
    )
    assert full_mlflow.returncode != 0, "the job installs the MLflow server, not just its client"


def test_draft_retrain_pull_requests_get_their_preview_and_tests_when_marked_ready() -> None:
    """GITHUB_TOKEN's pull request starts no workflow; a person marking the draft ready does
    (https://docs.github.com/actions/reference/workflows-and-actions/events-that-trigger-workflows#pull_request:
    without `types`, only opened, synchronize and reopened run)."""
    pr_step = retrain_steps()["Open a draft pull request that pins the new version"]["run"]
    assert "gh pr create --draft" in pr_step
    for name in ("preview.yml", "ci.yml"):
        types = load(REPO / ".github/workflows" / name)["on"]["pull_request"]["types"]
        assert set(types) == {"opened", "synchronize", "reopened", "ready_for_review"}, name


def _stub(directory: Path, name: str, script: str) -> None:
    path = directory / name
    path.write_text("#!/bin/bash\n" + script)
    path.chmod(0o755)


@pytest.mark.parametrize(
    ("cloud", "reader", "expected_args"),
    [
        ("gcp", "gcloud", "secrets versions access latest --secret=gcp-dev-mlflow-admin-password "
                          "--project=acme-ml"),
        ("aws", "aws", "secretsmanager get-secret-value --secret-id gcp-dev-mlflow-admin-password "
                       "--query SecretString --output text"),
        ("azure", "az", "keyvault secret show --id gcp-dev-mlflow-admin-password --query value --output tsv"),
    ],
)  # fmt: skip
def test_the_retrain_step_masks_the_password_before_use_and_passes_the_gates_verdict_on(
    tmp_path: Path, cloud: str, reader: str, expected_args: str
) -> None:
    """The step's own script, run as the runner runs it: each cloud's CLI stubbed to answer the password only
    for the secret it is asked by, uv stubbed to check what scripts.retrain gets. The password is masked
    before anything else is printed, reaches the script only through its environment, and is printed nowhere
    else; the verdict lines land in $GITHUB_OUTPUT."""
    import secrets as random_secrets

    from infra.platform import TRACKING_ADMIN_USERNAME

    step = retrain_steps()["retrain"]
    password = random_secrets.token_urlsafe(24)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _stub(
        bin_dir,
        reader,
        f'[ "$*" = "{expected_args}" ] || {{ echo "unexpected: $*" >&2; exit 9; }}\necho {password}\n',
    )
    _stub(
        bin_dir,
        "uv",
        f'[ "$MLFLOW_TRACKING_PASSWORD" = "{password}" ] || exit 7\n'
        f'[ "$MLFLOW_TRACKING_USERNAME" = "{TRACKING_ADMIN_USERNAME}" ] || exit 6\n'
        '[ "$*" = "run --frozen --no-sync python -m scripts.retrain --stack $STACK --artifacts-destination '
        '$ARTIFACT_ROOT --pr-body $RUNNER_TEMP/pr-body.md" ] || { echo "uv: $*" >&2; exit 8; }\n'
        'echo "throughput v7 @challenger: promoted"\necho promoted=true\necho modelVersion=7\n',
    )
    output = tmp_path / "output.txt"
    literal = {k: str(v) for k, v in step["env"].items() if "${{" not in str(v)}
    assert literal == {"MLFLOW_TRACKING_USERNAME": TRACKING_ADMIN_USERNAME}
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        **literal,
        "CLOUD": cloud,
        "STACK": f"{cloud}-dev",
        "SECRET": "gcp-dev-mlflow-admin-password",
        "PROJECT": "acme-ml" if cloud == "gcp" else "",
        "MLFLOW_TRACKING_URI": "https://mlflow.example",
        "ARTIFACT_ROOT": "gs://bucket/mlflow",
        "RUNNER_TEMP": str(tmp_path),
        "GITHUB_OUTPUT": str(output),
        "GITHUB_ENV": str(tmp_path / "env.txt"),
    }
    done = subprocess.run(
        ["bash", "-e", "-c", step["run"]], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"::add-mask::{password}"
    assert password not in "\n".join(lines[1:]) + done.stderr
    assert output.read_text() == "promoted=true\nmodelVersion=7\n"
    assert not (tmp_path / "env.txt").exists()  # nothing handed to later steps
    assert [p.name for p in tmp_path.iterdir() if p.is_file() and password in p.read_text()] == []


def test_the_pull_request_step_pushes_a_branch_named_for_the_stack_and_version_and_opens_a_draft(
    tmp_path: Path,
) -> None:
    """The step's script in a real git checkout with a local remote; gh stubbed to record what it is asked."""
    step = retrain_steps()["Open a draft pull request that pins the new version"]
    assert step["if"] == "steps.retrain.outputs.promoted == 'true'"
    remote, work = tmp_path / "remote.git", tmp_path / "work"
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "--quiet", "--bare", str(remote)], check=True)
    subprocess.run(["git", "init", "--quiet", "--initial-branch=main", str(work)], check=True)
    (work / "stacks").mkdir()
    stack_file = work / "stacks" / "Pulumi.gcp-dev.yaml"
    stack_file.write_text("config:\n  mlops-stack:cloud: gcp\n")
    subprocess.run([*git, "add", "."], cwd=work, check=True)
    subprocess.run([*git, "commit", "--quiet", "-m", "init"], cwd=work, check=True)
    subprocess.run(["git", "remote", "add", "origin", str(remote)], cwd=work, check=True)
    # What scripts.retrain changed: the pin and the version's requirements.
    stack_file.write_text(stack_file.read_text() + '  mlops-stack:modelVersion: "7"\n')
    (work / "stacks/models/throughput/7").mkdir(parents=True)
    (work / "stacks/models/throughput/7/requirements.txt").write_text("scikit-learn==1.7.0\n")
    (tmp_path / "pr-body.md").write_text("| metric | challenger | champion |\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _stub(
        bin_dir,
        "gh",
        f'echo "$*" >> {tmp_path}/gh.log\n[ "$1 $2" != "pr create" ] || cp "${{@: -1}}" {tmp_path}/sent.md\n',
    )
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "STACK": "gcp-dev",
        "VERSION": "7",
        "BASE": "main",
        "GH_TOKEN": "unused-by-the-stub",
        "RUNNER_TEMP": str(tmp_path),
    }
    done = subprocess.run(
        ["bash", "-e", "-c", step["run"]],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    pushed = subprocess.run(
        ["git", "--git-dir", str(remote), "show", "--name-only", "--format=%s", "retrain/gcp-dev-v7"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert "stacks/Pulumi.gcp-dev.yaml" in pushed
    assert "stacks/models/throughput/7/requirements.txt" in pushed
    calls = (tmp_path / "gh.log").read_text().splitlines()
    assert calls[0] == "auth setup-git"
    assert calls[1].startswith("pr create --draft --base main --head retrain/gcp-dev-v7 --title ")
    assert calls[1].endswith(f"--body-file {tmp_path}/pr-description.md")
    sent = (tmp_path / "sent.md").read_text()
    assert "Mark it ready for review" in sent
    assert sent.endswith("| metric | challenger | champion |\n")

"""The estimator on the real program and stack files: every resource type the program creates (dev, prod and
sandbox on each cloud, and the variants that add types) is in its cloud's price sheet; every price says where
and when it was read; the README's cost table is the estimator's output; and the command's answers to a bad
stack, a bad config, another checkout's program and a before/after comparison."""

import dataclasses
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml

from mlops_stack.cost.estimate import HOURS_PER_MONTH, Estimate
from mlops_stack.cost.inventory import StackInventory, take_inventory
from mlops_stack.cost.sheet import load_sheet
from scripts import cost

REPO = Path(__file__).resolve().parents[2]
CLOUDS = ("gcp", "aws", "azure")
# Config that adds resource types the example stacks do not make: the sandboxes' identity on a dev stack.
VARIANTS: Mapping[str, Mapping[str, object]] = {
    "gcp-dev": {"mlops-stack:sandboxes": True},
    "aws-dev": {"mlops-stack:sandboxes": True},
}


def copy_of_stacks(tmp_path: Path, changes: Mapping[str, Mapping[str, object]]) -> Path:
    """A checkout's stack files (what the estimator reads from a root), with `changes` merged into them."""
    shutil.copy(REPO / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copytree(REPO / "stacks", tmp_path / "stacks")
    for stack, config in changes.items():
        path = tmp_path / "stacks" / f"Pulumi.{stack}.yaml"
        document = yaml.safe_load(path.read_text())
        document["config"].update(config)
        path.write_text(yaml.safe_dump(document))
    return tmp_path


@pytest.fixture(scope="module")
def readme_inventories() -> list[StackInventory]:
    """The program under mocks for the README's stacks: dev, prod and a sandbox of each cloud."""
    return [take_inventory(REPO, stack) for stack in cost.README_STACKS]


@pytest.fixture(scope="module")
def readme_estimates(readme_inventories: list[StackInventory]) -> list[Estimate]:
    return [cost.estimate_inventory(inventory) for inventory in readme_inventories]


@pytest.fixture(scope="module")
def created_types(
    readme_inventories: list[StackInventory], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, set[str]]:
    """Per cloud, every cloud resource type the program creates for dev, prod and a sandbox, and variants."""
    variants = copy_of_stacks(tmp_path_factory.mktemp("variants"), VARIANTS)
    found: dict[str, set[str]] = {cloud: set() for cloud in CLOUDS}
    for inventory in [*readme_inventories, *(take_inventory(variants, stack) for stack in VARIANTS)]:
        found[inventory.cloud] |= {r.type for r in inventory.run.resources if r.custom}
    return found


@pytest.mark.parametrize("cloud", CLOUDS)
def test_every_type_the_program_creates_is_priced_or_listed_free(
    cloud: str, created_types: dict[str, set[str]]
) -> None:
    sheet = load_sheet(cloud)
    missing = sorted(kind for kind in created_types[cloud] if not sheet.covers(kind))
    assert not missing, f"add these to mlops_stack/cost/prices/{cloud}.toml (billable or free): {missing}"


@pytest.mark.parametrize("cloud", CLOUDS)
def test_the_sheet_lists_no_type_the_program_never_creates(
    cloud: str, created_types: dict[str, set[str]]
) -> None:
    sheet = load_sheet(cloud)
    stale = sorted((set(sheet.billable) | set(sheet.free)) - created_types[cloud])
    assert not stale, f"{cloud}.toml prices types no stack creates: {stale}"


@pytest.mark.parametrize("cloud", CLOUDS)
def test_every_price_names_its_page_and_the_day_it_was_read(cloud: str) -> None:
    sheet = load_sheet(cloud)
    assert not set(sheet.billable) & set(sheet.free)
    for kind, keys in sheet.billable.items():
        assert set(keys) <= set(sheet.prices), f"{kind} draws on prices the sheet lacks"
    for price in sheet.prices.values():
        assert price.url.startswith("https://"), price.key
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", price.read), price.key
        # A price that was not found says so, rather than being a silent zero.
        assert price.usd is not None or "NOT FOUND" in price.note, price.key
    unused = set(sheet.prices) - {key for keys in sheet.billable.values() for key in keys}
    assert not unused, f"prices no resource type draws on: {unused}"


def test_the_readme_table_is_the_estimators_output(readme_estimates: list[Estimate]) -> None:
    table = cost.readme_table(readme_estimates)
    assert table in cost.README.read_text(), "README.md's cost table is stale: run `make cost-table`"


def test_an_idle_sandbox_costs_least_and_prod_most_on_each_cloud(readme_estimates: list[Estimate]) -> None:
    idle = {result.stack: result.idle_usd for result in readme_estimates}
    for cloud in CLOUDS:
        assert idle[f"{cloud}-sandbox-example"] <= idle[f"{cloud}-dev"] < idle[f"{cloud}-prod"], idle


def test_a_stack_without_a_file_is_refused_with_the_ones_that_exist(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cost.main(["gcp-staging"]) == 2
    error = capsys.readouterr().err
    assert "no stack file stacks/Pulumi.gcp-staging.yaml" in error
    assert "gcp-dev" in error
    assert "<cloud>-sandbox-<id>" in error


def test_a_bad_config_is_refused_with_every_problem_and_its_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = copy_of_stacks(tmp_path, {"gcp-dev": {"mlops-stack:apiMinInstances": "many"}})
    assert cost.main(["gcp-dev", "--program-root", str(root)]) == 2
    assert "mlops-stack:apiMinInstances" in capsys.readouterr().err


def test_another_checkouts_stack_files_give_that_checkouts_estimate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cost.main(["gcp-dev", "--json"]) == 0
    before = json.loads(capsys.readouterr().out)
    root = copy_of_stacks(tmp_path, {"gcp-dev": {"mlops-stack:apiMinInstances": "1"}})
    assert cost.main(["gcp-dev", "--json", "--program-root", str(root)]) == 0
    after = json.loads(capsys.readouterr().out)
    assert after["idle_usd_per_month"] > before["idle_usd_per_month"]

    (tmp_path / "before.json").write_text(json.dumps(before))
    (tmp_path / "after.json").write_text(json.dumps(after))
    assert cost.main(["--compare", str(tmp_path / "before.json"), str(tmp_path / "after.json")]) == 0
    comparison = capsys.readouterr().out
    change = after["idle_usd_per_month"] - before["idle_usd_per_month"]
    assert f"| {change:+,.2f} |" in comparison
    assert "Estimated cost of `gcp-dev`" in comparison


def test_the_base_checkouts_program_is_estimated_not_only_its_stack_files(tmp_path: Path) -> None:
    """The preview's "before" is the base branch's program, so a pull request that changes the program (here
    GCP's default service CPU, in infra/) shows its cost change, not only one that changes stack files. The
    CLI imports `infra` from --program-root, which this process has already imported from here: so it runs
    in its own process, as the workflow runs it."""
    base = tmp_path / "base"
    for part in ("infra", "service", "stacks"):
        shutil.copytree(REPO / part, base / part, ignore=shutil.ignore_patterns("__pycache__", "tests"))
    shutil.copy(REPO / "Pulumi.yaml", base / "Pulumi.yaml")
    limits = base / "infra" / "gcp" / "limits.py"
    one_cpu = limits.read_text()
    assert one_cpu.count("default_cpu=1,") == 1, "this test doubles GCP's default CPU: find where it is set"
    limits.write_text(one_cpu.replace("default_cpu=1,", "default_cpu=2,"))

    def estimate(*root: str) -> dict[str, float]:
        command = [sys.executable, "-m", "scripts.cost", "gcp-dev", "--json", *root]
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, check=True)
        return dict(json.loads(done.stdout))

    before, after = estimate("--program-root", str(base)), estimate()
    # A request served at zero instances pays one active instance: twice the CPU, twice its CPU-seconds.
    assert before["usd_per_million_predictions"] > after["usd_per_million_predictions"]
    assert before["idle_usd_per_month"] == after["idle_usd_per_month"]  # dev scales to zero either way


def test_the_line_by_line_output_names_each_meter_and_the_assumptions(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cost.main(["aws-sandbox-alice"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("aws-sandbox-alice (eu-west-1): $")
    assert "interface_endpoint_zone_hour" in out
    assert "fargate_vcpu_hour" in out
    assert "read Pulumi.aws-dev.yaml as a sandbox" in out
    # The logs meters are billed by use: no price in the sheet, and no quantity in the estimate.
    assert re.search(r"cloudwatch_logs_ingest_gb +0\.0 +unpriced", out)
    assert "assumptions:" in out


def test_a_price_not_found_is_printed_as_unpriced_and_left_out_of_the_total(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cost.main(["gcp-dev", "--json"]) == 0
    priced = json.loads(capsys.readouterr().out)
    sheet = load_sheet("gcp")
    micro = "cloud_sql_db-f1-micro_hour"
    micro_usd = sheet.prices[micro].usd
    assert micro_usd is not None
    prices = {**sheet.prices, micro: dataclasses.replace(sheet.prices[micro], usd=None)}
    monkeypatch.setattr(cost, "load_sheet", lambda cloud: dataclasses.replace(sheet, prices=prices))

    assert cost.main(["gcp-dev"]) == 0
    out = capsys.readouterr().out
    listed = out.split("its entry names the page to read):\n", 1)[1]
    assert f"  - {micro}\n" in listed
    assert cost.main(["gcp-dev", "--json"]) == 0
    unpriced = json.loads(capsys.readouterr().out)
    assert unpriced["unpriced"] == sorted([*priced["unpriced"], micro])
    assert unpriced["idle_usd_per_month"] == pytest.approx(
        priced["idle_usd_per_month"] - HOURS_PER_MONTH * micro_usd, abs=0.01
    )


def test_a_type_missing_from_the_sheet_is_refused_with_what_to_add(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sheet = load_sheet("gcp")
    without_sql = {kind: keys for kind, keys in sheet.billable.items() if "sql/" not in kind}
    monkeypatch.setattr(cost, "load_sheet", lambda cloud: dataclasses.replace(sheet, billable=without_sql))
    assert cost.main(["gcp-dev"]) == 2
    error = capsys.readouterr().err
    assert "gcp:sql/databaseInstance:DatabaseInstance" in error
    assert "add it to mlops_stack/cost/prices/" in error

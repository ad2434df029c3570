"""The default worker count follows the container's CPU quota, read from fake cgroup trees."""

import math
import os
from pathlib import Path

import pytest

from service.cpu_quota import usable_cpus

VISIBLE = len(os.sched_getaffinity(0))


def cgroup_v2(root: Path, cpu_max: str) -> Path:
    (root / "cpu.max").write_text(cpu_max + "\n")
    return root


def cgroup_v1(root: Path, quota: str, period: str = "100000") -> Path:
    (root / "cpu").mkdir()
    (root / "cpu" / "cpu.cfs_quota_us").write_text(quota + "\n")
    (root / "cpu" / "cpu.cfs_period_us").write_text(period + "\n")
    return root


@pytest.mark.parametrize(
    ("cpu_max", "quota_cpus"),
    [("100000 100000", 1), ("50000 100000", 0.5), ("150000 100000", 1.5), ("200000 100000", 2)],
)
def test_a_v2_quota_caps_the_workers_rounded_up(tmp_path: Path, cpu_max: str, quota_cpus: float) -> None:
    assert usable_cpus(cgroup_v2(tmp_path, cpu_max)) == min(VISIBLE, math.ceil(quota_cpus))


def test_a_quota_above_the_visible_cpus_changes_nothing(tmp_path: Path) -> None:
    assert usable_cpus(cgroup_v2(tmp_path, f"{(VISIBLE + 3) * 100000} 100000")) == VISIBLE


def test_a_v1_quota_caps_the_workers_and_minus_one_is_none(tmp_path: Path) -> None:
    limited, free = tmp_path / "limited", tmp_path / "free"
    limited.mkdir()
    free.mkdir()
    assert usable_cpus(cgroup_v1(limited, "50000")) == 1
    assert usable_cpus(cgroup_v1(free, "-1")) == VISIBLE


@pytest.mark.parametrize("content", ["max 100000", "", "garbage", "100000 0"])
def test_no_quota_or_an_unreadable_one_leaves_the_affinity(tmp_path: Path, content: str) -> None:
    assert usable_cpus(cgroup_v2(tmp_path, content)) == VISIBLE


def test_no_cgroup_files_at_all_leaves_the_affinity(tmp_path: Path) -> None:
    assert usable_cpus(tmp_path) == VISIBLE

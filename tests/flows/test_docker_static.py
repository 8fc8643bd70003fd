"""Static checks of ``docker/`` and ``prefect.yaml`` (there is no Docker engine here): Dockerfiles parsed with the
official Go parser (``dockerfile`` package), compose and prefect.yaml with PyYAML. Base images are pinned, every
``COPY`` source exists in the build context, the extras ``pip install`` asks for exist in pyproject, the images
start a Prefect worker on a pool that prefect.yaml deploys to, compose services reference existing Dockerfiles
and reserve GPUs, and every prefect.yaml entrypoint/config exists."""

from __future__ import annotations

import importlib
import re
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml

dockerfile = pytest.importorskip("dockerfile")

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = {"caption": REPO / "docker" / "caption.Dockerfile", "train": REPO / "docker" / "train.Dockerfile"}
EXPECTED_BASE = {"caption": "vllm/vllm-openai:", "train": "pytorch/pytorch:"}


def _commands(path: Path) -> list:
    return list(dockerfile.parse_file(str(path)))


def _extras() -> set[str]:
    return set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"])


def _prefect_yaml() -> dict:
    return yaml.safe_load((REPO / "prefect.yaml").read_text())


def _compose() -> dict:
    return yaml.safe_load((REPO / "docker" / "compose.yaml").read_text())


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_dockerfile_base_copy_and_extras(name):
    cmds = _commands(DOCKERFILES[name])
    froms = [c.value[0] for c in cmds if c.cmd == "FROM"]
    assert len(froms) == 1 and froms[0].startswith(EXPECTED_BASE[name])
    image, _, tag = froms[0].rpartition(":")
    assert image and tag and tag != "latest" and re.search(r"\d", tag), f"{name}: base image not pinned: {froms[0]}"
    copies = [c for c in cmds if c.cmd in ("COPY", "ADD")]
    assert copies
    for c in copies:
        assert not any(f.startswith("--from") for f in c.flags)
        for src in c.value[:-1]:  # last value is the destination; build context = repository root
            assert (REPO / src).exists(), f"{name}: COPY source {src!r} does not exist in the build context"
    for pkg in ("caption_gen", "training", "eval", "flows", "templates", "pyproject.toml"):
        assert any(pkg in c.value[:-1] for c in copies), f"{name}: {pkg} not copied into the image"
    runs = " ".join(" ".join(c.value) for c in cmds if c.cmd == "RUN")
    wanted = {e for spec in re.findall(r"\.\[([\w,\-]+)\]", runs) for e in spec.split(",")}
    assert wanted and wanted <= _extras(), f"{name}: unknown extras {wanted - _extras()}"
    for req in re.findall(r'"([A-Za-z0-9_.\-]+)==([^"]+)"', runs):  # pinned pip requirements are exact versions
        assert re.fullmatch(r"[\w.]+", req[1]), req


@pytest.mark.parametrize(("name", "pool"), [("caption", "pedes-gpu"), ("train", "pedes-train")])
def test_dockerfile_starts_a_worker_on_a_deployed_pool(name, pool):
    cmds = _commands(DOCKERFILES[name])
    cmd = [c for c in cmds if c.cmd == "CMD"]
    assert len(cmd) == 1 and cmd[0].json, f"{name}: one exec-form CMD"
    argv = list(cmd[0].value)
    entry = [c for c in cmds if c.cmd == "ENTRYPOINT"]
    assert all(not e.value for e in entry), f"{name}: the base image's ENTRYPOINT must be cleared"
    assert argv[:3] == ["prefect", "worker", "start"] and argv[argv.index("--pool") + 1] == pool
    assert argv[argv.index("--limit") + 1] == "1"  # one flow run (one GPU job) per worker at a time
    pools = {d["work_pool"]["name"] for d in _prefect_yaml()["deployments"]}
    assert pool in pools
    workdir = [c.value[0] for c in cmds if c.cmd == "WORKDIR"][-1]
    steps = _prefect_yaml()["pull"]
    assert any(s.get("prefect.deployments.steps.set_working_directory", {}).get("directory") == workdir for s in steps)


def test_train_image_builds_the_mamba_kernels():
    runs = " ".join(" ".join(c.value) for c in _commands(DOCKERFILES["train"]) if c.cmd == "RUN")
    args = shlex.split(runs.replace("&&", " "))
    assert any(a.startswith("mamba-ssm==") for a in args) and any(a.startswith("causal-conv1d==") for a in args)
    assert "devel" in [c.value[0] for c in _commands(DOCKERFILES["train"]) if c.cmd == "FROM"][0]  # nvcc


def test_compose_services():
    compose = _compose()
    services = compose["services"]
    assert {"postgres", "prefect-server", "caption-worker", "trainer"} <= set(services)
    for name, svc in services.items():
        if "build" in svc:
            context = (REPO / "docker" / svc["build"]["context"]).resolve()
            assert context == REPO, f"{name}: build context must be the repository root"
            assert (context / svc["build"]["dockerfile"]).resolve() in {p.resolve() for p in DOCKERFILES.values()}
        else:
            image, _, tag = svc["image"].rpartition(":")
            assert image and tag and tag != "latest", f"{name}: image not pinned"
    for name in ("caption-worker", "trainer"):
        devices = services[name]["deploy"]["resources"]["reservations"]["devices"]
        assert devices[0]["capabilities"] == ["gpu"] and devices[0]["count"] == 1
        assert services[name]["environment"]["PREFECT_API_URL"] == "http://prefect-server:4200/api"
    db = services["prefect-server"]["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"]
    assert db.startswith("postgresql+asyncpg://") and "@postgres:" in db
    assert "pgdata" in compose["volumes"]
    prefect_version = _prefect_yaml()["prefect-version"]
    assert services["prefect-server"]["image"].startswith(f"prefecthq/prefect:{prefect_version}-")
    assert f'"prefect=={prefect_version}"' in " ".join(
        " ".join(c.value) for c in _commands(DOCKERFILES["caption"]) if c.cmd == "RUN")


def test_prefect_yaml_entrypoints_and_configs_exist():
    from flows.registry import FLOWS

    spec = _prefect_yaml()
    flow_objects = {id(e.flow()) for e in FLOWS.values()}
    seen = set()
    for d in spec["deployments"]:
        path, _, attr = d["entrypoint"].partition(":")
        assert (REPO / path).is_file(), d["entrypoint"]
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        assert id(getattr(module, attr)) in flow_objects
        seen.add(getattr(module, attr).name)
        config = REPO / d["parameters"]["config"]
        assert config.is_file(), f"{d['name']}: {config} missing"
        for sched in d.get("schedules", []):
            from prefect.client.schemas.schedules import CronSchedule

            CronSchedule(cron=sched["cron"], timezone=sched.get("timezone"))
    assert seen == set(FLOWS)

"""Compose grading without an engine: the resolved configuration, the grader's override file, and the
checks of 05 and 08 that read the configuration alone (grader.exercises._compose, compose, capstone)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from grader.errors import CheckFailed
from grader.exercises import capstone, compose
from grader.exercises._compose import ComposeConfig, check_localhost_only, grader_override

PROJECT = "genai-grade-abc"
LABELS = {"org.genai-course.managed": "true", "org.genai-course.session": "abc"}


def service(**extra):
    return {"image": "x", "networks": {"genai-net": None}, **extra}


def config(services=None, networks=None, volumes=None) -> ComposeConfig:
    return ComposeConfig({"services": services or {}, "networks": networks or {}, "volumes": volumes or {}},
                         ("compose.yaml",))


def ctx_for(cfg: ComposeConfig):
    return SimpleNamespace(stack_config=cfg, base_config=cfg, stack_is_up=lambda: False)


def test_limits_read_both_spellings():
    cfg = config({"a": service(deploy={"resources": {"limits": {"memory": "1073741824", "cpus": 2}}}),
                  "b": service(mem_limit="512m", cpus=0.5, pids_limit=100), "c": service()})
    assert cfg.limits("a") == {"memory": "1073741824", "cpus": 2, "pids": None}
    assert cfg.limits("b") == {"memory": "512m", "cpus": 0.5, "pids": 100}
    assert cfg.limits("c") == {"memory": None, "cpus": None, "pids": None}


def test_fixed_names_are_those_compose_does_not_prefix():
    cfg = config({"server": service(container_name="genai-server"), "db": service()},
                 networks={"genai-net": {"name": "genai-net"}, "other": {"name": f"{PROJECT}_other"},
                           "outside": {"name": "shared", "external": True}},
                 volumes={"db-data": {"name": "my-app-data"}, "cache": {"name": f"{PROJECT}_cache"}})
    names = cfg.fixed_names(PROJECT)
    assert names.containers == ("genai-server",)
    assert names.networks == ("genai-net",) and names.volumes == ("my-app-data",)


def test_override_labels_everything_names_built_images_and_limits_only_the_unlimited():
    cfg = config({"server": service(build={"context": "/w", "labels": {"org.genai-course.managed": "true"}},
                                    labels={"org.genai-course.managed": "true"},
                                    deploy={"resources": {"limits": {"memory": "1g", "cpus": 2, "pids": 9}}}),
                  "db": service()},
                 networks={"genai-net": {"labels": {"org.genai-course.managed": "true"}},
                           "ext": {"external": True}},
                 volumes={"db-data": {}})
    override = grader_override(cfg, LABELS, "genai-course/grading:abc")
    server, db = override["services"]["server"], override["services"]["db"]
    # compose merges labels as a list that must not repeat an item: only the missing ones are added
    assert server["labels"] == {"org.genai-course.session": "abc"}
    assert server["build"] == {"labels": {"org.genai-course.session": "abc"}}
    assert server["image"] == "genai-course/grading:abc-server" and "image" not in db
    assert "mem_limit" not in server and db["mem_limit"] == "1g" and db["pids_limit"] == 512
    assert server["privileged"] is False and db["privileged"] is False
    assert set(override["networks"]) == {"genai-net"} and override["volumes"]["db-data"]["labels"] == LABELS


@pytest.mark.parametrize("services, fragment", [
    ({"server": service(ports=[{"target": 8000, "published": "8000", "protocol": "tcp"}])},
     "server 8000/tcp on 0.0.0.0:8000"),
    ({"server": service(ports=[{"target": 8000, "host_ip": "127.0.0.1", "published": "1"}]),
      "db": service(network_mode="host")}, "db uses network_mode: host"),
    ({"server": service()}, "server publishes nothing for port 8000"),
])
def test_localhost_only_fails_on_outside_interfaces_and_on_nothing_published(services, fragment):
    with pytest.raises(CheckFailed, match=fragment.replace(".", r"\.")):
        check_localhost_only(ctx_for(config(services)))


def test_localhost_only_passes_on_loopback():
    cfg = config({"server": service(ports=[{"target": 8000, "host_ip": "127.0.0.1", "published": "8123"}]),
                  "db": service()})
    assert "127.0.0.1:8123" in check_localhost_only(ctx_for(cfg)).message


def test_depends_healthy_reads_the_condition():
    ok = config({"server": service(depends_on={"db": {"condition": "service_healthy"}}), "db": service()})
    assert compose.check_depends_healthy(ctx_for(ok)).message == "server waits for db to be healthy"
    started = config({"server": service(depends_on={"db": {"condition": "service_started"}}), "db": service()})
    with pytest.raises(CheckFailed, match="condition service_started; expected service_healthy"):
        compose.check_depends_healthy(ctx_for(started))


def test_user_network_wants_both_services_on_a_bridge():
    cfg = config({"server": service(), "db": service(networks={"default": None})},
                 networks={"genai-net": {"driver": "bridge"}, "default": {}})
    with pytest.raises(CheckFailed, match="db is on the default network"):
        compose.check_user_network(ctx_for(cfg))
    overlay = config({"server": service(), "db": service()}, networks={"genai-net": {"driver": "overlay"}})
    with pytest.raises(CheckFailed, match="uses the driver overlay; expected bridge"):
        compose.check_user_network(ctx_for(overlay))


def test_capstone_settings_checks():
    good = {"restart": "unless-stopped", "read_only": True,
            "deploy": {"resources": {"limits": {"memory": "536870912", "cpus": 1}}}}
    cfg = config({"server": service(**good), "db": service(**{**good, "restart": "no", "deploy": {}})})
    with pytest.raises(CheckFailed, match="db has restart policy no"):
        capstone.check_restart_policy(ctx_for(cfg))
    with pytest.raises(CheckFailed, match="db has no memory and no cpus limit"):
        capstone.check_resource_limits(ctx_for(cfg))
    assert "server: memory 512m, cpus 1" in capstone.check_resource_limits(
        ctx_for(config({"server": service(**good)}))).message
    assert "read-only" in capstone.check_read_only_rootfs(ctx_for(cfg)).message
    with pytest.raises(CheckFailed, match="root file system is writable"):
        capstone.check_read_only_rootfs(ctx_for(config({"server": service()})))

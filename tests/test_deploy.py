"""docker-compose.yml and the Dockerfile, checked without a Docker engine.

The compose file is validated against the Compose specification JSON schema
(tests/data/compose_spec.json, from the compose-spec project as shipped in
docker-compose 1.29.2, Apache-2.0), then for what the README promises:
pinned images, health checks, start order, the app on configs/server.toml and
its jobs on Redis, run by the worker service.
"""

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_file_follows_the_compose_specification():
    schema = json.loads((Path(__file__).parent / "data" / "compose_spec.json").read_text())
    # The file names draft 2019-09 with a trailing '#' jsonschema does not look up.
    jsonschema.Draft201909Validator(schema).validate(COMPOSE)


def test_every_image_is_pinned_and_every_service_has_a_health_check():
    for name, service in COMPOSE["services"].items():
        assert "healthcheck" in service, f"{name} has no health check"
        if "image" in service:
            tag = service["image"].rsplit(":", 1)
            assert len(tag) == 2 and tag[1] not in ("latest", ""), f"{name}: pin {service['image']}"


def test_start_order_waits_for_healthy_dependencies():
    services = COMPOSE["services"]
    assert services["milvus"]["depends_on"] == {
        "etcd": {"condition": "service_healthy"},
        "minio": {"condition": "service_healthy"},
    }
    for app in ("app", "app2", "worker"):
        assert services[app]["depends_on"] == {
            "milvus": {"condition": "service_healthy"},
            "minio": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
        }


@pytest.mark.parametrize("name", ["app", "app2"])
def test_each_app_process_runs_the_server_profile_on_milvus_and_minio(name):
    app = COMPOSE["services"][name]
    assert app["command"][-1] == "configs/server.toml" and (ROOT / "configs/server.toml").is_file()
    assert app["environment"]["VECTORFAIR_MILVUS__URI"] == "http://milvus:19530"
    assert app["environment"]["VECTORFAIR_MEDIA__ACCESS_KEY"]
    from vectorfair.settings import load_settings

    settings = load_settings(ROOT / "configs/server.toml")
    assert settings.milvus.uri.startswith("http://")
    assert settings.media.backend == "s3" and settings.media.endpoint_url == "http://minio:9000"


def test_app_processes_keep_only_their_media_cache_apart():
    volumes = [COMPOSE["services"][name]["volumes"][0].split(":")[0] for name in ("app", "app2")]
    assert len(set(volumes)) == 2, "each web process keeps its own data dir (the media read cache)"


def test_jobs_go_through_redis_to_a_worker_service():
    from vectorfair.settings import load_settings

    settings = load_settings(ROOT / "configs/server.toml")
    assert settings.queue.redis_url == "redis://redis:6379/0"
    assert settings.rate_limits.storage_uri == settings.queue.redis_url, "rate limits counted across processes"
    services = COMPOSE["services"]
    redis = services["redis"]
    assert redis["image"].startswith("redis:7.")
    assert "--appendonly" in redis["command"] and redis["command"][redis["command"].index("--appendonly") + 1] == "yes"
    assert redis["volumes"][0].split(":")[0] in COMPOSE["volumes"]
    assert "redis-cli" in redis["healthcheck"]["test"]
    worker = services["worker"]
    assert worker["command"] == ["vectorfair", "worker", "--config", "configs/server.toml"]
    assert "ports" not in worker, "workers serve no HTTP"
    for name in ("app", "app2", "worker"):
        assert services[name]["environment"]["VECTORFAIR_QUEUE__REDIS_URL"] == "redis://redis:6379/0"


def test_dockerfile_installs_cpu_torch_with_everything_that_needs_it():
    text = (ROOT / "Dockerfile").read_text()
    install = re.search(r"RUN pip install(.+?)(?:\n\S|\Z)", text, re.S).group(1)
    assert (
        "torch==2.13.0" in install and "/whl/cpu" in install and "-e '.[s3,queue]'" in install and "plugins/" in install
    )
    assert "requirements-nodeps.txt" in install and "|| exit 1" in install, (
        "a failing --no-deps install must fail the build"
    )
    assert "; true" not in install


@pytest.mark.parametrize("service", ["etcd", "minio", "milvus", "redis"])
def test_data_lives_in_named_volumes(service):
    volumes = COMPOSE["services"][service]["volumes"]
    assert all(v.split(":")[0] in COMPOSE["volumes"] for v in volumes)

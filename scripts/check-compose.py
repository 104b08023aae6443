#!/usr/bin/env python3
"""Checks the Docker Compose files without a Docker engine (there is none on the CI machine):
each parses, has the services its docs name, and every LECTERN_* variable it sets names a real
setting of config/default.toml (LECTERN_<SECTION>_<KEY>). The cluster file's nodes must differ in
node id, advertise URL and media ports."""
import sys
import tomllib

import yaml

with open("config/default.toml", "rb") as f:
    settings = tomllib.load(f)


def check_env(service, env):
    for var in env:
        if not var.startswith("LECTERN_"):
            continue
        rest = var[len("LECTERN_"):].lower()
        section, _, key = rest.partition("_")
        if key not in settings.get(section, {}):
            sys.exit(f"{service}: {var} names no setting ({section}.{key}) in config/default.toml")


single = yaml.safe_load(open("docker-compose.yml"))
assert {"lectern", "coturn"} <= set(single["services"]), single["services"].keys()
check_env("lectern", single["services"]["lectern"]["environment"])

cluster = yaml.safe_load(open("docker-compose.cluster.yml"))
services = cluster["services"]
expected = {"lectern-1", "lectern-2", "proxy", "postgres", "redis", "coturn"}
assert expected <= set(services), f"docker-compose.cluster.yml lacks {expected - set(services)}"
nodes = [services["lectern-1"]["environment"], services["lectern-2"]["environment"]]
for name, env in zip(["lectern-1", "lectern-2"], nodes):
    check_env(name, env)
    for var in ["LECTERN_STORE_URL", "LECTERN_CLUSTER_REDIS_URL", "LECTERN_AUTH_HS256_SECRET",
                "LECTERN_CLUSTER_NODE_ID", "LECTERN_CLUSTER_ADVERTISE_URL", "LECTERN_MEDIA_BIND"]:
        assert var in env, f"{name} does not set {var}"
    assert env["LECTERN_STORE_URL"].startswith("postgres://"), "a cluster needs PostgreSQL"
for var in ["LECTERN_CLUSTER_NODE_ID", "LECTERN_CLUSTER_ADVERTISE_URL", "LECTERN_MEDIA_BIND"]:
    assert nodes[0][var] != nodes[1][var], f"both nodes have the same {var}"
caddyfile = cluster["configs"]["caddyfile"]["content"]
assert "/readyz" in caddyfile and "lectern-1:8080" in caddyfile and "lectern-2:8080" in caddyfile
print("docker-compose.yml and docker-compose.cluster.yml: ok")

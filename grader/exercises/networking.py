"""04-networking: run.sh puts the service and a client on a user-defined bridge, and a batch
container on no network at all."""

from __future__ import annotations

import json

from grader.errors import CheckFailed
from grader.exercises._common import ScriptContext, published_ports_are_local
from grader.probes import exec_python
from grader.registry import Exercise, fail, passed, register

DEFAULT_BRIDGE_OPTION = "com.docker.network.bridge.default_bridge"

exercise = register(Exercise("04-networking"))
SERVICE, CLIENT, BATCH = exercise.fixed_names.containers   # the names course.yaml fixes, in its order
(NETWORK,) = exercise.fixed_names.networks

# Runs in genai-client: asks genai-service by name until it answers or time is up. A name that
# does not resolve for a few seconds never will (the embedded DNS knows a container once it
# exists), while a service that resolves may still be loading its model.
DNS_PROBE = r"""
import json, socket, time, urllib.request
start = time.monotonic()
deadline = start + %(timeout)f
last = "no attempt"
while True:
    try:
        address = socket.gethostbyname(%(host)r)
    except OSError as exc:
        address, last = None, "the name %(host)s does not resolve (%%s)" %% exc
        if time.monotonic() - start > 3:
            print(json.dumps({"status": None, "error": last}))
            break
    if address:
        try:
            with urllib.request.urlopen("http://%(host)s:8000/health", timeout=5) as answer:
                print(json.dumps({"status": answer.status, "address": address}))
                break
        except Exception as exc:
            last = "%(host)s resolves to %%s but GET /health failed: %%s" %% (address, exc)
    if time.monotonic() > deadline:
        print(json.dumps({"status": None, "error": last}))
        break
    time.sleep(0.5)
"""


class NetworkingContext(ScriptContext):
    def network(self):
        for net in self.client.networks.list(names=[NETWORK]):
            if net.name == NETWORK:
                net.reload()
                return net
        fail(f"there is no network named {NETWORK}{self.script_note()}")

    def networks_of(self, container) -> list[str]:
        return sorted((container.attrs.get("NetworkSettings") or {}).get("Networks") or {})


exercise.context(NetworkingContext)


@exercise.check("user_defined_bridge", points=2,
                summary="genai-net exists, driver bridge, and is not the default bridge",
                concept="Containers find each other by name only on a network you create: the default bridge has "
                        "no name resolution, a user-defined bridge has Docker's embedded DNS.",
                problem=("Your genai-net uses the {driver} driver.",
                         "Your genai-net is set up with {options}.",
                         "After your run.sh: {found}; the checks look for the exact names the exercise fixes."),
                fix=f"Create the network in run.sh: `docker network create --driver bridge {NETWORK}`. On a "
                    f"user-defined bridge, containers find each other by name; on the default bridge they "
                    f"cannot.",
                section="A user-defined bridge: names, and isolation")
def check_user_defined_bridge(ctx: NetworkingContext):
    net = ctx.network()
    driver = net.attrs.get("Driver")
    options = net.attrs.get("Options") or {}
    if driver != "bridge":
        fail(f"{NETWORK} uses the {driver} driver; expected bridge", driver=driver)
    if options.get(DEFAULT_BRIDGE_OPTION) == "true":
        fail(f"{NETWORK} is configured as a default bridge, which has no name resolution; expected a "
             f"user-defined bridge", options=options)
    subnets = [c.get("Subnet") for c in (net.attrs.get("IPAM") or {}).get("Config") or [] if c.get("Subnet")]
    return passed(f"{NETWORK} is a user-defined bridge network ({', '.join(subnets) or 'no subnet shown'})",
                  driver=driver, subnets=subnets)


@exercise.check("service_attached", points=2, summary="genai-service is on genai-net and not on the default bridge",
                concept="Where a container is attached decides who can reach it: a service attached to the "
                        "default bridge as well can be reached by every container started without a network.",
                problem=("Your genai-service is attached to {networks}: a container started without a network lands on the "
                         "default bridge, and connecting it to another one later keeps it there too.",
                         "After your run.sh: {found}."),
                fix=f"Start the service with `--network {NETWORK}` rather than connecting it afterwards: "
                    f"`docker run` without --network also attaches it to the default bridge, where every "
                    f"other container can reach it.",
                section="A user-defined bridge: names, and isolation", requires=("user_defined_bridge",))
def check_service_attached(ctx: NetworkingContext):
    service = ctx.container(SERVICE)
    networks = ctx.networks_of(service)
    mode = (service.attrs.get("HostConfig") or {}).get("NetworkMode")
    if NETWORK in networks and "bridge" not in networks:
        return passed(f"{SERVICE} is on {', '.join(networks)}", networks=networks)
    if NETWORK not in networks:
        fail(f"{SERVICE} is on {', '.join(networks) or 'no network'} (network mode {mode}); expected {NETWORK}",
             networks=networks)
    fail(f"{SERVICE} is on {', '.join(networks)}: also on the default bridge; expected only {NETWORK}",
         networks=networks)


@exercise.check("dns_by_name", points=2, summary="from genai-client, http://genai-service:8000/health answers 200",
                concept="On a user-defined bridge, Docker's embedded DNS resolves each container's name for the "
                        "other containers of that network, provided both are on it and running.",
                problem=("Your genai-client is on {client_networks}: from there genai-service cannot be reached by "
                         "name, because names resolve only between containers of one user-defined network.",
                         "Your genai-client is {status}: a container that exits at once cannot ask anything.",
                         "After your run.sh: {found}."),
                fix=f"Put both containers on {NETWORK} (`--network {NETWORK}`) and keep {CLIENT} running with a "
                    f"long-running command (e.g. `--entrypoint sleep \"$IMAGE\" infinity`); Docker's embedded "
                    f"DNS then resolves {SERVICE} by its name.",
                section="A user-defined bridge: names, and isolation", requires=("user_defined_bridge",))
def check_dns_by_name(ctx: NetworkingContext):
    client = ctx.container(CLIENT)
    ctx.container(SERVICE)
    if client.status != "running":
        fail(f"{CLIENT} is {client.status}, so nothing can be asked from it; expected it running "
             f"(give it a long-running command)", status=client.status)
    code = DNS_PROBE % {"host": SERVICE, "timeout": ctx.options.start_timeout}
    status, output = exec_python(client, code, timeout=int(ctx.options.start_timeout) + 15)
    try:
        result = json.loads(output.strip().splitlines()[-1])
    except (ValueError, IndexError):
        fail(f"the probe could not run in {CLIENT} (exit {status}): {output.strip()[-300:]}")
    networks = ctx.networks_of(client)
    if result.get("status") == 200:
        return passed(f"from {CLIENT}, http://{SERVICE}:8000/health answered 200 ({SERVICE} is "
                      f"{result['address']})", address=result["address"])
    fail(f"from {CLIENT} (on {', '.join(networks) or 'no network'}): {result.get('error')}; expected "
         f"http://{SERVICE}:8000/health to answer 200", client_networks=networks)


@exercise.check("localhost_only", points=2, summary="every published port is bound to 127.0.0.1",
                concept="A port published without an address is open on every interface of the machine; only the "
                        "service needs a published port at all, and on the loopback address.",
                problem=("Your containers publish {exposed}: reachable from other machines.",
                         "After your run.sh: {found}."),
                fix='Publish on the loopback address only: `-p 127.0.0.1:"$PORT":8000`; the client and the '
                    "batch container need no published port at all.",
                section="From the host: publish ports, on 127.0.0.1")
def check_localhost_only(ctx: NetworkingContext):
    attrs = {}
    for name in (SERVICE, CLIENT, BATCH):
        try:
            attrs[name] = ctx.container(name).attrs
        except CheckFailed:
            if name == SERVICE:
                raise
    return published_ports_are_local(attrs)


@exercise.check("isolated_batch", points=2, summary="genai-batch runs with network mode none",
                concept="A job that only reads and writes files needs no network; without one it can neither leak"
                        " data nor be reached.",
                problem=("Your genai-batch runs with network mode {network_mode} (on {networks}): it can reach "
                         "the network.",
                         "After your run.sh: {found}."),
                fix="Start the batch container with `--network none`: a job that reads files and writes "
                    "results needs no network, and without one it can neither leak data nor be reached.",
                section="No network at all")
def check_isolated_batch(ctx: NetworkingContext):
    batch = ctx.container(BATCH)
    mode = (batch.attrs.get("HostConfig") or {}).get("NetworkMode")
    networks = ctx.networks_of(batch)
    if mode == "none":
        return passed(f"{BATCH} runs with network mode none", network_mode=mode)
    fail(f"{BATCH} runs with network mode {mode} (on {', '.join(networks) or 'no network'}); expected none",
         network_mode=mode, networks=networks)

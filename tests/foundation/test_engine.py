"""Does the provisioned engine do what every lesson and exercise relies on?"""

from __future__ import annotations

import subprocess
import textwrap
import uuid

import pytest

from tests.helpers import docker_build, free_port, labels, wait_http

pytestmark = pytest.mark.docker


def test_engine_answers_with_compose_and_buildx(docker_client):
    """Does the engine answer, and are the Compose v2 and Buildx plugins there?"""
    assert docker_client.version()["ApiVersion"]
    for plugin in (["compose", "version"], ["buildx", "version"]):
        out = subprocess.run(["docker", *plugin], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr


def test_buildkit_image_from_python_slim_pip_installs_and_serves(docker_client, tmp_path):
    """Does a learner-style Dockerfile build with BuildKit, pip install and serve on 127.0.0.1?"""
    (tmp_path / "Dockerfile").write_text(textwrap.dedent("""\
        FROM python:3.11-slim
        RUN --mount=type=cache,target=/root/.cache/pip pip install h11==0.16.0
        COPY server.py /server.py
        EXPOSE 8000
        CMD ["python", "/server.py"]
        """))
    (tmp_path / "server.py").write_text(textwrap.dedent("""\
        import http.server, h11
        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = h11.__version__.encode()
                self.send_response(200); self.end_headers(); self.wfile.write(body)
        http.server.HTTPServer(("0.0.0.0", 8000), H).serve_forever()
        """))
    tag = f"genai-course/test-foundation:{uuid.uuid4().hex[:8]}"
    docker_build(tmp_path, tag, "Dockerfile", "--label", "org.genai-course.managed=true")
    port = free_port()
    container = docker_client.containers.run(tag, detach=True, labels=labels(),
                                             ports={"8000/tcp": ("127.0.0.1", port)})
    try:
        assert wait_http(f"http://127.0.0.1:{port}/", container=container) == "0.16.0"
    finally:
        container.remove(force=True)
        docker_client.images.remove(tag, force=True)


def test_user_defined_bridge_resolves_names(docker_client):
    """Do two containers on a user-defined bridge find each other by name?"""
    name = f"genai-test-{uuid.uuid4().hex[:8]}"
    net = docker_client.networks.create(name, driver="bridge", labels=labels())
    server = client = None
    try:
        server = docker_client.containers.run(
            "python:3.11-slim", ["python", "-m", "http.server", "8000"], detach=True,
            name=f"{name}-server", network=name, labels=labels())
        client = docker_client.containers.run("python:3.11-slim", ["sleep", "300"], detach=True,
                                              network=name, labels=labels())
        probe = ("import urllib.request,time\n"
                 "for _ in range(100):\n"
                 "    try: print(urllib.request.urlopen('http://%s:8000/').status); break\n"
                 "    except OSError: time.sleep(0.1)\n") % f"{name}-server"
        code, out = client.exec_run(["python", "-c", probe])
        assert code == 0 and out.decode().strip() == "200", out.decode()
    finally:
        for c in (client, server):
            if c is not None:
                c.remove(force=True)
        net.remove()

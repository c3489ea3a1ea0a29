"""A fake docker-py client: the few low-level calls the widgets make, from canned data."""

from __future__ import annotations


class FakeAPI:
    """The few docker-py low-level calls the widgets make, answered from canned data."""

    def images(self, filters=None):
        return [{"Id": "sha256:" + "a" * 64, "RepoTags": ["demo:1.0", "demo:latest"], "Size": 180_000_000},
                {"Id": "sha256:" + "b" * 64, "RepoTags": ["<none>:<none>"], "Size": 5_000}]

    def containers(self, all=False, filters=None):
        nets = {"demo-net": {"IPAddress": "172.30.0.2"}}
        return [
            {"Names": ["/api"], "Image": "demo:1.0", "State": "running", "Status": "Up 3 seconds",
             "Ports": [{"IP": "127.0.0.1", "PrivatePort": 8000, "PublicPort": 49000, "Type": "tcp"}],
             "NetworkSettings": {"Networks": nets}},
            {"Names": ["/client"], "Image": "demo:1.0", "State": "running", "Status": "Up 2 seconds",
             "Ports": [], "NetworkSettings": {"Networks": {"demo-net": {"IPAddress": "172.30.0.3"}}}},
            {"Names": ["/batch"], "Image": "demo:1.0", "State": "exited", "Status": "Exited (0)",
             "Ports": [], "NetworkSettings": {"Networks": {"none": {"IPAddress": ""}}}},
        ]

    def networks(self, filters=None):
        if filters:  # only demo-net carries the lesson's label
            return [n for n in self.networks() if n["Name"] == "demo-net"]
        return [{"Name": "bridge", "Driver": "bridge", "IPAM": {"Config": [{"Subnet": "172.17.0.0/16"}]}},
                {"Name": "demo-net", "Driver": "bridge", "IPAM": {"Config": [{"Subnet": "172.30.0.0/16"}]}},
                {"Name": "none", "Driver": "null", "IPAM": {"Config": []}}]

    def volumes(self, filters=None):
        return {"Volumes": [{"Name": "demo-data", "Driver": "local", "Labels": {"org.genai-course.lesson": "03"}}]}

    def history(self, image):  # newest first, as the engine answers
        return [
            {"CreatedBy": 'CMD ["python" "app.py"]', "Size": 0, "Created": 3},
            {"CreatedBy": "COPY app.py . # buildkit", "Size": 900, "Created": 3},
            {"CreatedBy": "RUN |1 APP_VERSION=1.0 /bin/sh -c pip install   numpy # buildkit", "Size": 40_000_000,
             "Created": 2},
            {"CreatedBy": "/bin/sh -c #(nop)  WORKDIR /app", "Size": 0, "Created": 1},
            {"CreatedBy": "", "Size": 100_000_000, "Created": 0},
        ]


class FakeClient:
    api = FakeAPI()

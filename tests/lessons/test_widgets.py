"""Do the lesson widgets compute the right data, and print it when no front end can draw them?"""

from __future__ import annotations

import pytest

from course import widgets as w
from tests.lessons.fakes import FakeClient


@pytest.fixture(autouse=True)
def plain(monkeypatch):
    monkeypatch.setenv("COURSE_WIDGETS", "plain")


def test_headless_detection(monkeypatch):
    """Is a plain Python process headless, and can COURSE_WIDGETS force either way?"""
    monkeypatch.delenv("COURSE_WIDGETS")
    assert w.headless()  # pytest is no Jupyter kernel
    monkeypatch.setenv("COURSE_WIDGETS", "on")
    assert not w.headless()
    monkeypatch.setenv("COURSE_WIDGETS", "plain")
    assert w.headless()


def test_snapshot_gathers_images_containers_networks_volumes():
    """Does the dashboard's snapshot hold each resource with sizes, ports and network members?"""
    snap = w.engine_snapshot(FakeClient())
    assert [i.tags for i in snap.images] == [("demo:1.0", "demo:latest"), ()]  # untagged last
    api = next(c for c in snap.containers if c.name == "api")
    assert api.ports == "127.0.0.1:49000->8000/tcp" and api.networks == {"demo-net": "172.30.0.2"}
    net = next(n for n in snap.networks if n.name == "demo-net")
    assert net.containers == ("api", "client") and net.dns_by_name
    assert not next(n for n in snap.networks if n.name == "bridge").dns_by_name
    text = w.snapshot_text(snap)
    assert "demo:1.0, demo:latest" in text and "180.0 MB" in text and "demo-data" in text


def test_snapshot_with_a_label_keeps_only_networks_in_use():
    """With a label filter, are unused default networks left out of the picture?"""
    snap = w.engine_snapshot(FakeClient(), label="org.genai-course.lesson=05")
    assert {n.name for n in snap.networks} == {"demo-net", "none"}


def test_network_map_pairs_containers_sharing_a_network():
    """Does the map say which containers can talk, and never pair through host/none?"""
    snap = w.engine_snapshot(FakeClient())
    assert w.shared_networks(snap) == {("api", "client"): ["demo-net"]}
    text = w.network_map_text(snap)
    assert "demo-net [bridge, 172.30.0.0/16] — containers find each other by name" in text
    assert "api <-> client  via demo-net" in text and "none [null] — no network at all" in text
    assert "batch" in w.network_map_html(snap)


@pytest.mark.parametrize("created_by, instruction", [
    ("RUN |1 APP_VERSION=1.0 /bin/sh -c pip install   numpy # buildkit", "RUN pip install numpy"),
    ("RUN /bin/sh -c apt-get update # buildkit", "RUN apt-get update"),
    ("/bin/sh -c #(nop)  WORKDIR /app", "WORKDIR /app"),
    ("/bin/sh -c pip install x", "RUN pip install x"),
    ("COPY app.py . # buildkit", "COPY app.py ."),
    ("", "(imported filesystem)"),
])
def test_history_entries_read_like_dockerfile_instructions(created_by, instruction):
    """Is each history entry shown as the instruction a learner wrote?"""
    assert w.clean_instruction(created_by) == instruction


def test_layer_explorer_lists_layers_base_first_with_bars(capsys):
    """Are layers listed oldest first, empty ones hidden from the text chart, bars scaled?"""
    layers = w.image_layers("demo:1.0", FakeClient())
    assert [x.instruction for x in layers][0] == "(imported filesystem)"
    assert layers[-1].instruction == 'CMD ["python" "app.py"]' and layers[-1].empty
    w.LayerExplorer("demo:1.0", client=FakeClient()).show()
    out = capsys.readouterr().out
    assert "5 history entries, 3 with content, 140.0 MB" in out
    assert "WORKDIR" not in out  # metadata-only entries add no bytes
    biggest, pip = (line for line in out.splitlines()[1:3])
    assert biggest.count("█") == 30 and 10 <= pip.count("█") <= 13


def test_build_result_reads_buildkit_plain_progress():
    """Does a build's log tell which steps came from the cache and which ran?"""
    log = """#1 [internal] load build definition from Dockerfile
#1 DONE 0.0s
#2 [internal] load metadata for docker.io/library/python:3.11-slim
#2 DONE 0.0s
#4 [1/3] FROM docker.io/library/python:3.11-slim
#4 DONE 0.0s
#5 [2/3] RUN pip install numpy
#5 CACHED
#6 [3/3] COPY app.py .
#6 DONE 0.1s
#7 exporting to image
#7 DONE 0.1s""".splitlines()
    result = w.BuildResult("demo:1.0", ("docker", "build"), 0, 1.5, tuple(log))
    assert result.cached_steps == ["[2/3] RUN pip install numpy"]
    assert result.rebuilt_steps == ["[1/3] FROM docker.io/library/python:3.11-slim", "[3/3] COPY app.py ."]
    assert result.summary() == "built demo:1.0 in 1.5 s: 3 steps, 1 from cache"


def test_build_command_carries_labels_args_and_target(tmp_path):
    """Is the docker build command assembled with every option, context last?"""
    cmd = w.build_command(tmp_path, "t:1", dockerfile=tmp_path / "D", labels={"a": "1"},
                          build_args={"V": "2"}, target="prod", extra=["--no-cache"])
    assert cmd == ["docker", "build", "--progress=plain", "-t", "t:1", "-f", str(tmp_path / "D"),
                   "--label", "a=1", "--build-arg", "V=2", "--target", "prod", "--no-cache", str(tmp_path)]


def test_build_live_shows_the_build_as_typed_and_builds_with_the_labels(tmp_path, monkeypatch, capsys):
    """Does build_live echo `docker build` without the lesson's --label flags, yet build with them?"""
    ran = []

    class FakeBuild:
        def __init__(self, cmd, **kwargs):
            ran.append(cmd)
            self.stdout = iter(["#1 [internal] load build definition\n", "#5 [1/1] FROM python:3.11-slim\n",
                                "#5 DONE 0.1s\n"])

        def wait(self):
            return 0

    monkeypatch.setattr("course.widgets.build.subprocess.Popen", FakeBuild)
    result = w.build_live(tmp_path, "t:1", labels={"a": "1"}, target="dev")
    assert result.ok and ran[0] == w.build_command(tmp_path, "t:1", labels={"a": "1"}, target="dev")
    echoed = capsys.readouterr().out.splitlines()[0]
    assert echoed == f"$ docker build --progress=plain -t t:1 --target dev {tmp_path}"


@pytest.mark.parametrize("octal, symbolic", [("755", "rwxr-xr-x"), ("644", "rw-r--r--"), ("600", "rw-------"),
                                             ("750", "rwxr-x---"), ("000", "---------"), ("777", "rwxrwxrwx"),
                                             ("0640", "rw-r-----"), (0o711, "rwx--x--x")])
def test_octal_and_symbolic_modes_convert_both_ways(octal, symbolic):
    """Do octal modes and rwx strings convert into each other, including `ls -l`'s type letter?"""
    assert w.octal_to_symbolic(octal) == symbolic
    assert w.symbolic_to_octal(symbolic) == w.permissions._octal_digits(octal)
    assert w.symbolic_to_octal("d" + symbolic) == w.permissions._octal_digits(octal)


@pytest.mark.parametrize("bad", ["789", "75", "0o1000", "abc", 0o1000])
def test_bad_octal_modes_are_refused_clearly(bad):
    """Is a malformed octal mode a ValueError that shows what a mode looks like?"""
    with pytest.raises(ValueError, match="like 755"):
        w.octal_to_symbolic(bad)


@pytest.mark.parametrize("bad", ["rwxr-xr-", "rwxr-xr-y", "xwrxwrxwr"])
def test_bad_symbolic_modes_are_refused_clearly(bad):
    """Is a malformed rwx string a ValueError that shows what one looks like?"""
    with pytest.raises(ValueError, match="like rwxr-x---"):
        w.symbolic_to_octal(bad)


def test_permission_calculator_prints_modes_when_headless(capsys):
    """Does the calculator print each mode, its chmod forms and who may do what?"""
    w.permission_calculator("750", examples=("640",))
    out = capsys.readouterr().out
    assert "750 = rwxr-x---   chmod 750 FILE  ==  chmod u=rwx,g=rx,o= FILE" in out
    assert "others ---  nothing" in out and "640 = rw-r-----" in out


@pytest.mark.parametrize("needs, choice, ruled_out", [
    (w.Needs(), "containers", set()),
    (w.Needs(stage="prototype"), "managed", set()),
    (w.Needs(traffic="events", longest_request_s=30), "serverless", set()),
    (w.Needs(traffic="events", longest_request_s=1200), "containers", {"serverless"}),
    (w.Needs(traffic="events", model_gb=14), "containers", {"serverless"}),
    (w.Needs(gpu=True, ops="none"), "ai_platform", {"serverless", "managed"}),
    (w.Needs(gpu=True, ops="team"), "vm", {"serverless", "managed"}),
    (w.Needs(ops="none"), "managed", set()),
])
def test_deployment_rules_of_thumb(needs, choice, ruled_out):
    """Does the decision helper follow the chapter's rules, ruling out serverless past its timeout?"""
    rec = w.recommend(needs)
    assert rec.choice == choice and set(rec.ruled_out) == ruled_out and rec.reasons


def test_serverless_is_ruled_out_by_the_timeout_with_the_reason():
    """Does the helper say *why* serverless is out for a 20-minute job?"""
    rec = w.recommend(w.Needs(traffic="events", longest_request_s=1200))
    assert "10 min" in rec.ruled_out["serverless"] and "Ruled out" in rec.text()


def test_needs_refuse_unknown_answers():
    """Is an answer outside the helper's choices refused with the allowed values?"""
    with pytest.raises(ValueError, match="steady, spiky, events"):
        w.Needs(traffic="bursty")


def test_questions_give_feedback_and_print_answers_headless(capsys):
    """Does a question grade a choice, and does the headless quiz print answers with reasons?"""
    q = w.Question("2 + 2?", ("3", "4"), 1, "Arithmetic.")
    assert q.feedback(1) == (True, "Right. Arithmetic.")
    assert q.feedback(0)[0] is False and "“4”" in q.feedback(0)[1]
    assert q.feedback(None) == (False, "Pick an answer first.")
    w.self_check([q], title="Quiz")
    assert "answer: (b) — Arithmetic." in capsys.readouterr().out
    with pytest.raises(ValueError):
        w.Question("?", ("a",), 3, "")


def test_human_size_uses_docker_units():
    """Are sizes shown in decimal units like `docker images`?"""
    assert [w.human_size(n) for n in (999, 1_500, 172_700_000, 2_500_000_000)] == \
        ["999 B", "1.5 kB", "172.7 MB", "2.5 GB"]

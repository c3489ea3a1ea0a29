"""Reading what listens inside a container, and what it means for a published port."""

from __future__ import annotations

from grader.probes import describe_listener_problem, parse_proc_net_tcp

PROC_NET_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1001        0 1 1
   1: 00000000:1388 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1001        0 2 1
   2: 0100007F:1F40 0100007F:D2A4 01 00000000:00000000 00:00000000 00000000  1001        0 3 1
  sl  local_address                         remote_address                        st
   0: 00000000000000000000000001000000:1F41 00000000000000000000000000000000:0000 0A 0 0
"""


def test_listening_sockets_are_decoded():
    """Are LISTEN entries of tcp and tcp6 decoded, and established ones ignored?"""
    assert parse_proc_net_tcp(PROC_NET_TCP) == {("127.0.0.1", 8000), ("0.0.0.0", 5000), ("::1", 8001)}


def test_a_server_on_loopback_only_is_named():
    verdict = describe_listener_problem({("127.0.0.1", 8000)}, 8000)
    assert "listens on 127.0.0.1:8000" in verdict and "0.0.0.0" in verdict


def test_a_server_on_another_port_is_named():
    assert "nothing listens on port 8000" in describe_listener_problem({("0.0.0.0", 5000)}, 8000)


def test_no_verdict_while_unsure():
    """Is there no early verdict when the server listens correctly, or nothing listens yet?"""
    assert describe_listener_problem({("0.0.0.0", 8000)}, 8000) is None
    assert describe_listener_problem({("::", 8000)}, 8000) is None
    assert describe_listener_problem(set(), 8000) is None
    assert describe_listener_problem(None, 8000) is None

"""The bottom layer: what every part of the course needs of Docker and of processes.

Labels and reaping by label, bounded processes (the whole process group is
stopped), free ports, loopback tests, HTTP requests that never go through a
proxy for loopback addresses, readiness waits with diagnostics, BuildKit
progress parsing, reading files out of containers, image-history cleanup and
the default container limits. It imports nothing of the course's own packages:
the manifest, the grader, the lessons and the instructor workflow build on it.
"""

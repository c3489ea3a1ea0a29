"""Interactive helpers for the lesson notebooks (ipywidgets).

Each helper gathers its data first (plain dataclasses, testable without a
notebook) and only then renders it: as a widget where a Jupyter front end can
show one, as printed text where none can (nbclient, nbconvert, nbgrader, a
plain Python shell). ``COURSE_WIDGETS=plain`` or ``=on`` forces either way.

- ``dashboard()``: images with sizes, containers, networks, volumes; refreshable
- ``layer_explorer(image)``: one bar per layer with the instruction that made it
- ``network_map()``: which containers share which networks
- ``build_live(context, tag)``: a ``docker build`` streamed into the notebook
- ``deployment_helper()`` and ``self_check(questions)``: lesson 01's decision helper and quizzes
- ``permission_calculator()``: octal <-> rwx, lesson 04

One module each; this package re-exports their names, which the notebooks import.
"""

from __future__ import annotations

from course.widgets._render import (headless, _display, human_size, table_text)
from course.widgets.dashboard import (ImageRow, ContainerRow, NetworkRow, VolumeRow, EngineSnapshot,
    engine_snapshot, snapshot_text, snapshot_html, Dashboard, dashboard)
from course.widgets.layers import (clean_instruction, Layer, image_layers, layers_text, layers_html,
    LayerExplorer, layer_explorer)
from course.widgets.network_map import (network_map_text, shared_networks, network_map_html, NetworkMap,
    network_map)
from course.widgets.build import (BuildFailed, BuildResult, build_command, build_live)
from course.widgets.quiz import (Question, quiz_text, self_check, quiz_widget)
from course.widgets.deployment import (SERVERLESS_TIMEOUT_S, OPTIONS, Needs, Recommendation, recommend,
    deployment_helper, deployment_widget)
from course.widgets.permissions import (octal_to_symbolic, symbolic_to_octal, explain_mode, chmod_symbolic,
    permission_text, permission_calculator, permission_widget)

__all__ = [
    "headless", "_display", "human_size", "table_text", "ImageRow", "ContainerRow", "NetworkRow", "VolumeRow",
    "EngineSnapshot", "engine_snapshot", "snapshot_text", "snapshot_html", "Dashboard", "dashboard",
    "clean_instruction", "Layer", "image_layers", "layers_text", "layers_html", "LayerExplorer",
    "layer_explorer", "network_map_text", "shared_networks", "network_map_html", "NetworkMap", "network_map",
    "BuildFailed", "BuildResult", "build_command", "build_live", "Question", "quiz_text", "self_check",
    "quiz_widget", "SERVERLESS_TIMEOUT_S", "OPTIONS", "Needs", "Recommendation", "recommend",
    "deployment_helper", "deployment_widget", "octal_to_symbolic", "symbolic_to_octal", "explain_mode",
    "chmod_symbolic", "permission_text", "permission_calculator", "permission_widget",
]

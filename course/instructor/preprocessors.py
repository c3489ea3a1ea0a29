"""nbgrader preprocessors of the course (configured in nbgrader_config.py).

- BoxExecute (autograde): executes the notebook in a grading box instead of on
  the instructor's machine, and brings back only the cells' outputs.
- TrustedCrossCheck (autograde, after SaveAutoGrades): compares every autograded
  cell with the grader's verdict on the submitted files, obtained in a fresh box
  where no notebook code ran, and lowers what the notebook over-claims.
- HideHiddenTests (generate_feedback): hidden test code never reaches feedback.
"""

from __future__ import annotations

import copy
import json
import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import nbformat
from nbformat.notebooknode import NotebookNode
from traitlets import Bool, Unicode

from nbgrader import utils
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.preprocessors import ClearHiddenTests, Execute, NbGraderPreprocessor

from course.instructor import jobs, sandbox, settings
from course.instructor.errors import BoxTimeout, UntrustedOutput

CHECK_PREFIX = "check_"  # an autograded cell's grade_id is check_<check id>
TRUSTED_REPORT = "trusted-grade.json"
_OUTPUT_TYPES = {"stream", "display_data", "execute_result", "error"}


# -- autograde --------------------------------------------------------------------------------
# The trusted grading started by BoxExecute travels to TrustedCrossCheck in the notebook's own
# `resources` (one dict per notebook through the autograde chain), under this key.
TRUSTED_KEY = "course_trusted_grade"
JOB_KEY = "course_grading_job"  # the grading job whose stored result was used (make autograde)
_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="trusted-grade")  # gradings at once


def _limits(cell_timeout: int | None) -> settings.BoxLimits:
    """The box limits, with Execute.timeout (per cell) where the configuration sets one."""
    if cell_timeout and cell_timeout > 0:
        return settings.BoxLimits.from_env(cell_timeout=float(cell_timeout))
    return settings.BoxLimits.from_env()


def runnable_copy(nb: NotebookNode) -> NotebookNode:
    """The notebook as the box runs it: a copy (no cell of it writes a deliverable; the submitted
    files are what counts, as "Check my work" graded them)."""
    return copy.deepcopy(nb)


def merge_outputs(nb: NotebookNode, sent: NotebookNode, executed: NotebookNode) -> NotebookNode:
    """Copy the executed cells' outputs into `nb`; sources and metadata stay the instructor's."""
    if len(executed.cells) != len(sent.cells):
        raise UntrustedOutput(f"the box returned {len(executed.cells)} cells, {len(sent.cells)} were sent")
    for original, asked, got in zip(nb.cells, sent.cells, executed.cells):
        if got.get("cell_type") != asked.cell_type or got.get("source") != asked.source:
            raise UntrustedOutput("a cell came back changed from the box")
        if original.cell_type != "code":
            continue
        outputs = got.get("outputs", [])
        if not isinstance(outputs, list) or any(not isinstance(o, dict) or o.get("output_type")
                                                not in _OUTPUT_TYPES for o in outputs):
            raise UntrustedOutput("a cell's outputs are not notebook outputs")
        original.outputs = [nbformat.from_dict(o) for o in outputs]
        original.execution_count = got.get("execution_count")
        if utils.is_grade(original):
            refuse_unverified(original)
    nbformat.validate(nb)
    return nb


def _zero(cell: NotebookNode, index: int | None, ename: str, why: str) -> None:
    error = nbformat.v4.new_output("error", ename=ename, evalue=why, traceback=[f"{ename}: {why}"])
    if index is None:
        cell.outputs.append(error)
    else:
        cell.outputs[index] = error


def refuse_unverified(cell: NotebookNode) -> None:
    """A graded cell earns only the points its result states.

    nbgrader gives FULL credit to a code cell with no error and no result, so a grading that
    never finished (a dead kernel, a cell stopped by its time limit, a box out of processes)
    would count as passed: a check cell without a numeric result earns nothing and says why.
    A cell returning more than its points would make SaveAutoGrades raise, failing the whole
    submission: it earns nothing instead."""
    max_points = float(cell.metadata["nbgrader"]["points"])
    for i, output in enumerate(cell.outputs):
        kind = output.get("output_type")
        if kind == "error" or (kind == "stream" and output.get("name") == "stderr"):
            return  # nbgrader already gives 0
        if kind != "execute_result":
            continue
        claimed = str(output.get("data", {}).get("text/plain", ""))[:40]
        try:
            utils.get_partial_grade(output, max_points)
        except ValueError:
            _zero(cell, i, "OverClaim", f"the cell returned {claimed}, more than its {max_points:g} points")
            return
        if _is_check(cell):
            try:
                float(claimed)
            except ValueError:
                _zero(cell, i, "Unverified", f"the cell returned {claimed!r}, not the points its check earned")
        return  # nbgrader reads the first execute_result only
    if _is_check(cell):
        _zero(cell, None, "Unverified", "the cell returned no points: its grading did not finish "
                                        "(the kernel died, ran out of processes or time), so nothing was verified")


def _is_check(cell: NotebookNode) -> bool:
    return str(cell.metadata.get("nbgrader", {}).get("grade_id", "")).startswith(CHECK_PREFIX)


def mark_not_executed(nb: NotebookNode, reason: str) -> None:
    """A notebook the box could not run earns nothing: every graded cell gets an error."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell.outputs = []
        if utils.is_grade(cell):
            cell.outputs.append(nbformat.v4.new_output(
                "error", ename="NotExecuted", evalue=reason,
                traceback=[f"NotExecuted: the notebook could not be executed in its grading box: {reason}"]))


class BoxExecute(Execute):
    """nbgrader's Execute, delegated to a grading box. `timeout` is per cell, as in Execute."""

    cross_check = Bool(True, help="Start the trusted grading of the same files, in its own box, "
                                  "while the notebook runs (read by TrustedCrossCheck)").tag(config=True)

    def preprocess(self, nb, resources):
        meta = resources["nbgrader"]
        student, exercise = meta["student"], meta["assignment"]
        folder = Path(resources["metadata"]["path"])
        if os.environ.get(jobs.PHASE_ENV):
            return self._from_job(nb, resources, student, exercise, folder)
        limits = _limits(self.timeout)
        needs = sandbox.exercise_needs(exercise, announce=self.log.info)
        if self.cross_check:
            resources[TRUSTED_KEY] = _POOL.submit(
                sandbox.trusted_grade, sandbox.Submission(student, exercise, folder),
                limits=limits, needs=needs, announce=self.log.info)
        runnable = runnable_copy(nb)
        self.log.info("Executing %s for %s in a grading box", exercise, student)
        try:
            executed = sandbox.execute_notebook(nbformat.writes(runnable),
                                                sandbox.Submission(student, exercise, folder),
                                                limits=limits, needs=needs, announce=self.log.info)
            merge_outputs(nb, runnable, nbformat.reads(executed.notebook_json, as_version=4))
            if executed.problem:
                self.log.warning("%s/%s: %s", student, exercise, executed.problem)
            if executed.skipped:
                self.log.warning("%s/%s: left out of the box (links or special files): %s",
                                 student, exercise, ", ".join(executed.skipped))
            self.log.info("Executed %s for %s in %.0f s", exercise, student, executed.duration_s)
        except (BoxTimeout, UntrustedOutput, nbformat.ValidationError, json.JSONDecodeError) as exc:
            # The submission's doing (it ran too long, or sent back something else than
            # outputs): it earns nothing. Anything else is the machine's fault and stops
            # the autograde of this submission loudly instead of giving it 0.
            self.log.error("%s/%s: the notebook could not be executed: %s", student, exercise, exc)
            mark_not_executed(nb, str(exc).splitlines()[0])
        return nb, resources


    def _from_job(self, nb, resources, student: str, exercise: str, folder: Path):
        """`make autograde`: the plan pass writes this submission's job and stops it; the grade
        pass merges the job's stored result (no box starts here, no submission code runs)."""
        runnable = runnable_copy(nb)
        notebook_json = nbformat.writes(runnable)
        if os.environ[jobs.PHASE_ENV] == "plan":
            key = jobs.plan(notebook_json, folder, student, exercise)
            raise jobs.Planned(f"{student}/{exercise}: planned as grading job {key}")
        key = jobs.planned_key(notebook_json, folder, student, exercise)
        result = jobs.load_result(key)
        if result is None:
            raise jobs.JobMissing(f"{student}/{exercise}: grading job {key} has no result: the grading machinery "
                                  "failed (not the learner's fault); run `make autograde` again")
        resources[JOB_KEY] = {"key": key, "grader_version": result.get("grader_version"),
                              "phases": result.get("phases")}
        done: Future[sandbox.TrustedGrade] = Future()
        done.set_result(jobs.trusted_from(result))
        resources[TRUSTED_KEY] = done
        executed = result["executed"]
        try:
            if "error" in executed:
                raise UntrustedOutput(executed["error"])
            merge_outputs(nb, runnable, nbformat.reads(executed["notebook_json"], as_version=4))
            if executed.get("problem"):
                self.log.warning("%s/%s: %s", student, exercise, executed["problem"])
            if executed.get("skipped"):
                self.log.warning("%s/%s: left out of the box (links or special files): %s",
                                 student, exercise, ", ".join(executed["skipped"]))
        except (UntrustedOutput, nbformat.ValidationError, json.JSONDecodeError) as exc:
            self.log.error("%s/%s: the notebook could not be executed: %s", student, exercise, exc)
            mark_not_executed(nb, str(exc).splitlines()[0])
        return nb, resources


def _note(cell: NotebookNode, text: str) -> None:
    cell.outputs.append(nbformat.v4.new_output("stream", name="stdout", text=text + "\n"))


class TrustedCrossCheck(NbGraderPreprocessor):
    """Lower every autograded cell to what the grader gives the submitted files.

    Notebook code runs in the same kernel as the autograded cells and can make
    them print anything; the trusted grading runs where no notebook code ran.
    Each cell counts min(notebook, trusted); a grading that cannot finish counts
    0 and asks for a review. The verdicts are kept in trusted-grade.json."""

    enabled = Bool(True, help="Cross-check autograded cells against the trusted grading").tag(config=True)
    report_name = Unicode(TRUSTED_REPORT, help="File in the autograded folder with the verdicts").tag(config=True)

    def preprocess(self, nb, resources):
        if not self.enabled:
            return nb, resources
        meta = resources["nbgrader"]
        student, exercise, notebook_id = meta["student"], meta["assignment"], meta["notebook"]
        folder = Path(resources["metadata"]["path"])
        future: Future[sandbox.TrustedGrade] | None = resources.pop(TRUSTED_KEY, None)
        if future is not None:
            trusted = future.result()
        else:
            trusted = sandbox.trusted_grade(sandbox.Submission(student, exercise, folder),
                                            announce=self.log.info)
        verdicts = []
        with Gradebook(meta["db_url"]) as gb:
            for cell in nb.cells:
                if not utils.is_grade(cell):
                    continue
                grade_id = cell.metadata.nbgrader["grade_id"]
                try:
                    grade = gb.find_grade(grade_id, notebook_id, exercise, student)
                except MissingEntry:
                    continue
                verdicts.append(self._reconcile(cell, grade, grade_id, trusted))
            gb.db.commit()
        lowered = [v for v in verdicts if v["action"] != "kept"]
        (folder / self.report_name).write_text(json.dumps({
            "student": student, "exercise": exercise, "trusted_error": trusted.error,
            "trusted_duration_s": round(trusted.duration_s, 1), "trusted_notes": list(trusted.notes),
            "job": resources.pop(JOB_KEY, None),
            "report": trusted.report, "cells": verdicts}, indent=2))
        for v in lowered:
            self.log.warning("%s/%s %s: notebook %s, trusted %s -> %s (%s)", student, exercise, v["grade_id"],
                             v["notebook_score"], v["trusted_points"], v["score"], v["action"])
        return nb, resources

    @staticmethod
    def _reconcile(cell, grade, grade_id: str, trusted: sandbox.TrustedGrade) -> dict:
        claimed = grade.auto_score
        verdict = {"grade_id": grade_id, "notebook_score": claimed, "trusted_points": None,
                   "score": claimed, "action": "kept"}
        if not grade_id.startswith(CHECK_PREFIX):
            verdict["action"] = "not a grader check"
            return verdict
        allowed = trusted.points(grade_id[len(CHECK_PREFIX):])
        verdict["trusted_points"] = allowed
        if allowed is None:
            why = trusted.error or f"the trusted report has no check {grade_id[len(CHECK_PREFIX):]}"
            grade.auto_score = 0.0
            grade.needs_manual_grade = True
            verdict.update(score=0.0, action="trusted grading failed: review")
            _note(cell, f"[trusted re-grading] could not verify this cell ({why}); "
                        f"it counts 0 until an instructor reviews it.")
        elif claimed is None or claimed > allowed + 1e-6:
            grade.auto_score = allowed
            verdict.update(score=allowed, action="lowered")
            _note(cell, f"[trusted re-grading] the grader gives your files {allowed:g} point(s) here, "
                        f"the notebook claimed {claimed if claimed is not None else 'none'}: "
                        f"{allowed:g} count(s).")
        elif claimed < allowed - 1e-6:
            verdict["action"] = "notebook gave less: review"
        return verdict


# -- feedback ---------------------------------------------------------------------------------
class HideHiddenTests(ClearHiddenTests):
    """Remove hidden test regions before feedback is rendered, and reduce the
    tracebacks of those cells to their last line (a traceback quotes the code)."""

    def preprocess_cell(self, cell, resources, cell_index):
        removed = self._remove_hidden_test_region(cell)
        if removed and cell.cell_type == "code":
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    output.traceback = [f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"]
        return cell, resources

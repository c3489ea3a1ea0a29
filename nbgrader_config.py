# nbgrader configuration of the course, for instructors (docs/instructor.md).
# The values come from course/instructor/settings.py and course.yaml; this file
# only hands them to nbgrader. `make release | collect | autograde | feedback |
# export` run nbgrader from the repository root, where it reads this file.

from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import (
    AssignLatePenalties, CheckCellMetadata, ClearHiddenTests, ClearMarkScheme, ClearOutput,
    ClearSolutions, ComputeChecksums, GetGrades, IgnorePattern, IncludeHeaderFooter,
    InstantiateTests, LimitOutput, LockCells, SaveAutoGrades, SaveCells)

from course.instructor import settings
from course.instructor.preprocessors import BoxExecute, HideHiddenTests, TrustedCrossCheck, WritefileStarter
from course.manifest import load as load_course

c = get_config()  # noqa: F821 (provided by traitlets when nbgrader loads this file)
limits = settings.BoxLimits.from_env()

# -- the course and its folders ----------------------------------------------------------------
c.CourseDirectory.course_id = settings.COURSE_ID
c.CourseDirectory.root = str(settings.course_root())  # the repository, or $GENAI_COURSE_ROOT
c.CourseDirectory.source_directory = settings.SOURCE_DIRECTORY  # each exercise folder is an assignment
c.CourseDirectory.release_directory = settings.GENERATED["release"]
c.CourseDirectory.submitted_directory = settings.GENERATED["submitted"]
c.CourseDirectory.autograded_directory = settings.GENERATED["autograded"]
c.CourseDirectory.feedback_directory = settings.GENERATED["feedback"]
c.CourseDirectory.db_url = f"sqlite:///{settings.gradebook()}"
# An assignment is the whole exercise folder: the notebook and the learner's files.
c.CourseDirectory.include = ["*"]
c.CourseDirectory.ignore = settings.IGNORE
c.Exchange.root = str(settings.exchange_root())  # exchange/ here, or $GENAI_EXCHANGE

# -- generate_assignment: one source notebook -> the learner's version ---------------------------
c.GenerateAssignment.preprocessors = [
    IncludeHeaderFooter, InstantiateTests, LockCells, ClearSolutions,
    WritefileStarter,  # a %%writefile solution cell is released holding the starter file
    ClearOutput, CheckCellMetadata, ComputeChecksums, SaveCells,
    ClearHiddenTests, ClearMarkScheme, ComputeChecksums, CheckCellMetadata,
]

# -- autograde: submissions run in grading boxes, then are cross-checked ------------------------
# The learner's deliverables are theirs; every other file of the exercise is restored
# from the source folder before grading.
c.Autograde.exclude_overwriting = {ex.id: list(ex.deliverables) for ex in load_course().exercises}
c.Execute.timeout = int(limits.cell_timeout)  # per cell: a docker build fits (nbgrader's default is 30 s)
c.Autograde.autograde_preprocessors = [
    BoxExecute,          # nbgrader's Execute, in a disposable rootless Docker-in-Docker box
    IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
    SaveAutoGrades,      # a cell's score: the number it returns (partial credit); 0 on stderr or error
    TrustedCrossCheck,   # min(cell, grader's verdict from a box where no notebook code ran)
    AssignLatePenalties, CheckCellMetadata,
]

# -- feedback: messages and scores, never hidden test code --------------------------------------
c.GenerateFeedback.preprocessors = [GetGrades, HideHiddenTests, CSSHTMLHeaderPreprocessor]

# The instructor workflow with nbgrader (docs/instructor.md). Each target works on
# every exercise that has a notebook, or on one with EX=<id>. Submissions are
# executed and graded in disposable grading boxes (images/grading-box/).
# FORCE=1 makes autograde grade again what it already graded.

INSTRUCTOR := $(PY) -m course.instructor
ONLY       := $(if $(EX),--only $(EX))

.PHONY: release collect autograde feedback export grading-box

release: venv ## nbgrader: generate the learner version of each exercise and release it to the exchange
	@$(INSTRUCTOR) release $(ONLY)

collect: venv ## nbgrader: collect the submissions from the exchange into submitted/
	@$(INSTRUCTOR) collect $(ONLY)

autograde: venv engine images model ## nbgrader: grade submissions in sandboxed grading boxes, several at once (FORCE=1 regrades, BOXES=n boxes in flight)
	@$(INSTRUCTOR) autograde $(ONLY) $(if $(FORCE),--force) $(if $(BOXES),--boxes $(BOXES))

feedback: venv ## nbgrader: generate the feedback (no hidden test code) and release it to the exchange
	@$(INSTRUCTOR) feedback $(ONLY)

export: venv ## nbgrader: write grades.csv (per student and exercise) and grades-by-check.csv
	@$(INSTRUCTOR) export $(ONLY)

grading-box: venv engine images ## Build the grading box image (autograde builds it when needed)
	@$(INSTRUCTOR) box-image

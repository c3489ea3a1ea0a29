# The instructor workflow with nbgrader (docs/instructor.md). Each target works on
# every exercise that has a notebook, or on one with EX=<id>. Submissions are
# executed and graded in disposable grading boxes (images/grading-box/).
# FORCE=1 makes autograde grade again what it already graded.

INSTRUCTOR := $(PY) -m course.instructor
ONLY       := $(if $(EX),--only $(EX))

.PHONY: release collect autograde feedback export grading-box grading-queue grading-queue-stop grading-worker regrade

release: venv ## nbgrader: generate the learner version of each exercise and release it to the exchange
	@$(INSTRUCTOR) release $(ONLY)

collect: venv ## nbgrader: collect the submissions from the exchange into submitted/
	@$(INSTRUCTOR) collect $(ONLY)

autograde: venv engine images model ## nbgrader: grade submissions in sandboxed grading boxes, several at once (FORCE=1 regrades, BOXES=n boxes in flight)
	@$(INSTRUCTOR) autograde $(ONLY) $(if $(FORCE),--force) $(if $(BOXES),--boxes $(BOXES))

regrade: venv engine images model ## Grade the collected submissions again with the current grader and print what changes per student and check (CONFIRM=1 writes it)
	@$(INSTRUCTOR) regrade $(ONLY) $(if $(CONFIRM),--confirm)

feedback: venv ## nbgrader: generate the feedback (no hidden test code) and release it to the exchange
	@$(INSTRUCTOR) feedback $(ONLY)

export: venv ## nbgrader: write grades.csv (per student and exercise) and grades-by-check.csv
	@$(INSTRUCTOR) export $(ONLY)

grading-box: venv engine images ## Build the grading box image (autograde builds it when needed)
	@$(INSTRUCTOR) box-image

# Many grading hosts (docs/instructor.md): a password-protected Redis on the instructor's machine,
# a Celery worker on each grading host; `make autograde` sends the jobs there when
# GENAI_GRADING_QUEUE=redis://HOST:PORT/DB is set.
grading-queue: ## The grading queue (Redis, password, bound to GENAI_QUEUE_BIND, default 127.0.0.1)
	@bash scripts/redis.sh start

grading-queue-stop: ## Stop the grading queue
	@bash scripts/redis.sh stop

grading-worker: venv engine images model ## A grading host's worker: runs the queue's jobs in boxes on this engine (GENAI_GRADING_QUEUE=)
	@$(INSTRUCTOR) worker $(if $(JOBS),--jobs $(JOBS))

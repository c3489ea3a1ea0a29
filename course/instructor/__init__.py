"""The instructor workflow: nbgrader release/collect/autograde/feedback/export,
with every submission executed and graded in a disposable grading box.

- settings: course id, folders, limits (one place)
- boximage: stages and builds images/grading-box
- box: one grading box (rootless Docker-in-Docker) per student and exercise
- inbox: what runs inside a box (notebook execution, trusted grading)
- preprocessors: nbgrader preprocessors (box execution, trusted cross-check,
  hidden tests kept out of feedback)
- workflow: the make targets' steps
"""

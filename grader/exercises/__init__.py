"""One module per exercise; each registers its Exercise and checks when imported.

`grader.registry` imports every module here that does not start with "_", so a
new exercise is a new module and nothing else.
"""

"""Where the course renders: a widget where a Jupyter front end can draw one, printed text
elsewhere (nbclient, nbconvert, nbgrader, a plain Python shell). One rule for the grader's
"Check my work" button and every lesson widget; `COURSE_WIDGETS=plain` or `=on` forces it."""

from __future__ import annotations

import os


def headless() -> bool:
    """True where no front end can render a widget: then helpers print text instead."""
    forced = os.environ.get("COURSE_WIDGETS", "").strip().lower()
    if forced in ("plain", "text", "off", "0"):
        return True
    if forced in ("on", "widgets", "1"):
        return False
    try:
        from IPython import get_ipython
    except ImportError:
        return True
    shell = get_ipython()
    if shell is None or type(shell).__name__ != "ZMQInteractiveShell":
        return True
    # A Jupyter server names the session of every kernel it starts; kernels run by
    # nbclient (nbconvert, nbgrader, our tests) have no one to draw a widget.
    return "JPY_SESSION_NAME" not in os.environ

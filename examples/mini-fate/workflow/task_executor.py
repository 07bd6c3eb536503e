"""Miniature workflow task executor."""


def run(task):
    return f"ran {task}"

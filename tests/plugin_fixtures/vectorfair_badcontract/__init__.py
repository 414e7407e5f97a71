"""A plugin that imports fine but offers something that is not a demo."""

from vectorfair import hookimpl


class NotADemo:
    name = "not_a_demo"


@hookimpl
def register_demos():
    return [NotADemo]

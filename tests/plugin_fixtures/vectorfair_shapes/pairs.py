from vectorfair import hookimpl

from . import Pairs


@hookimpl
def register_demos():
    return [Pairs]

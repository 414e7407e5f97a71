from vectorfair import hookimpl

from . import Bits


@hookimpl
def register_demos():
    return [Bits]

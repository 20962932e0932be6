"""Moved to :mod:`mer.nn.sequence_conv`; this alias keeps the old import path working for one release."""

from spectraldiff.deprecation import alias_module

alias_module(__name__, "mer.nn.sequence_conv")

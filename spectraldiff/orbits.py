from spectraldiff.deprecation import alias_module
alias_module(__name__, "spectraldiff.generation.orbits")

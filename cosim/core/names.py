"""The names every layer shares: engines, SPICE engines and nonlinear modes."""

#: Engines one tile can be solved on (`cosim.engines.solve`).
TILE_ENGINES = ("spice", "fast", "ideal")
#: Engines of a layer simulation: 'auto' sends small tiles to SPICE, the rest to the fast solver.
LAYER_ENGINES = ("auto",) + TILE_ENGINES
#: SPICE simulators behind engine 'spice'.
SPICE_ENGINES = ("ngspice", "vacask")
#: How the fast solver treats the access NMOS: 'auto', exact Newton, or linearised.
NONLINEAR_MODES = ("auto", "newton", "linear")

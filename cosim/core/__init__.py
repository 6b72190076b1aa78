"""Configuration, TileSpec, VTEAM equations, peripheral formulas and result types; imports nothing of cosim above it."""

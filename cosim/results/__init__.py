"""Outputs: the HDF5 store, waveforms and read-disturb I/O, plots, the HTML report, provenance."""

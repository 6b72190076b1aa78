"""Circuit studies built on the engines: IR-drop maps, transients, read disturb, spot checks, the NMOS calibration sweep."""

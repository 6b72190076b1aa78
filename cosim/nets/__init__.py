"""PyTorch side: safe layer loading, cosim.nets.nn layers, training layers, the seed networks and examples."""

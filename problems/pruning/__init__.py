"""Layer-wise magnitude pruning: a second model-compression problem on the quantization zoo's models."""

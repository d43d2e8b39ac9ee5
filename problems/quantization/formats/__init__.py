"""Number formats: how a tensor is calibrated and fake-quantized at a bit width."""

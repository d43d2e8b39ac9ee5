"""Model zoo, datasets and baseline training: everything before quantization."""

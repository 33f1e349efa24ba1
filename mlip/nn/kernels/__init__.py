"""C sources of hand-fused CPU kernels, built on first use (`mlip.nn.tabulated_convolution`)."""
